"""Randomly initialised models set up for full, LoRA or QLoRA training, for measuring memory and speed.

The planner's tests, the GPU planner check and the throughput benchmark all need "this architecture,
prepared the way technique X trains it" without downloading weights. QLoRA quantizes on load, so its
model is saved once and reloaded through bitsandbytes, exactly as a hub checkpoint would be.
"""

from __future__ import annotations

import tempfile

import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, PretrainedConfig

from cookbook.perf.memory_plan import TECHNIQUES


def nf4_config(compute_dtype: torch.dtype) -> BitsAndBytesConfig:
    """QLoRA's storage: 4-bit NormalFloat with double quantization, matmuls in `compute_dtype`."""
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def build_random_model(
    config: PretrainedConfig,
    technique: str,
    dtype: torch.dtype,
    device: str = "cpu",
    attn_implementation: str = "sdpa",
    lora_rank: int = 16,
    lora_alpha: int | None = None,
    seed: int = 0,
):
    """`config`'s architecture with seeded random weights, with LoRA adapters on every linear layer for
    lora/qlora and a 4-bit NF4 base for qlora."""
    if technique not in TECHNIQUES:
        raise ValueError(f"technique must be one of {TECHNIQUES}, got {technique!r}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation).to(dtype)
    if technique == "qlora":
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(
                folder,
                quantization_config=nf4_config(dtype),
                dtype=dtype,
                device_map=device,
                attn_implementation=attn_implementation,
            )
    else:
        model = model.to(device)
    if technique != "full":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=lora_rank, lora_alpha=lora_alpha or lora_rank, target_modules="all-linear", lora_dropout=0.0
        )
        model = get_peft_model(model, lora)
    return model
