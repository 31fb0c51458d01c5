"""Padded batches versus padding-free packing, the two batch layouts the recipes use.

Padding to the longest sequence of a batch spends compute on pad tokens; on chat data, whose lengths
are right-skewed, that is often more than half of every batch. Padding-free packing
(`transformers.DataCollatorWithFlattening`) concatenates the batch into one row and passes
`position_ids` that restart at 0 for each example, so attention never crosses examples and no pad
token is computed. It gives the same loss as the padded batch (tests/test_packing.py), with one
condition: the forward pass must run with `use_cache=False` (set `model.config.use_cache = False` before
training). With a cache, transformers 5 skips the packed-sequence mask when it builds the attention mask
and the examples in the row attend to each other. The FlashAttention-2 path (`cu_seq_lens_*` kwargs,
returned here) splits the examples itself.

On CPU, SDPA has no variable-length kernel and computes the whole (sum of lengths)^2 score matrix of the
flattened row; the benchmark-only layouts that avoid it live in `cookbook.perf.packing_layouts`.
"""

from __future__ import annotations

from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

from cookbook.chat import IGNORE_INDEX


def padded_collator(tokenizer):
    """Pad every batch to its longest example; pads get label IGNORE_INDEX (-100) and attention mask 0."""
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)


def packing_collator():
    """Flatten every batch into one row with restarting position_ids: no pad tokens at all."""
    return DataCollatorWithFlattening(return_flash_attn_kwargs=True)
