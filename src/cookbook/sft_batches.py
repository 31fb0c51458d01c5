"""Look inside the batches a TRL collator builds: where the padding is, which tokens carry loss, and how
many of each a training run actually processed.

Two batch layouts come out of `SFTTrainer`'s collator:
- padded: `input_ids` of shape (batch, longest), an `attention_mask` with 0 on the padding;
- padding-free (packing with `bfd`, or `padding_free=True`): every sequence of the batch concatenated
  into one row, with `position_ids` restarting at 0 where a new sequence begins and no padding at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from cookbook.chat import IGNORE_INDEX


def batch_token_counts(batch: dict) -> dict[str, int]:
    """Positions in the batch, of which real tokens, padding, and tokens that carry loss."""
    positions = batch["input_ids"].numel()
    # padding-free batches have no attention_mask: one row, every position a real token
    real = int(batch["attention_mask"].sum()) if "attention_mask" in batch else positions
    loss = int((batch["labels"] != IGNORE_INDEX).sum())
    return {"positions": positions, "tokens": real, "padding": positions - real, "loss_tokens": loss}


def split_sequences(batch: dict) -> list[dict[str, list[int]]]:
    """The individual sequences of a padded or padding-free batch, each with its `input_ids` and `labels`."""
    sequences = []
    if "attention_mask" in batch:
        for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"], strict=True):
            keep = mask.bool()
            sequences.append({"input_ids": ids[keep].tolist(), "labels": labels[keep].tolist()})
        return sequences
    if "position_ids" not in batch:
        raise ValueError("a batch without attention_mask needs position_ids to find its sequences")
    for ids, labels, positions in zip(batch["input_ids"], batch["labels"], batch["position_ids"], strict=True):
        starts = [*(positions == 0).nonzero().flatten().tolist(), len(positions)]
        for start, end in itertools.pairwise(starts):
            sequences.append({"input_ids": ids[start:end].tolist(), "labels": labels[start:end].tolist()})
    return sequences


@dataclass
class CountingCollator:
    """Wraps a collator and adds up `batch_token_counts` over every batch it builds.

    Set it as `trainer.data_collator` after building the trainer (TRL refuses a custom collator in
    padding-free mode, but the dataloader reads the attribute when training starts).
    """

    collator: Callable[[list[dict]], dict]
    counts: list[dict[str, int]] = field(default_factory=list)  # one entry per batch built

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.collator(examples)
        self.counts.append(batch_token_counts(batch))
        return batch

    def totals(self, batches: int | None = None) -> dict[str, int]:
        """Sums over the first `batches` batches (all by default). The Trainer may build a batch ahead of the
        one it trains on, so pass the number of steps to count only the batches trained on."""
        counts = self.counts[:batches]
        return {key: sum(c[key] for c in counts) for key in ("positions", "tokens", "padding", "loss_tokens")}

    def summary(self, seconds: float, batches: int | None = None) -> dict[str, float]:
        """Totals plus the padding share and real tokens per second over a run of `seconds`."""
        totals = self.totals(batches)
        tokens, positions = totals["tokens"], totals["positions"]
        return {
            **totals,
            "batches": len(self.counts[:batches]),
            "padding_share": (positions - tokens) / positions if positions else 0.0,
            "seconds": seconds,
            "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
        }


def loss_tokens(sequence: dict, tokenizer) -> list[str]:
    """The decoded tokens of one sequence that carry loss, in order."""
    pairs = zip(sequence["input_ids"], sequence["labels"], strict=True)
    return [tokenizer.decode([token]) for token, label in pairs if label != IGNORE_INDEX]
