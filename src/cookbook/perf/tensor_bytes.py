"""Count training memory from the tensors themselves: parameters, gradients and optimizer state.

This is what a CPU can show honestly (its resident set size mixes in the allocator, the Python heap
and every earlier run in the process). Activations are not counted: they depend on batch and length
and are freed as the backward pass goes. bitsandbytes' 4-bit weights are counted as stored (packed
uint8) plus their quantization constants. Estimates for model sizes that do not fit here come from the
memory planner, `cookbook.perf.memory_plan`.
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
