"""Count training memory from the tensors themselves: parameters, gradients and optimizer state.

This is what a CPU can show honestly (its resident set size mixes in the allocator, the Python heap
and every earlier run in the process). Activations are not counted: they depend on batch and length
and are freed as the backward pass goes. bitsandbytes' 4-bit weights are counted as stored (packed
uint8) plus their quantization constants.
"""

from __future__ import annotations

import torch
from torch import nn


def _quant_state_bytes(param: torch.Tensor) -> int:
    state = getattr(param, "quant_state", None)
    if state is None:
        return 0
    tensors = state.as_dict(packed=False) if hasattr(state, "as_dict") else {}
    total = 0
    for value in tensors.values():
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
    return total


def parameter_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer as stored (4-bit weights packed, plus their constants)."""
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        total += tensor.numel() * tensor.element_size() + _quant_state_bytes(tensor)
    return total


def gradient_bytes(model: nn.Module) -> int:
    """Bytes of the gradients currently held (call after backward, before zero_grad)."""
    return sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor in the optimizer's state (AdamW: two moments per trainable value)."""
    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                total += value.numel() * value.element_size()
    return total


def trainable_parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def training_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Parameters, gradients and optimizer state in bytes, and their sum (after at least one step)."""
    counted = {
        "parameter_bytes": parameter_bytes(model),
        "gradient_bytes": gradient_bytes(model),
        "optimizer_state_bytes": optimizer_state_bytes(optimizer),
    }
    counted["total_bytes"] = sum(counted.values())
    counted["trainable_parameters"] = trainable_parameter_count(model)
    return counted


# Bytes per parameter of the *static* training state (weights, gradients, optimizer), no activations.
# Full fine-tuning in bf16 mixed precision with AdamW: bf16 weights (2) + fp32 master copy (4) +
# bf16 grads (2) + two fp32 moments (8) = 16. LoRA/QLoRA: the frozen base only (bf16: 2; NF4 with
# double quantization: 4 bits + ~0.127 bits of constants per weight = ~0.516), plus the adapter.
BYTES_PER_BASE_PARAMETER = {"full": 16.0, "lora": 2.0, "qlora": 0.516}


def estimate_static_bytes(
    n_parameters: float, method: str, adapter_fraction: float = 0.01, unquantized_parameters: float = 0.0
) -> float:
    """An *estimate* (a formula, not a measurement) of weights + gradients + optimizer state.

    The adapter (a fraction of the base's size) costs 16 bytes per parameter in fp32 with AdamW
    (4 weight + 4 grad + 8 moments). `unquantized_parameters` (embeddings, output head: part of
    `n_parameters`) stay out of the 4-bit layers; `prepare_model_for_kbit_training` casts them to fp32,
    4 bytes each, under QLoRA. Activations and the CUDA context (~0.5-1 GB) come on top.
    """
    if method not in BYTES_PER_BASE_PARAMETER:
        raise ValueError(f"method must be one of {sorted(BYTES_PER_BASE_PARAMETER)}, got {method!r}")
    adapter = 0.0 if method == "full" else 16.0 * adapter_fraction * n_parameters
    if method != "qlora":
        return BYTES_PER_BASE_PARAMETER[method] * n_parameters + adapter
    quantized = n_parameters - unquantized_parameters
    return BYTES_PER_BASE_PARAMETER["qlora"] * quantized + 4.0 * unquantized_parameters + adapter
