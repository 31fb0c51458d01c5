"""TRL trainers interrupted and resumed end like uninterrupted runs, and a resume that lost its optimizer state
does not (tolerances in `cookbook.smoke.resume_check`). Each trainer is one entry in TRAINERS: a function
from an output folder to a fresh trainer on the tiny model."""

import datasets
import pytest
from peft import LoraConfig
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.smoke.data import chat_examples, preference_pairs
from cookbook.smoke.resume_check import TRAINING_ARGUMENTS, compare_resume
from cookbook.smoke.tiny_model import save_tiny_model

STEPS, STOP_AFTER = 6, 3
COMMON = {"max_steps": STEPS, "per_device_train_batch_size": 4, "learning_rate": 5e-3, "lr_scheduler_type": "cosine"}


def sft_trainer(output_dir: str) -> SFTTrainer:
    model = save_tiny_model()
    return SFTTrainer(
        model=load_causal_lm(str(model)),
        args=SFTConfig(output_dir=output_dir, max_length=64, **COMMON, **TRAINING_ARGUMENTS),
        train_dataset=datasets.Dataset.from_list(chat_examples(48, seed=5)),
        processing_class=load_tokenizer(str(model)),
    )


def dpo_trainer(output_dir: str) -> DPOTrainer:
    """As dpo.ipynb trains: a LoRA adapter, the reference being the base with the adapter disabled."""
    model = save_tiny_model()
    return DPOTrainer(
        model=load_causal_lm(str(model)),
        ref_model=None,
        args=DPOConfig(output_dir=output_dir, max_length=64, beta=0.1, **COMMON, **TRAINING_ARGUMENTS),
        train_dataset=datasets.Dataset.from_list(preference_pairs(48, seed=5)),
        processing_class=load_tokenizer(str(model)),
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"),
    )


TRAINERS = {"sft": sft_trainer, "dpo": dpo_trainer}


@pytest.mark.parametrize("technique", sorted(TRAINERS))
def test_trl_resume_equals_an_uninterrupted_run(technique, tmp_path):
    compare_resume(TRAINERS[technique], tmp_path, STOP_AFTER).assert_resume_is_equivalent()
