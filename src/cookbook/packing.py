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

`choose_attention` picks the kernel the recipes load the model with (their `attn_implementation`
parameter) and says whether packing pays with it: only a per-example kernel turns the packed row into the
sum of each example's attention, and the recipes pack only then. By default that is FlashAttention-2 where
`flash-attn` is installed (CUDA), else `sdpa_segments` (`register_segment_attention`): SDPA run on each
example's slice of the row, on any device, with the same loss and gradients as padded batches
(tests/test_attention_kernels.py). PyTorch's `flex_attention` also attends per example (transformers
builds a document block mask from the position_ids) but compiles, and has no backward on CPU.
"""

from __future__ import annotations

import importlib.util
import itertools
from dataclasses import dataclass

import torch
from transformers import AttentionInterface, DataCollatorForSeq2Seq, DataCollatorWithFlattening
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from cookbook.chat import IGNORE_INDEX


def padded_collator(tokenizer):
    """Pad every batch to its longest example; pads get label IGNORE_INDEX (-100) and attention mask 0."""
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)


def packing_collator():
    """Flatten every batch into one row with restarting position_ids: no pad tokens at all."""
    return DataCollatorWithFlattening(return_flash_attn_kwargs=True)


SEGMENT_ATTENTION = "sdpa_segments"


def segment_attention_forward(module, query, key, value, attention_mask, cu_seq_lens_q=None, **kwargs):
    """Causal SDPA per example of a flattened row (batch 1, boundaries in `cu_seq_lens_q`, which
    `packing_collator()` and TRL's padding-free collator return): sum of length^2 scores instead of the
    whole row's (sum of lengths)^2. Any other batch (padded, or generation with a cache) gets plain SDPA
    with the usual mask."""
    if cu_seq_lens_q is None or query.shape[0] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    bounds = cu_seq_lens_q.tolist() if torch.is_tensor(cu_seq_lens_q) else list(cu_seq_lens_q)
    outputs = [
        sdpa_attention_forward(module, query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], None, **kwargs)[0]
        for a, b in itertools.pairwise(bounds)
    ]
    return torch.cat(outputs, dim=1), None


def register_segment_attention() -> str:
    """Register `segment_attention_forward` with transformers; returns the name for `attn_implementation=`.
    Use it with padding-free batches (`cu_seq_lens_q`) and `use_cache=False`."""
    AttentionInterface.register(SEGMENT_ATTENTION, segment_attention_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(SEGMENT_ATTENTION, sdpa_mask)  # padded batches keep their mask
    return SEGMENT_ATTENTION


# Attention kernels that attend within each example of a packed row: FlashAttention's variable-length kernel
# and the segment attention above (both read the collator's cu_seq_lens), and PyTorch's flex_attention
# (transformers builds a document block mask from the restarting position_ids; CUDA only for training:
# flex_attention has no backward on CPU).
PER_EXAMPLE_KERNELS = ("flash_attention_2", "flash_attention_3", "flex_attention", SEGMENT_ATTENTION)


@dataclass(frozen=True)
class AttentionChoice:
    """The `attn_implementation` to load the model with, and whether packed rows are computed per example."""

    implementation: str
    per_example: bool
    reason: str

    def __str__(self) -> str:
        layout = "padding-free packing" if self.per_example else "padded batches"
        return f"attn_implementation={self.implementation} -> {layout} ({self.reason})"


def is_per_example(implementation: str) -> bool:
    """True for kernels that keep attention inside each packed example (hub flash kernels included)."""
    return implementation in PER_EXAMPLE_KERNELS or (
        implementation.startswith("kernels-community/") and "flash" in implementation
    )


def choose_attention(device: str, requested: str = "auto", packed: bool = True) -> AttentionChoice:
    """`requested` as given, or for "auto": FlashAttention-2 on CUDA when `flash-attn` is installed, else
    the segment attention above (SDPA per example: any device, no extra package, no compilation). Packing
    pays only with a per-example kernel: plain SDPA computes the flattened row as one masked
    (sum of lengths)^2 attention. `packed=False` (padded batches, or blocks cut from one token stream):
    "auto" is SDPA, whose CUDA backends (FlashAttention, memory-efficient) need no extra package."""
    if requested == SEGMENT_ATTENTION:
        register_segment_attention()
    if requested != "auto":
        per_example = is_per_example(requested)
        why = "attends within each packed example" if per_example else "attends over the whole packed row"
        return AttentionChoice(requested, per_example, f"as requested; it {why}")
    if not packed:
        return AttentionChoice("sdpa", False, "no packed examples to separate: PyTorch's SDPA")
    if device == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return AttentionChoice("flash_attention_2", True, "flash-attn is installed: its variable-length kernel")
    why = "flash-attn is not installed" if device == "cuda" else f"no variable-length kernel on {device}"
    return AttentionChoice(register_segment_attention(), True, f"SDPA per packed example ({why})")
