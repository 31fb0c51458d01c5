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
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")  # one level of nested braces: \frac{1}{2}


def split_gsm8k_answer(text: str) -> tuple[str, str]:
    """GSM8K's "worked solution\\n#### final" (or a solution ending in \\boxed{final}) -> (solution without
    calculator notes, final answer); the answer is "" when there is neither."""
    solution, separator, final = text.rpartition("####")
    if not separator:
        boxed = _BOXED.findall(text)  # MATH-style solutions end in \\boxed{answer}
        return _CALCULATOR_NOTE.sub("", text).strip(), boxed[-1].strip().replace(",", "") if boxed else ""
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
        example = str(rows[0].get("answer", ""))[-60:] if rows else ""
        raise CookbookInputError(
            f"none of the {len(rows)} {what} has a parseable answer (e.g. ...{example!r}): answers must end in "
            "'#### <number>' (GSM8K) or \\boxed{<answer>}, or come in an 'answer' column beside a 'solution' column"
        )
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
    `cookbook.loading.load_splits` reads (a local folder of JSONL files, where a config does not apply)."""
    from cookbook.loading import load_splits

    return load_splits(name_or_path, config=config)
