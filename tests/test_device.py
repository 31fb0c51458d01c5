"""The optimizer each recipe's Trainer gets comes from one place: DeviceChoice."""

import torch
from transformers import Trainer, TrainingArguments

from cookbook.device import DeviceChoice, select_device


def choice(device: str, dtype=torch.float32) -> DeviceChoice:
    return DeviceChoice(device, dtype, "test")


def optimizer_for(optim: str, tmp_path) -> tuple[type, dict]:
    """The optimizer class and keyword arguments the Trainer builds for `optim` (no model needed)."""
    args = TrainingArguments(output_dir=str(tmp_path), optim=optim, report_to="none")
    return Trainer.get_optimizer_cls_and_kwargs(args)


def test_fused_adamw_on_cuda_only(tmp_path):
    cuda = choice("cuda", torch.bfloat16)
    assert cuda.trainer_optimizer == "adamw_torch_fused"
    cls, kwargs = optimizer_for(cuda.trainer_optimizer, tmp_path)
    assert cls is torch.optim.AdamW and kwargs.get("fused") is True
    for device in ("cpu", "mps"):
        name = choice(device).trainer_optimizer
        assert name == "adamw_torch"
        cls, kwargs = optimizer_for(name, tmp_path)
        assert cls is torch.optim.AdamW and not kwargs.get("fused")


def test_qlora_gets_paged_8bit_adamw_on_cuda_and_the_plain_choice_elsewhere():
    assert choice("cuda", torch.bfloat16).qlora_optimizer == "paged_adamw_8bit"
    assert choice("cpu").qlora_optimizer == choice("cpu").trainer_optimizer == "adamw_torch"
    assert choice("mps").qlora_optimizer == "adamw_torch"


def test_precision_flags_follow_the_dtype():
    assert choice("cuda", torch.bfloat16).trainer_precision == {"bf16": True, "fp16": False}
    assert choice("cuda", torch.float16).trainer_precision == {"bf16": False, "fp16": True}
    assert choice("cpu").trainer_precision == {"bf16": False, "fp16": False}


def test_forced_cpu_choice_trains_with_plain_adamw():
    cpu = select_device(force_cpu=True, verbose=False)
    assert (cpu.device, cpu.dtype, cpu.trainer_optimizer) == ("cpu", torch.float32, "adamw_torch")
