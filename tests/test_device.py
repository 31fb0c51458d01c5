"""The optimizer each recipe's Trainer gets comes from one place: DeviceChoice."""

import pytest
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


def fake_gpu(monkeypatch, capability, name):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what it says with emulation


@pytest.mark.parametrize(
    ("capability", "name", "dtype"),
    [
        ((7, 0), "Tesla V100", torch.float16),
        ((7, 5), "Tesla T4", torch.float16),
        ((8, 0), "A100", torch.bfloat16),
        ((9, 0), "H100", torch.bfloat16),
    ],
)
def test_bf16_only_from_compute_capability_8(monkeypatch, capability, name, dtype):
    """Issue item 4: torch.cuda.is_bf16_supported() also says yes where bf16 is only emulated (T4, V100)."""
    fake_gpu(monkeypatch, capability, name)
    choice = select_device(verbose=False)
    assert choice.dtype == dtype
    assert choice.trainer_precision == {"bf16": dtype == torch.bfloat16, "fp16": dtype == torch.float16}
    assert f"{capability[0]}.{capability[1]}" in choice.reason


@pytest.mark.parametrize("capability", [(7, 5), (9, 0)])
def test_full_weight_training_keeps_fp32_master_weights_and_adapters_train_in_fp32(monkeypatch, capability):
    fake_gpu(monkeypatch, capability, "GPU")
    choice = select_device(verbose=False)
    assert choice.trainable_dtype == torch.float32
    assert choice.frozen_dtype == choice.dtype != torch.float32
    assert choice.full_training_bytes_per_parameter() == {"master_weights": 16, "pure_low_precision": 8}


def test_fp16_autocast_trains_fp32_master_weights_with_a_grad_scaler(tmp_path):
    """Issue item 4: fp16 weights with fp16=True stop in "Attempting to unscale FP16 gradients"; fp32 weights under
    fp16 autocast are what the GradScaler unscales. The scaler runs on CPU too, so the check needs no GPU."""
    model = torch.nn.Linear(8, 8)
    scaler = torch.amp.GradScaler("cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(torch.randn(4, 8)).float().pow(2).mean()
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)  # fp32 parameters: fine
    half = torch.nn.Linear(8, 8).half()
    half_scaler = torch.amp.GradScaler("cpu")
    half_scaler.scale(half(torch.randn(4, 8).half()).float().pow(2).mean()).backward()
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients"):
        half_scaler.unscale_(torch.optim.AdamW(half.parameters(), lr=1e-3))


def test_an_update_of_the_learning_rate_rounds_away_in_bf16_but_not_in_fp32():
    weight = torch.tensor(0.02)
    update = 2e-5  # one AdamW step is about the learning rate
    assert (weight.bfloat16() + update).item() == weight.bfloat16().item()
    assert (weight + update).item() != weight.item()
