"""Verifiable rewards for reasoning tuning: find the answer in a completion, check it with math-verify.

The target layout is a reasoning block followed by an answer block:

    <think>Tom has 3 + 4 = 7 apples.</think>
    <answer>7</answer>

Two rewards, in the signature TRL's `GRPOTrainer` calls (`prompts`, `completions`, then every dataset
column as a keyword argument, here `answer`):
- `correctness_reward`: 1.0 when the answer block is mathematically equal to the gold answer
  (math-verify parses both, so "7", "7.0", "$7$" and "1/2" vs "0.5" compare as numbers, not strings);
- `format_reward`: 1.0 when the whole completion is exactly one non-empty think block and one non-empty
  answer block. It only says *where* the answer is, never whether it is right.

A gold answer math-verify cannot parse gets no reward at all (None, which TRL skips) and a warning, so a
broken dataset row is never silently scored as a wrong answer.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import torch
from math_verify import parse, verify

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
SYSTEM_PROMPT = (
    "Solve the problem. Reason step by step inside <think> </think>, then give only the final number "
    "inside <answer> </answer>."
)

_LAYOUT = re.compile(r"\A\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*\Z", re.DOTALL)
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


class UnparseableGoldWarning(UserWarning):
    """A gold answer that math-verify cannot read: the example is skipped, not scored."""


def completion_text(completion: str | Sequence[dict]) -> str:
    """The text of one completion: TRL passes a string (standard format) or a list of messages (conversational)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        return content if isinstance(content, str) else ""
    return ""


def format_target(reasoning: str, answer: str) -> str:
    """The completion a model should produce: the layout the format reward checks."""
    return f"{THINK_OPEN}{reasoning.strip()}{THINK_CLOSE}\n{ANSWER_OPEN}{answer.strip()}{ANSWER_CLOSE}"


def extract_answer(completion: str | Sequence[dict]) -> str | None:
    """The content of the last <answer> block, or None if there is none (or it is empty)."""
    blocks = _ANSWER_BLOCK.findall(completion_text(completion))
    if not blocks or not blocks[-1].strip():
        return None
    return blocks[-1].strip()


def parse_gold(answer: object) -> list:
    """math-verify's parse of a gold answer; an empty list means it cannot be checked."""
    return parse(str(answer)) if answer is not None and str(answer).strip() else []


def is_correct(completion: str | Sequence[dict], gold: object) -> bool | None:
    """True/False for a completion's answer block against the gold answer; None if the gold is unparseable."""
    gold_parsed = parse_gold(gold)
    if not gold_parsed:
        return None
    predicted = extract_answer(completion)
    if predicted is None:
        return False
    predicted_parsed = parse(predicted)
    return bool(predicted_parsed) and verify(gold_parsed, predicted_parsed)


def follows_format(completion: str | Sequence[dict]) -> bool:
    """Exactly one think block then one answer block, both non-empty, nothing around them."""
    match = _LAYOUT.match(completion_text(completion))
    if match is None:
        return False
    think, answer = match["think"], match["answer"]
    nested = any(tag in think + answer for tag in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE))
    return bool(think.strip()) and bool(answer.strip()) and not nested


def correctness_reward(prompts: list, completions: list, answer: list, **kwargs) -> list[float | None]:
    """GRPO reward: 1.0 for a correct answer block, 0.0 otherwise, None (skipped by TRL) for an unparseable gold."""
    rewards: list[float | None] = []
    unparseable = 0
    for completion, gold in zip(completions, answer, strict=True):
        correct = is_correct(completion, gold)
        if correct is None:
            unparseable += 1
            rewards.append(None)
        else:
            rewards.append(1.0 if correct else 0.0)
    if unparseable:
        warnings.warn(
            f"{unparseable} of {len(completions)} completions have a gold answer math-verify cannot parse: "
            "they get no correctness reward; filter the dataset with drop_unparseable()",
            UnparseableGoldWarning,
            stacklevel=2,
        )
    return rewards


def format_reward(prompts: list, completions: list, **kwargs) -> list[float]:
    """GRPO reward: 1.0 when the completion follows the <think>...</think><answer>...</answer> layout."""
    return [1.0 if follows_format(completion) else 0.0 for completion in completions]


def drop_unparseable(rows: Sequence[dict], answer_key: str = "answer", what: str = "problems") -> list[dict]:
    """Keep the rows whose gold answer math-verify can parse; warn with the count of those skipped."""
    kept = [row for row in rows if parse_gold(row.get(answer_key))]
    skipped = len(rows) - len(kept)
    if skipped:
        examples = [row.get(answer_key) for row in rows if not parse_gold(row.get(answer_key))][:3]
        warnings.warn(
            f"skipped {skipped} of {len(rows)} {what} whose {answer_key!r} has no parseable answer "
            f"(e.g. {examples!r}): they are left out of training and evaluation, not scored as 0",
            UnparseableGoldWarning,
            stacklevel=2,
        )
    return kept


def batched_greedy_replies(
    model, tokenizer, conversations: Sequence[list[dict]], max_new_tokens: int = 64, batch_size: int = 16
) -> list[dict]:
    """Greedy replies to each conversation, `batch_size` at a time: prompts left-padded (so every reply starts
    right after its own prompt), the same greedy decoding as one at a time. Returns the reply text and
    whether it stopped at EOS, like `cookbook.training.generate_replies`."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    model.eval()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    replies = []
    for start in range(0, len(conversations), batch_size):
        prompts = [
            tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)[
                "input_ids"
            ]
            for messages in conversations[start : start + batch_size]
        ]
        width = max(len(ids) for ids in prompts)
        input_ids = torch.tensor([[pad_id] * (width - len(ids)) + list(ids) for ids in prompts])
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts])
        with torch.no_grad():
            output = model.generate(
                input_ids=input_ids.to(model.device),
                attention_mask=attention_mask.to(model.device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad_id,
            )
        for row in output[:, width:].tolist():
            if tokenizer.eos_token_id in row:  # what follows the first EOS is padding of a finished row
                row = row[: row.index(tokenizer.eos_token_id) + 1]
            replies.append(
                {
                    "reply": tokenizer.decode(row, skip_special_tokens=True),
                    "stopped_at_eos": tokenizer.eos_token_id in row,
                }
            )
    return replies


def answer_accuracy(model, tokenizer, rows: Sequence[dict], max_new_tokens: int = 64, batch_size: int = 16) -> dict:
    """Greedy replies to each row's `prompt` (a conversation), `batch_size` prompts per `generate` call,
    scored against its `answer` with math-verify.

    Returns the accuracy over rows with a parseable gold answer, the share of replies in the target format,
    how many rows were skipped, and the replies themselves (to print before/after generations).
    """
    rows = drop_unparseable(rows, what="evaluation problems")
    if not rows:
        raise ValueError("no evaluation problem has a parseable answer: check the dataset's answer column")
    replies = batched_greedy_replies(
        model, tokenizer, [row["prompt"] for row in rows], max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    correct = [bool(is_correct(reply["reply"], row["answer"])) for reply, row in zip(replies, rows, strict=True)]
    formatted = [follows_format(reply["reply"]) for reply in replies]
    return {
        "accuracy": sum(correct) / len(rows),
        "format_rate": sum(formatted) / len(rows),
        "n": len(rows),
        "replies": [{**reply, "correct": ok} for reply, ok in zip(replies, correct, strict=True)],
    }
