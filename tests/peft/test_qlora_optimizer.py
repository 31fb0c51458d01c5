"""QLoRA's CUDA optimizer name really builds bitsandbytes' paged 8-bit AdamW (bitsandbytes: peft environment)."""

import bitsandbytes as bnb
import torch
from transformers import Trainer, TrainingArguments

from cookbook.device import DeviceChoice


def test_qlora_optimizer_on_cuda_is_bitsandbytes_paged_8bit_adamw(tmp_path):
    name = DeviceChoice("cuda", torch.bfloat16, "test").qlora_optimizer
    args = TrainingArguments(output_dir=str(tmp_path), optim=name, report_to="none")
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args)
    assert issubclass(cls, bnb.optim.AdamW) and kwargs.get("is_paged") is True and kwargs.get("optim_bits") == 8
