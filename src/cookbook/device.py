"""Pick the device, the training precision and the optimizer, and say in one line what was chosen and why.

One precision policy for every recipe:
- bf16 only on GPUs with native bf16 (compute capability 8.0 and up: A100, H100, RTX 30xx/40xx). Older GPUs
  (T4, V100) get fp16 with loss scaling. `torch.cuda.is_bf16_supported()` is not the test: it also says yes
  where bf16 is emulated, much slower than fp16.
- Weights that train are kept in fp32 ("master weights") and the forward/backward runs under bf16/fp16
  autocast (`trainer_precision`): an AdamW update is about the learning rate (1e-6..2e-5 for full fine-tuning),
  far below bf16's spacing at a typical weight (1.2e-4 at 0.02), so pure-bf16 weights would round most
  updates away; and fp16 weights cannot be unscaled by the GradScaler at all.
- Frozen weights (the base under a LoRA adapter) load in the compute dtype; adapters train in fp32 (PEFT's
  default `autocast_adapter_dtype=True`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BF16_MIN_CAPABILITY = (8, 0)  # Ampere: the first GPUs with bf16 tensor cores


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda", "mps" or "cpu"
    dtype: torch.dtype  # compute dtype: what autocast runs matmuls in, and what frozen weights are stored in
    reason: str

    @property
    def trainer_precision(self) -> dict[str, bool]:
        """The bf16/fp16 flags for transformers' TrainingArguments (and TRL's configs): autocast in that dtype,
        with a GradScaler for fp16. The weights that train must be fp32 (`trainable_dtype`)."""
        return {"bf16": self.dtype == torch.bfloat16, "fp16": self.dtype == torch.float16}

    @property
    def trainable_dtype(self) -> torch.dtype:
        """The dtype to load weights that will be trained (full fine-tuning, GRPO): always fp32 master weights."""
        return torch.float32

    @property
    def frozen_dtype(self) -> torch.dtype:
        """The dtype to load weights that stay frozen (a LoRA base, a reference model): the compute dtype."""
        return self.dtype

    def full_training_bytes_per_parameter(self) -> dict[str, int]:
        """Bytes per trained parameter for weights, gradients and AdamW's two moments under this policy
        (fp32 master weights), and what pure low-precision weights would take instead."""
        fp32 = torch.finfo(torch.float32).bits // 8
        low = torch.finfo(self.dtype).bits // 8
        return {"master_weights": fp32 + fp32 + 2 * fp32, "pure_low_precision": low + low + 2 * low}

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


def cuda_compute_dtype(capability: tuple[int, int]) -> torch.dtype:
    """bf16 from compute capability 8.0 (native bf16 tensor cores), fp16 with loss scaling below."""
    return torch.bfloat16 if tuple(capability) >= BF16_MIN_CAPABILITY else torch.float16


def select_device(force_cpu: bool = False, verbose: bool = True) -> DeviceChoice:
    """CUDA with bf16 where the GPU has it natively (fp16 otherwise), then Apple MPS, then CPU in fp32."""
    if force_cpu:
        choice = DeviceChoice("cpu", torch.float32, "CPU requested")
    elif torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        major, minor = torch.cuda.get_device_capability(0)
        if cuda_compute_dtype((major, minor)) == torch.bfloat16:
            choice = DeviceChoice("cuda", torch.bfloat16, f"{name} (compute capability {major}.{minor}) has bf16")
        else:
            choice = DeviceChoice(
                "cuda",
                torch.float16,
                f"{name} (compute capability {major}.{minor} < 8.0) has no native bf16: fp16 autocast with loss scaling",
            )
    elif torch.backends.mps.is_available():
        choice = DeviceChoice("mps", torch.float32, "Apple GPU; fp32 because bf16 training on MPS is incomplete")
    else:
        choice = DeviceChoice("cpu", torch.float32, "no GPU found; fp32 on CPU")
    if verbose:
        print(f"Using {choice}")
    return choice
