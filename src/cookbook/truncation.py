"""Truncation, counted: how many examples were longer than `max_length` and cut, and how many of those lost
every token that carries loss (for chat data: every assistant token) and were therefore dropped.

An example cut before its first assistant token trains on nothing; kept in, it only costs compute, and
without a count nobody learns that `max_length` is too small for the data. Both recipes' paths are covered:

- `cut_tokenized`: examples tokenized *without* a length limit (`input_ids`, `labels` with -100 for no
  loss, optional `attention_mask`), as the PEFT notebooks build them; cuts them to `max_length` here.
- `drop_lost_to_truncation`: raw rows for TRL's SFTTrainer (`messages`, or `prompt` and `completion` turns),
  which truncates itself: measures them with the chat template as TRL does and drops the rows that would
  keep no assistant token, so SFTTrainer cuts only rows that still teach something.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import datasets

from cookbook.chat import IGNORE_INDEX, tokenize_conversation
from cookbook.errors import CookbookInputError


@dataclass(frozen=True)
class TruncationReport:
    split: str
    max_length: int
    examples: int  # before dropping
    cut: int  # longer than max_length
    dropped: int  # cut so that no loss-carrying token was left
    longest: int  # tokens in the longest example

    def __str__(self) -> str:
        line = (
            f"{self.split}: {self.cut} of {self.examples} examples were longer than max_length={self.max_length} "
            f"tokens (longest {self.longest}) and were cut; {self.dropped} lost every assistant token and were dropped"
        )
        return line + (": raise max_length or shorten those examples" if self.cut else "")

    def as_metrics(self) -> dict:
        return asdict(self)


def _report(split: str, max_length: int, lengths: Sequence[int], kept_loss: Sequence[int]) -> TruncationReport:
    if lengths and not any(kept_loss):
        raise CookbookInputError(
            f"every one of the {len(lengths)} {split} examples loses all its assistant tokens when cut to "
            f"max_length={max_length} (longest {max(lengths)} tokens): raise max_length or shorten the prompts"
        )
    return TruncationReport(
        split=split,
        max_length=max_length,
        examples=len(lengths),
        cut=sum(length > max_length for length in lengths),
        dropped=sum(kept == 0 for kept in kept_loss),
        longest=max(lengths, default=0),
    )


def cut_tokenized(
    dataset: datasets.Dataset, max_length: int, split: str = "train"
) -> tuple[datasets.Dataset, TruncationReport]:
    """Cut untruncated tokenized examples to `max_length`, drop those left without a loss token, count both."""
    lengths = [len(ids) for ids in dataset["input_ids"]]
    kept_loss = [sum(label != IGNORE_INDEX for label in labels[:max_length]) for labels in dataset["labels"]]
    report = _report(split, max_length, lengths, kept_loss)
    columns = [c for c in ("input_ids", "attention_mask", "labels") if c in dataset.column_names]
    cut = dataset.map(lambda example: {c: example[c][:max_length] for c in columns})
    return cut.select([i for i, kept in enumerate(kept_loss) if kept]), report


def cut_splits(
    splits: datasets.DatasetDict, max_length: int
) -> tuple[datasets.DatasetDict, dict[str, TruncationReport]]:
    """`cut_tokenized` for every split; prints one line per split."""
    results = {split: cut_tokenized(rows, max_length, split) for split, rows in splits.items()}
    for _, report in results.values():
        print(report)
    return datasets.DatasetDict({s: rows for s, (rows, _) in results.items()}), {s: r for s, (_, r) in results.items()}


def _measure(row: dict, tokenizer, assistant_only_loss: bool) -> tuple[int, list[int]]:
    """(token count, loss mask) of one SFT row, with the cookbook's loss mask (the one `sft_training_data` and
    TRL's `{% generation %}` path agree on), uncut."""
    if "messages" in row:
        tokenized = tokenize_conversation(row["messages"], tokenizer, max_length=None)
    else:
        replies_in_prompt = sum(turn["role"] == "assistant" for turn in row["prompt"])
        tokenized = tokenize_conversation(
            list(row["prompt"]) + list(row["completion"]),
            tokenizer,
            max_length=None,
            trained_replies_from=replies_in_prompt,
        )
    if not assistant_only_loss:
        return len(tokenized["input_ids"]), [1] * len(tokenized["input_ids"])
    return len(tokenized["input_ids"]), [int(label != IGNORE_INDEX) for label in tokenized["labels"]]


def drop_lost_to_truncation(
    dataset: datasets.Dataset, tokenizer, max_length: int, split: str = "train", assistant_only_loss: bool = True
) -> tuple[datasets.Dataset, TruncationReport]:
    """Count the SFT rows longer than `max_length` and drop those whose cut keeps no loss token; prints the count."""
    measured = [_measure(row, tokenizer, assistant_only_loss) for row in dataset]
    lengths = [length for length, _ in measured]
    kept_loss = [sum(mask[:max_length]) for _, mask in measured]
    report = _report(split, max_length, lengths, kept_loss)
    print(report)
    return dataset.select([i for i, kept in enumerate(kept_loss) if kept]), report
