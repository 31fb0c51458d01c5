"""Benchmark-only batch layouts: binned packing and per-example segment attention.

The flattened row of `cookbook.packing.packing_collator` has one cost on CPU: SDPA there has no
variable-length kernel, so it computes the whole (sum of lengths)^2 score matrix of the row and masks it,
more attention work than the padded batch's B x longest^2. Two padding-free alternatives avoid it:

- `binned_packing_collator`: best-fit-decreasing bins of at most `max_tokens` (TRL's
  `packing_strategy="bfd"`), one bin per row, rows as long as the longest bin. The score matrix is
  rows x row length^2. The only pad tokens are the tails of rows shorter than the longest; they form
  their own segment (restarting `position_ids`) instead of needing an attention mask.
  Mask-based attention only (SDPA, eager): transformers' FlashAttention path detects packed
  `position_ids` only in a batch of one row, and would let the examples of a row attend to each other.
- `SEGMENT_ATTENTION` (`register_segment_attention()`, from `cookbook.packing`, where the recipes get it
  too): an attention function that runs causal SDPA on each example of the flattened row separately (from
  the collator's `cu_seq_lens_q`), sum of length^2 scores, the work FlashAttention's variable-length kernel
  does on a GPU.

`padding_share` and `variable_length_chats` describe and make the benchmark's data.
"""

from __future__ import annotations

import math
import random

import torch

from cookbook.chat import IGNORE_INDEX
from cookbook.packing import SEGMENT_ATTENTION, register_segment_attention, segment_attention_forward
from cookbook.smoke.data import chat_examples

__all__ = [
    "SEGMENT_ATTENTION",
    "best_fit_decreasing",
    "binned_packing_collator",
    "padding_share",
    "register_segment_attention",
    "segment_attention_forward",
    "variable_length_chats",
]


def best_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices of `lengths` grouped into bins of total length <= `capacity`, longest first, each into the
    fullest bin it still fits (a new bin if none). A length over `capacity` gets a bin of its own."""
    bins: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        fits = [b for b in range(len(bins)) if room[b] >= lengths[index]]
        if fits:
            best = min(fits, key=lambda b: room[b])
            bins[best].append(index)
            room[best] -= lengths[index]
        else:
            bins.append([index])
            room.append(capacity - lengths[index])
    return bins


def binned_packing_collator(pad_token_id: int, max_tokens: int | None = None):
    """Pack a batch into rows of at most `max_tokens` tokens (default: the batch's longest example),
    best-fit-decreasing; `position_ids` restart for every example, so attention stays inside it.

    Rows are padded to the longest row; each pad tail is a segment of its own (positions from 0, label
    -100), so no attention mask is needed and transformers builds the packed-sequence mask from the
    `position_ids` (it does so only without an attention mask and without a cache: `use_cache=False`).
    """

    def collate(features: list[dict]) -> dict:
        lengths = [len(f["input_ids"]) for f in features]
        capacity = max(max_tokens or 0, max(lengths))
        rows = []
        for members in best_fit_decreasing(lengths, capacity):
            ids, labels, positions = [], [], []
            for index in members:
                feature = features[index]
                ids += feature["input_ids"]
                # the first label of an example would be predicted from the previous example's last token
                labels += [IGNORE_INDEX, *feature.get("labels", feature["input_ids"])[1:]]
                positions += range(lengths[index])
            rows.append((ids, labels, positions))
        width = max(len(ids) for ids, _, _ in rows)
        out = {"input_ids": [], "labels": [], "position_ids": []}
        for ids, labels, positions in rows:
            extra = width - len(ids)
            out["input_ids"].append(ids + [pad_token_id] * extra)
            out["labels"].append(labels + [IGNORE_INDEX] * extra)
            out["position_ids"].append(positions + list(range(extra)))
        return {key: torch.tensor(value) for key, value in out.items()}

    return collate


def padding_share(lengths: list[int], batch_size: int) -> float:
    """The share of pad tokens when `lengths` are batched in order and padded to each batch's longest."""
    total = padded = 0
    for start in range(0, len(lengths), batch_size):
        batch = lengths[start : start + batch_size]
        total += sum(batch)
        padded += max(batch) * len(batch)
    return 1 - total / padded


def variable_length_chats(
    tokenizer, n: int, median_tokens: int, max_tokens: int, sigma: float = 0.9, seed: int = 0
) -> list[dict]:
    """`n` tokenized multi-turn conversations whose lengths follow a log-normal distribution.

    Real chat corpora are right-skewed: most conversations are short, a few are long (one long
    conversation in a batch sets its padded length). Each conversation here is built from the smoke
    chat turns until it reaches a length drawn from LogNormal(log(median_tokens), sigma), clipped to
    [16, max_tokens]. Returns rows with `input_ids`, `attention_mask` and `labels`.
    """
    rng = random.Random(seed)
    turns = chat_examples(4 * n, seed=seed + 100)
    rows = []
    for index in range(n):
        target = min(max_tokens, max(16, int(rng.lognormvariate(math.log(median_tokens), sigma))))
        messages, ids = [], []
        turn = index
        while len(ids) < target:
            messages.extend(m for m in turns[turn % len(turns)]["messages"] if m["role"] != "system")
            ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
            turn += n
        ids = list(ids[:target])
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": list(ids)})
    return rows
