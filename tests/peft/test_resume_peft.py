"""LoRA and QLoRA (4-bit on CPU) runs interrupted and resumed end like uninterrupted ones, and a resume that
lost its optimizer state does not (tolerances in `cookbook.smoke.resume_check`)."""

import datasets
import pytest
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import BitsAndBytesConfig, Trainer, TrainingArguments

from cookbook.chat import tokenize_conversation
from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.packing import padded_collator
from cookbook.smoke.data import chat_examples
from cookbook.smoke.resume_check import TRAINING_ARGUMENTS, compare_resume
from cookbook.smoke.tiny_model import save_tiny_model

STEPS, STOP_AFTER = 6, 3


@pytest.fixture(scope="module")
def tiny():
    model = str(save_tiny_model())
    tokenizer = load_tokenizer(model)
    rows = datasets.Dataset.from_list(chat_examples(48, seed=5))
    train = rows.map(lambda row: tokenize_conversation(row["messages"], tokenizer, 64), remove_columns=["messages"])
    return {"model": model, "tokenizer": tokenizer, "train": train}


def lora_trainer(tiny, output_dir: str, quantized: bool) -> Trainer:
    if quantized:
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype="float32")
        model = prepare_model_for_kbit_training(
            load_causal_lm(tiny["model"], quantization_config=quant, device_map={"": "cpu"}),
            use_gradient_checkpointing=False,
        )
    else:
        model = load_causal_lm(tiny["model"])
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=STEPS,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        lr_scheduler_type="cosine",
        **TRAINING_ARGUMENTS,
    )
    return Trainer(
        model=model, args=args, train_dataset=tiny["train"], data_collator=padded_collator(tiny["tokenizer"])
    )


@pytest.mark.parametrize("quantized", [False, True], ids=["lora", "qlora-4bit-cpu"])
def test_peft_resume_equals_an_uninterrupted_run(tiny, tmp_path, quantized):
    comparison = compare_resume(lambda folder: lora_trainer(tiny, folder, quantized), tmp_path, STOP_AFTER)
    comparison.assert_resume_is_equivalent()
