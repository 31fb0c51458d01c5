"""Padded batches versus padding-free packing, for the throughput benchmark and the recipes.

Padding to the longest sequence of a batch spends compute on pad tokens; on chat data, whose lengths
are right-skewed, that is often more than half of every batch. Padding-free packing
(`transformers.DataCollatorWithFlattening`) concatenates the batch into one row and passes
`position_ids` that restart at 0 for each example, so attention never crosses examples and no pad
token is computed. It gives the same loss as the padded batch (tests/test_packing.py), with one
condition: the forward pass must run with `use_cache=False` (set `model.config.use_cache = False` before
training). With a cache, transformers 5 skips the packed-sequence mask when it builds the attention mask
and the examples in the row attend to each other. The FlashAttention-2 path (`cu_seq_lens_*` kwargs,
returned here) splits the examples itself.
"""

from __future__ import annotations

import math
import random

from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

from cookbook.smoke_data import chat_examples


def padded_collator(tokenizer):
    """Pad every batch to its longest example; pads get label -100 and attention mask 0."""
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)


def packing_collator():
    """Flatten every batch into one row with restarting position_ids: no pad tokens at all."""
    return DataCollatorWithFlattening(return_flash_attn_kwargs=True)


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
