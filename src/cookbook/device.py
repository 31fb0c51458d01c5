"""Pick the device, the training precision and the optimizer, and say in one line what was chosen and why."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda", "mps" or "cpu"
    dtype: torch.dtype
    reason: str

    @property
    def trainer_precision(self) -> dict[str, bool]:
        """The bf16/fp16 flags for transformers' TrainingArguments (and TRL's configs)."""
        return {"bf16": self.dtype == torch.bfloat16, "fp16": self.dtype == torch.float16}

    @property
    def trainer_optimizer(self) -> str:
        """The `optim` for TrainingArguments (and TRL's configs): AdamW, fused on CUDA.

        The fused CUDA kernel updates every parameter tensor in one launch instead of a few small kernels per
        tensor; same maths, less time in the optimizer step. Elsewhere torch's standard AdamW.
        """
        return "adamw_torch_fused" if self.device == "cuda" else "adamw_torch"

    @property
    def qlora_optimizer(self) -> str:
        """The `optim` for QLoRA: bitsandbytes' paged 8-bit AdamW on CUDA, `trainer_optimizer` elsewhere.

        Paging moves optimizer state to CPU RAM through CUDA unified memory when the GPU runs short; it has
        no meaning without CUDA, and an adapter's optimizer state is small enough in fp32 anyway.
        """
        return "paged_adamw_8bit" if self.device == "cuda" else self.trainer_optimizer

    def __str__(self) -> str:
        return f"device={self.device} dtype={str(self.dtype).removeprefix('torch.')} ({self.reason})"


def select_device(force_cpu: bool = False, verbose: bool = True) -> DeviceChoice:
    """CUDA with bf16 where the GPU supports it (fp16 otherwise), then Apple MPS, then CPU in fp32."""
    if force_cpu:
        choice = DeviceChoice("cpu", torch.float32, "CPU requested")
    elif torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        if torch.cuda.is_bf16_supported():
            choice = DeviceChoice("cuda", torch.bfloat16, f"{name} supports bf16")
        else:
            choice = DeviceChoice("cuda", torch.float16, f"{name} has no bf16, using fp16 with loss scaling")
    elif torch.backends.mps.is_available():
        choice = DeviceChoice("mps", torch.float32, "Apple GPU; fp32 because bf16 training on MPS is incomplete")
    else:
        choice = DeviceChoice("cpu", torch.float32, "no GPU found; fp32 on CPU")
    if verbose:
        print(f"Using {choice}")
    return choice
