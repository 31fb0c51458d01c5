"""Math word problems -> the two datasets reasoning tuning needs: worked solutions for the SFT warm start
and prompts with gold answers for GRPO.

Rows are normalized to {"question", "solution", "answer"}. The project's smoke problems already have that
shape; GSM8K keeps the worked solution and the final answer in one `answer` field ("... #### 72", with
calculator notes like <<48/2=24>>), which `split_gsm8k_answer` separates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cookbook.errors import CookbookInputError
from cookbook.rewards import SYSTEM_PROMPT, drop_unparseable, format_target

_CALCULATOR_NOTE = re.compile(r"<<[^>]*>>")


def split_gsm8k_answer(text: str) -> tuple[str, str]:
    """GSM8K's "worked solution\\n#### final" -> (solution without calculator notes, final answer)."""
    solution, separator, final = text.rpartition("####")
    if not separator:
        return _CALCULATOR_NOTE.sub("", text).strip(), ""
    return _CALCULATOR_NOTE.sub("", solution).strip(), final.strip().replace(",", "")


def normalize_problem(row: dict) -> dict:
    """One row as {"question", "solution", "answer"}, from the smoke layout or GSM8K's."""
    if "question" not in row or "answer" not in row:
        raise CookbookInputError(
            f"a math problem needs 'question' and 'answer' columns (got {sorted(row)}): rename them or use GSM8K"
        )
    if "solution" in row:
        return {"question": row["question"], "solution": str(row["solution"]), "answer": str(row["answer"])}
    solution, answer = split_gsm8k_answer(str(row["answer"]))
    return {"question": row["question"], "solution": solution, "answer": answer}


def prompt_for(question: str, system_prompt: str = SYSTEM_PROMPT) -> list[dict]:
    """The conversation a model is asked: the layout instruction and the problem."""
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": question}]


def prepare_problems(rows: Sequence[dict], what: str = "problems") -> list[dict]:
    """Normalize rows, skip (with a counted warning) those without a parseable answer, and add the fields
    both trainers read: `prompt` (conversation), `completion` (worked solution in the target layout, for
    SFT) and `answer` (the gold answer the GRPO rewards receive)."""
    problems = drop_unparseable([normalize_problem(row) for row in rows], what=what)
    if not problems:
        raise CookbookInputError(f"none of the {len(rows)} {what} has a parseable answer: check the answer column")
    return [
        {
            "prompt": prompt_for(p["question"]),
            "completion": [{"role": "assistant", "content": format_target(p["solution"], p["answer"])}],
            "answer": p["answer"],
        }
        for p in problems
    ]


def load_problem_splits(name_or_path: str, config: str | None = None):
    """Train and test splits of a math dataset: a hub id with a config (GSM8K needs "main"), or anything
    `cookbook.loading.load_splits` reads (a local folder of JSONL files, a hub id without configs)."""
    import datasets

    from cookbook.loading import load_splits

    if config is None:
        return load_splits(name_or_path)
    try:
        loaded = datasets.load_dataset(name_or_path, config)
    except (FileNotFoundError, ValueError, ConnectionError) as error:
        raise CookbookInputError(
            f"could not load dataset {name_or_path!r} with config {config!r} ({type(error).__name__}): check both on "
            "the hub and your network, or run with smoke=True"
        ) from error
    if "train" not in loaded or "test" not in loaded:
        raise CookbookInputError(
            f"dataset {name_or_path} has splits {sorted(loaded)}; this recipe needs train and test"
        )
    return datasets.DatasetDict({"train": loaded["train"], "test": loaded["test"]})
