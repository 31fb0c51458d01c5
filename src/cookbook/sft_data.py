"""Instruction data for supervised fine-tuning: which format a dataset is in, and a chat template to render it.

TRL's `SFTTrainer` takes two shapes of instruction data:
- conversational: a `messages` column, each row a list of {"role", "content"} turns;
- prompt-completion: `prompt` and `completion` columns, both strings, or both lists of turns
  (the completion's turns all the assistant's).
Anything else (a bare `text` column, ShareGPT's from/value turns, a role the template does not know)
is stopped here, before training, with one line naming the expected format.

A base model often ships without a chat template, or with one whose end-of-turn token is not the
model's EOS; then the fine-tuned model never learns where a reply ends. `ensure_chat_template` and
`end_of_turn_token` make that explicit.
"""

from __future__ import annotations

import re

import datasets
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from cookbook.chat import end_of_turn_token, prompt_messages, tokenize_conversation, validate_conversation
from cookbook.chat_template import CHATML_TEMPLATE, CHATML_TOKENS
from cookbook.errors import CookbookInputError

__all__ = ["end_of_turn_token"]  # re-exported: it lived here before it moved to cookbook.chat

CONVERSATIONAL, PROMPT_COMPLETION = "conversational", "prompt-completion"
GENERATION_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")
EXPECTED_FORMAT = (
    'expected conversational data (a "messages" column of [{"role": "system"|"user"|"assistant", '
    '"content": str}, ...]) or prompt-completion data ("prompt" and "completion" columns, strings or lists of turns)'
)


def detect_format(columns: list[str]) -> str:
    """`conversational` or `prompt-completion` from a dataset's column names; one-line error otherwise."""
    if "messages" in columns:
        return CONVERSATIONAL
    if "prompt" in columns and "completion" in columns:
        return PROMPT_COMPLETION
    raise CookbookInputError(f"dataset has columns {sorted(columns)}: {EXPECTED_FORMAT}")


def _check_prompt_completion(prompt: object, completion: object) -> None:
    if isinstance(prompt, str) and isinstance(completion, str):
        if not completion.strip():
            raise CookbookInputError("a completion is empty, so there is nothing to learn from: drop the row")
        return
    if isinstance(prompt, str) or isinstance(completion, str):
        raise CookbookInputError(
            f"prompt and completion must both be strings or both lists of turns, got {type(prompt).__name__} "
            f"and {type(completion).__name__}: {EXPECTED_FORMAT}"
        )
    validate_conversation(list(prompt or []) + list(completion or []))
    if not completion or any(turn["role"] != "assistant" for turn in completion):
        raise CookbookInputError(f"a conversational completion must hold assistant turns only: {EXPECTED_FORMAT}")


def check_sft_dataset(dataset: datasets.Dataset) -> str:
    """Check every row of `dataset` and return its format; the first bad row stops the run with one line."""
    data_format = detect_format(dataset.column_names)
    if len(dataset) == 0:
        raise CookbookInputError(f"dataset is empty; {EXPECTED_FORMAT}: check the split and the files")
    if data_format == CONVERSATIONAL:
        rows = ((messages,) for messages in dataset["messages"])
    else:
        rows = zip(dataset["prompt"], dataset["completion"], strict=True)
    for index, row in enumerate(rows):
        try:
            validate_conversation(row[0]) if data_format == CONVERSATIONAL else _check_prompt_completion(*row)
        except CookbookInputError as error:
            raise CookbookInputError(f"row {index} of the {data_format} data: {error}") from None
    return data_format


