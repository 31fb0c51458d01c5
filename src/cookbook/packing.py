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
parameter) and says whether packing pays with it: only a per-example kernel (FlashAttention-2, PyTorch's
flex_attention) turns the packed row into the sum of each example's attention; the recipes pack only then.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

from cookbook.chat import IGNORE_INDEX


def padded_collator(tokenizer):
    """Pad every batch to its longest example; pads get label IGNORE_INDEX (-100) and attention mask 0."""
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)


def packing_collator():
    """Flatten every batch into one row with restarting position_ids: no pad tokens at all."""
    return DataCollatorWithFlattening(return_flash_attn_kwargs=True)


# Attention kernels that attend within each example of a packed row: FlashAttention's variable-length kernel
# (reads the collator's cu_seq_lens) and PyTorch's flex_attention (transformers builds a document block mask
# from the restarting position_ids and skips the blocks across examples).
PER_EXAMPLE_KERNELS = ("flash_attention_2", "flash_attention_3", "flex_attention")


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
    PyTorch's flex_attention on CUDA (no extra package), else SDPA (CPU, MPS). Packing pays only with a
    per-example kernel: with SDPA the flattened row is one masked (sum of lengths)^2 attention.
    `packed=False` (padded batches, or blocks cut from one token stream): "auto" is SDPA everywhere, whose
    CUDA backends (FlashAttention, memory-efficient) need no extra package."""
    if requested != "auto":
        per_example = is_per_example(requested)
        why = "attends within each packed example" if per_example else "attends over the whole packed row"
        return AttentionChoice(requested, per_example, f"as requested; it {why}")
    if not packed:
        return AttentionChoice("sdpa", False, "no packed examples to separate: PyTorch's SDPA")
    if device == "cuda":
        if importlib.util.find_spec("flash_attn") is not None:
            return AttentionChoice("flash_attention_2", True, "flash-attn is installed: variable-length kernel")
        return AttentionChoice(
            "flex_attention", True, "PyTorch's flex_attention with a per-example block mask (flash-attn not installed)"
        )
    return AttentionChoice(
        "sdpa", False, f"{device}: no per-example kernel; SDPA would attend over the whole packed row"
    )
