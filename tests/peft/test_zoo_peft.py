"""LoRA, QLoRA and the adapter lifecycle on every zoo member: no crash, the exact loss mask on multi-turn
conversations, an adapter folder whose tokenizer and generation config stop at the end-of-turn token, a
merge that reproduces the adapter, and a stop rate that rises where a few steps can teach it."""

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import BitsAndBytesConfig

from cookbook.loading import load_causal_lm
from cookbook.merging import check_merged_logits, merge_to_standalone
from cookbook.qlora_cpu import keep_4bit_layers_trainable_on_cpu
from cookbook.sft_data import fit_embeddings
from cookbook.smoke.data import chat_examples, multi_turn_examples
from cookbook.smoke.zoo import ZOO
from tests.zoo_fixtures import END_OF_TURN, expected_segments, load_member
from tests.zoo_recipes import (
    CONVERSATIONS,
    end_of_turn_id,
    row_segments,
    saved_stop,
    stop_rate,
    tokenized_conversations,
    train_briefly,
)

pytestmark = pytest.mark.zoo
LEARNS_TO_STOP = {"tiny-llama", "qwen2.5-base", "llama-3"}  # members where the short LoRA run must raise the stop rate


def nf4() -> BitsAndBytesConfig:
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
    )


def adapter_run(member, tmp_path, quantized: bool, steps: int):
    kwargs = {"quantization_config": nf4(), "device_map": {"": "cpu"}} if quantized else {}
    path, tokenizer, model = load_member(member, dtype=torch.float32, **kwargs)
    if quantized:
        keep_4bit_layers_trainable_on_cpu(model)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    dataset = tokenized_conversations(tokenizer)
    expected = [expected_segments(member, row["messages"]) for row in CONVERSATIONS[:6]]
    assert row_segments(dataset, tokenizer) == expected
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    trainer = train_briefly(model, tokenizer, dataset, tmp_path / "run", steps=steps, learning_rate=2e-2)
    before = stop_rate(model, tokenizer)
    trainer.evaluate()  # the QLoRA notebooks evaluate first: on CPU this once repacked the 4-bit weights
    trainer.train()
    after = stop_rate(model, tokenizer)
    adapter_dir = tmp_path / "adapter"
    model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    model.generation_config.save_pretrained(adapter_dir)
    assert saved_stop(adapter_dir, tokenizer) == (END_OF_TURN[member], end_of_turn_id(tokenizer))
    assert model.generation_config.eos_token_id[0] == end_of_turn_id(tokenizer)
    return path, tokenizer, model, adapter_dir, before, after


@pytest.mark.parametrize("member", ZOO)
def test_lora_recipe(member, tmp_path):
    _, _, _, _, before, after = adapter_run(member, tmp_path, quantized=False, steps=24)
    if member in LEARNS_TO_STOP:
        assert after > before, f"stop rate {before} -> {after}"


@pytest.mark.parametrize("member", ZOO)
def test_qlora_recipe(member, tmp_path):
    adapter_run(member, tmp_path, quantized=True, steps=3)


@pytest.mark.parametrize("member", ZOO)
def test_adapter_lifecycle_recipe(member, tmp_path):
    path, tokenizer, trained, adapter_dir, _, _ = adapter_run(member, tmp_path, quantized=True, steps=3)
    fresh_base = load_causal_lm(path, dtype=torch.float32)
    fit_embeddings(fresh_base, tokenizer)
    fresh_base.generation_config = trained.generation_config
    adapter_model = PeftModel.from_pretrained(fresh_base, adapter_dir).eval()
    batch = {"input_ids": torch.tensor([tokenized_conversations(tokenizer)[0]["input_ids"]])}
    with torch.no_grad():
        adapter_logits = adapter_model(**batch).logits
    merged_dir = merge_to_standalone(adapter_model, tmp_path / "merged", tokenizer=tokenizer)
    merged = load_causal_lm(str(merged_dir), dtype=torch.float32).eval()
    with torch.no_grad():
        check = check_merged_logits(adapter_logits, merged(**batch).logits, torch.float32)
    assert check.passed, str(check)
    assert saved_stop(merged_dir, tokenizer) == (END_OF_TURN[member], end_of_turn_id(tokenizer))


def test_the_smoke_chat_data_is_partly_multi_turn():
    rows = chat_examples(200, seed=1)
    turns = [sum(turn["role"] == "assistant" for turn in row["messages"]) for row in rows]
    assert 0.15 < sum(t > 1 for t in turns) / len(rows) < 0.5
    assert all(len([t for t in row["messages"] if t["role"] == "assistant"]) >= 2 for row in multi_turn_examples(10))
