"""Preference data for DPO: which format a dataset is in, checked row by row before anything trains.

TRL's `DPOTrainer` takes rows with a `chosen` and a `rejected` reply to the same prompt:
- explicit prompt: `prompt`, `chosen`, `rejected` columns;
- implicit prompt: only `chosen` and `rejected`, each the whole conversation, sharing the prompt turns
  (`trl-lib/ultrafeedback_binarized` is stored this way; HuggingFaceH4's copy adds a string `prompt` column
  that repeats the first user turn); `explicit_prompt` splits the shared prefix off.
Each column holds strings ("standard" data) or lists of {"role", "content"} turns ("conversational" data,
rendered with the chat template). Anything else stops here with one line naming the expected format.
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
from trl.data_utils import extract_prompt

from cookbook.chat import validate_conversation
from cookbook.errors import CookbookInputError

CONVERSATIONAL, STANDARD = "conversational", "standard"
EXPECTED_FORMAT = (
    'expected preference pairs: "prompt", "chosen" and "rejected" columns (or "chosen" and "rejected" holding the '
    "whole conversation), all strings or all lists of {role, content} turns"
)


def _kind(value: object) -> str:
    if isinstance(value, str):
        return STANDARD
    if isinstance(value, Sequence) and value and all(isinstance(turn, dict) for turn in value):
        return CONVERSATIONAL
    raise CookbookInputError(f"a preference column holds {type(value).__name__} {value!r:.80}: {EXPECTED_FORMAT}")


def _redundant_prompt(row: dict) -> bool:
    """A string `prompt` beside conversations that already hold it (HuggingFaceH4/ultrafeedback_binarized's
    layout): the conversations are the data, the string is a copy of their first user turn."""
    return (
        isinstance(row.get("prompt"), str)
        and _kind(row["chosen"]) == CONVERSATIONAL
        and any(turn.get("role") == "user" for turn in row["chosen"])
    )


def _check_pair(row: dict, index: int) -> str:
    """The row's format; one line for the first problem found."""
    if _redundant_prompt(row):
        row = {"chosen": row["chosen"], "rejected": row["rejected"]}
    kind = _kind(row["chosen"])
    for column in ("prompt", "rejected"):
        if column in row and _kind(row[column]) != kind:
            raise CookbookInputError(
                f"row {index}: chosen is {kind} but {column} is {_kind(row[column])}: {EXPECTED_FORMAT}"
            )
    if kind == CONVERSATIONAL:
        prompt = list(row.get("prompt") or [])
        for reply in ("chosen", "rejected"):
            validate_conversation(prompt + list(row[reply]))
            if row[reply][-1]["role"] != "assistant":
                raise CookbookInputError(f"row {index}: the {reply} conversation does not end with an assistant turn")
        if "prompt" in row and (not prompt or prompt[-1]["role"] != "user"):
            raise CookbookInputError(f"row {index}: the prompt must end with a user turn, so a reply can follow it")
    elif not row["chosen"].strip() or not row["rejected"].strip():
        raise CookbookInputError(f"row {index}: an empty chosen or rejected reply: drop the row")
    if row["chosen"] == row["rejected"]:
        raise CookbookInputError(
            f"row {index}: chosen and rejected are identical, a pair with no preference teaches nothing: drop it"
        )
    return kind


def check_preference_dataset(dataset: datasets.Dataset) -> str:
    """Check every row of `dataset` and return `conversational` or `standard`; the first bad row stops the run."""
    missing = [column for column in ("chosen", "rejected") if column not in dataset.column_names]
    if missing:
        raise CookbookInputError(
            f"dataset has columns {sorted(dataset.column_names)}, lacking {missing}: {EXPECTED_FORMAT}"
        )
    if len(dataset) == 0:
        raise CookbookInputError("the preference dataset is empty: check the split and the files")
    kinds = {_check_pair(row, index) for index, row in enumerate(dataset)}
    if len(kinds) > 1:
        raise CookbookInputError(f"the dataset mixes string and conversational rows: {EXPECTED_FORMAT}")
    return kinds.pop()


def explicit_prompt(row: dict) -> dict:
    """A row with `prompt`, `chosen` and `rejected`: an implicit-prompt row has its shared prefix split off."""
    if row.get("prompt") and not _redundant_prompt(row):
        return {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}
    split = extract_prompt({"chosen": row["chosen"], "rejected": row["rejected"]})
    if not split["prompt"]:
        raise CookbookInputError("chosen and rejected share no prompt, so there is nothing to compare: fix the row")
    return split


def as_turns(row: dict) -> dict:
    """A standard (string) row as one user turn and one assistant turn per reply, so the chat template applies."""
    if not isinstance(row["prompt"], str):
        return row
    return {
        "prompt": [{"role": "user", "content": row["prompt"]}],
        "chosen": [{"role": "assistant", "content": row["chosen"]}],
        "rejected": [{"role": "assistant", "content": row["rejected"]}],
    }