def ensure_chat_template(
    tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel | None = None, grow_later: bool = False
) -> bool:
    """Give a tokenizer without a chat template the cookbook's ChatML one; return True if it was set.

    ChatML needs `<|im_start|>` and `<|im_end|>` as single special tokens; where the vocabulary lacks
    them they are added and the model's embeddings grow to match (their new rows are trained by SFT).
    A recipe that tokenizes before it loads the model passes `grow_later=True` and calls
    `fit_embeddings(model, tokenizer)` once the model is loaded.
    A tokenizer that has a template keeps it: the model was (or will be) served with that one.
    """
    if tokenizer.chat_template is not None:
        return False
    missing = [token for token in CHATML_TOKENS if token not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
        if model is not None:
            fit_embeddings(model, tokenizer)
        elif not grow_later:
            raise CookbookInputError(
                f"the tokenizer lacks {missing}: pass the model too, so its embeddings can grow to the new vocabulary"
            )
    print(f"the tokenizer had no chat template: the cookbook's ChatML set{f', {missing} added' if missing else ''}")
    tokenizer.chat_template = CHATML_TEMPLATE
    return True


def _trl_patch_note(tokenizer: PreTrainedTokenizerBase) -> str:
    try:
        from trl.chat_template_utils import get_training_chat_template

        get_training_chat_template(tokenizer)
    except ValueError:
        return "TRL cannot patch it"
    except ImportError:
        return "TRL is not installed"
    return "TRL would train with its own copy, not the template the model is served with"


def sft_training_data(
    splits: datasets.DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int, data_format: str
) -> tuple[datasets.DatasetDict, dict]:
    """The datasets and the `SFTConfig` loss options for assistant-only (or completion-only) loss; prints the
    path taken.

    - Conversational rows and a template with `{% generation %}` markers: TRL masks them (`assistant_only_loss`).
    - Otherwise (most real checkpoints: base Qwen2.5, Llama 3, Gemma, Phi-3, and every prompt-completion set):
      TRL would stop with "not training-compatible", swap in a copy of a template it recognises byte for byte,
      or (prompt-completion) also train what the template writes after the end of turn. The rows are tokenized
      here with the cookbook's loss mask (`cookbook.chat.tokenize_conversation`, the one the plain-Trainer
      recipes use) and the model's own template, and handed to SFTTrainer pre-tokenised with a `labels`
      column, which TRL uses as is.
    """
    if data_format == CONVERSATIONAL and tokenizer.chat_template and GENERATION_MARKER.search(tokenizer.chat_template):
        print("loss mask: TRL, from the chat template's {% generation %} markers")
        return splits, {"assistant_only_loss": True}
    if data_format == PROMPT_COMPLETION:
        # TRL's completion mask is everything after the rendered prompt, which takes in what the template writes
        # after the end-of-turn token (ChatML's newline, Phi-3's closing EOS).
        reason = "TRL's completion mask would also train what the template writes after the end of turn"
    else:
        reason = f"the chat template has no {{% generation %}} markers and {_trl_patch_note(tokenizer)}"
    print(f"loss mask: the cookbook's ({reason}): rows tokenized here and passed to SFTTrainer pre-tokenised")

    def tokenize(row: dict) -> dict:
        if data_format == PROMPT_COMPLETION:
            prompt = list(row["prompt"])
            replies_in_prompt = sum(turn["role"] == "assistant" for turn in prompt)
            return tokenize_conversation(prompt + list(row["completion"]), tokenizer, max_length, replies_in_prompt)
        return tokenize_conversation(row["messages"], tokenizer, max_length)

    tokenized = splits.map(tokenize, remove_columns=splits["train"].column_names)
    return tokenized, {"assistant_only_loss": False, "completion_only_loss": False}


def fit_embeddings(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> bool:
    """Grow the model's embeddings (and tied output head) to the tokenizer's vocabulary where tokens were added;
    return True if they grew."""
    if model.get_input_embeddings().num_embeddings >= len(tokenizer):
        return False
    model.resize_token_embeddings(len(tokenizer))
    return True


def normalize_answer(text: str) -> str:
    """Whitespace-insensitive form of an answer, for exact match."""
    return " ".join(text.split())


def exact_match(predictions: list[str], references: list[str]) -> float:
    """Share of predictions equal to their reference after whitespace normalisation."""
    if len(predictions) != len(references) or not references:
        raise ValueError(f"need as many predictions as references (>0), got {len(predictions)} and {len(references)}")
    hits = sum(normalize_answer(p) == normalize_answer(r) for p, r in zip(predictions, references, strict=True))
    return hits / len(references)


def chat_prompt_completion(row: dict) -> dict:
    """A string prompt-completion row as turns (user prompt, assistant completion), so the chat template applies;
    rows that already hold turns pass through unchanged."""
    if isinstance(row["prompt"], str):
        return {
            "prompt": [{"role": "user", "content": row["prompt"]}],
            "completion": [{"role": "assistant", "content": row["completion"]}],
        }
    return {"prompt": row["prompt"], "completion": row["completion"]}


def prompt_and_answer(row: dict) -> tuple[list[dict], str]:
    """The turns a model is asked and the reference answer (the last assistant turn), for a conversational or a
    turn-based prompt-completion row."""
    if "messages" in row:
        prompt = prompt_messages(row["messages"])
        return prompt, row["messages"][len(prompt)]["content"]
    if isinstance(row["prompt"], str):
        raise CookbookInputError("a string prompt-completion row: convert it with chat_prompt_completion first")
    return list(row["prompt"]), row["completion"][-1]["content"]
