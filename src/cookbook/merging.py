"""Adapter lifecycle helpers: merge a LoRA adapter into its base and check the result is the same model.

Merging writes `W + (alpha/r) B A` into each adapted weight, so the merged model needs no PEFT at
inference and has no extra latency. It must happen on a full-precision (bf16/fp16/fp32) base: a
4-bit base would have to be dequantized, merged and re-quantized, and re-quantizing rounds the small
LoRA update away along with the weight.
"""

from __future__ import annotations

from pathlib import Path

import torch

from cookbook.errors import CookbookInputError


def merge_to_standalone(peft_model, output_dir: str | Path, tokenizer=None) -> Path:
    """Merge the adapter into the base weights and save a plain transformers model as safetensors."""
    base = peft_model.get_base_model()
    if getattr(base, "is_loaded_in_4bit", False) or getattr(base, "is_loaded_in_8bit", False):
        raise CookbookInputError(
            "this adapter sits on a quantized base: reload the base in bf16 (no quantization_config), attach "
            "the adapter with PeftModel.from_pretrained, then merge"
        )
    merged = peft_model.merge_and_unload()
    output_dir = Path(output_dir)
    merged.save_pretrained(output_dir, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(output_dir)
    if not list(output_dir.glob("*.safetensors")):
        raise RuntimeError(f"no .safetensors file was written to {output_dir}")
    return output_dir


@torch.no_grad()
def max_logit_diff(model_a, model_b, batch: dict) -> float:
    """Largest absolute difference between two models' logits on the same batch (both in eval mode)."""
    model_a.eval()
    model_b.eval()
    return (model_a(**batch).logits.float() - model_b(**batch).logits.float()).abs().max().item()


def merge_tolerance(dtype: torch.dtype) -> float:
    """How far merged and unmerged logits may drift: summation order changes the rounding.

    fp32 keeps ~7 significant digits, bf16 ~3: a merged bf16 weight is rounded once more than the
    separate W and BA paths, so logits of size ~10 may move by a few hundredths.
    """
    return 1e-4 if dtype == torch.float32 else 5e-2
