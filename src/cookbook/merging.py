"""Adapter lifecycle helpers: merge a LoRA adapter into its base and check the result is the same model.

Merging writes `W + (alpha/r) B A` into each adapted weight, so the merged model needs no PEFT at
inference and has no extra latency. It must happen on a full-precision (bf16/fp16/fp32) base: a
4-bit base would have to be dequantized, merged and re-quantized, and re-quantizing rounds the small
LoRA update away along with the weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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


# A merged weight is rounded once where W x + s B A x is rounded twice, and the difference is carried through
# every layer: allow this many steps of the dtype's spacing at the largest logit.
ROUNDING_STEPS = 8


def dtype_spacing(dtype: torch.dtype, magnitude: float) -> float:
    """The gap between neighbouring values of `dtype` at `magnitude` (bf16 at 16..32: 0.125; fp32 at 16: 1.9e-6)."""
    return float(torch.finfo(dtype).eps) * 2.0 ** math.floor(math.log2(max(abs(magnitude), 2**-14)))


def merge_tolerance(dtype: torch.dtype, magnitude: float = 1.0) -> float:
    """How far merged and unmerged logits may drift: summation order changes the rounding.

    fp32: 1e-4, far above its rounding at any logit size. bf16/fp16: `ROUNDING_STEPS` spacings of the dtype
    at the largest logit (`magnitude`): bf16 keeps 8 significant bits, so logits of size 16..32 are only
    stored to 0.125, and a fixed threshold such as 5e-2 fails on correct merges.
    """
    if dtype == torch.float32:
        return 1e-4
    return ROUNDING_STEPS * dtype_spacing(dtype, magnitude)


@dataclass(frozen=True)
class MergeCheck:
    max_abs_diff: float
    tolerance: float
    top1_agreement: float  # share of positions whose argmax token agrees, among the decisive ones
    decisive_positions: int  # positions whose top-2 margin exceeds twice the tolerance

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.top1_agreement == 1.0

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"max |logit diff| {self.max_abs_diff:.3g} (tolerance {self.tolerance:.3g}), top-1 agreement "
            f"{self.top1_agreement:.3f} on {self.decisive_positions} decisive positions: {verdict}"
        )


def check_merged_logits(reference: torch.Tensor, merged: torch.Tensor, dtype: torch.dtype) -> MergeCheck:
    """Compare the adapter model's logits with the merged model's, both computed in `dtype`.

    The differences are taken in fp32, the tolerance follows `dtype`'s spacing at the largest logit, and the
    greedy token must agree wherever the reference's top-2 margin is larger than rounding could close.
    """
    reference, merged = reference.float(), merged.float()
    tolerance = merge_tolerance(dtype, reference.abs().max().item())
    top2 = reference.topk(2, dim=-1).values
    decisive = (top2[..., 0] - top2[..., 1]) > 2 * tolerance
    agree = reference.argmax(-1) == merged.argmax(-1)
    count = int(decisive.sum())
    agreement = float(agree[decisive].float().mean()) if count else 1.0
    return MergeCheck((reference - merged).abs().max().item(), tolerance, agreement, count)
