"""Unit tests for the plumbing the notebooks import."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from cookbook import RunConfig, select_device
from cookbook.chat import IGNORE_INDEX, show_loss_mask, tokenize_conversation, validate_conversation
from cookbook.errors import CookbookInputError
from cookbook.loading import load_causal_lm, load_splits, load_tokenizer, require_columns
from cookbook.results import RunRecorder
from cookbook.smoke.data import chat_examples, math_problems, text_corpus, write_smoke_dataset
from cookbook.smoke.tiny_model import TinyModelSpec, build_tiny_model, save_tiny_model


@pytest.fixture(scope="session")
def tiny_model_path():
    return save_tiny_model()


@pytest.fixture(scope="session")
def tokenizer(tiny_model_path):
    return load_tokenizer(str(tiny_model_path))


def test_select_device_on_cpu_prints_one_line(capsys):
    choice = select_device(force_cpu=True)
    assert (choice.device, choice.dtype) == ("cpu", torch.float32)
    assert choice.trainer_precision == {"bf16": False, "fp16": False}
    assert capsys.readouterr().out.count("\n") == 1


def test_tiny_model_is_deterministic_for_a_seed():
    spec = TinyModelSpec(pretrain_steps=0, seed=3)
    first, _ = build_tiny_model(spec)
    second, _ = build_tiny_model(spec)
    other, _ = build_tiny_model(TinyModelSpec(pretrain_steps=0, seed=4))
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, c) for a, c in zip(first.parameters(), other.parameters(), strict=True))


def test_saved_tiny_model_loads_like_a_hub_checkpoint(tiny_model_path, tokenizer):
    assert (tiny_model_path / "model.safetensors").exists()
    assert not list(tiny_model_path.glob("*.bin")), "weights must be safetensors, never pickle"
    model = load_causal_lm(str(tiny_model_path))
    assert model.config.eos_token_id == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.chat_template and "generation" in tokenizer.chat_template


def test_pretrained_tiny_model_knows_its_prose_better_than_chance(tiny_model_path, tokenizer):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    ids = tokenizer(text_corpus(4, seed=99)[0]["text"], return_tensors="pt").input_ids
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss.item()
    assert loss < 0.5 * torch.log(torch.tensor(len(tokenizer))).item()


def test_smoke_data_is_deterministic_and_splits_do_not_overlap(tmp_path):
    assert chat_examples(5, seed=1) == chat_examples(5, seed=1)
    assert math_problems(20, seed=1) != math_problems(20, seed=2)
    assert all(int(p["answer"]) >= 0 and p["answer"] in p["solution"] for p in math_problems(50))
    folder = write_smoke_dataset("chat", tmp_path)
    train = {line for line in (folder / "train.jsonl").read_text().splitlines()}
    test = {line for line in (folder / "test.jsonl").read_text().splitlines()}
    assert train and test and not train & test


def test_loss_mask_covers_exactly_the_assistant_turn_and_its_eos(tokenizer):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2 plus 2?"},
        {"role": "assistant", "content": "2 plus 2 is 4."},
    ]
    example = tokenize_conversation(messages, tokenizer, max_length=256)
    trained = [t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label != IGNORE_INDEX]
    assert tokenizer.decode(trained).startswith("2 plus 2 is 4.<|im_end|>")
    assert "What is" not in tokenizer.decode(trained)
    assert "[<|im_end|>]" in show_loss_mask(example, tokenizer)


def test_multi_turn_masks_every_assistant_turn(tokenizer):
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye"},
    ]
    example = tokenize_conversation(messages, tokenizer, max_length=256)
    trained = tokenizer.decode([t for t, lab in zip(example["input_ids"], example["labels"], strict=True) if lab >= 0])
    assert "Hello" in trained and "Goodbye" in trained and "Bye<" not in trained


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ("just text", "must be a list"),
        ([{"role": "robot", "content": "hi"}], "unknown role 'robot'"),
        ([{"role": "user", "content": "hi"}], "no assistant turn"),
        ([{"role": "user"}], "string 'content'"),
    ],
)
def test_malformed_conversations_get_one_clear_line(messages, message):
    with pytest.raises(CookbookInputError, match=message) as error:
        validate_conversation(messages)
    assert "\n" not in str(error.value)


def test_missing_model_and_dataset_paths_say_what_to_do(tmp_path):
    with pytest.raises(CookbookInputError, match="does not exist"):
        load_causal_lm(str(tmp_path / "no-such-model"))
    with pytest.raises(CookbookInputError, match="no train"):
        load_splits(str(tmp_path))


def test_dataset_without_expected_column_is_rejected(tmp_path):
    folder = write_smoke_dataset("text", tmp_path)
    splits = load_splits(str(folder))
    with pytest.raises(CookbookInputError, match=r"no column\(s\) \['messages'\]"):
        require_columns(splits["train"], ["messages"], "conversations")


def test_dataset_without_test_split_gets_a_held_out_one(tmp_path):
    folder = write_smoke_dataset("math", tmp_path, n_train=100)
    (folder / "test.jsonl").unlink()
    splits = load_splits(str(folder))
    assert len(splits["test"]) == 5 and len(splits["train"]) == 95


def test_run_config_smoke_swaps_in_local_model_and_data(tmp_path):
    run = RunConfig(
        model="org/huge-model",
        dataset="org/data",
        output_dir=str(tmp_path),
        max_steps=20,
        learning_rate=1e-2,
        smoke=True,
    )
    resolved = run.resolve()  # steps and rate come from the notebook's smoke profile, taken as given
    assert (resolved.max_steps, resolved.learning_rate) == (20, 1e-2)
    assert (tmp_path / "smoke-data" / "train.jsonl").exists()
    assert "tiny-llama" in resolved.model
    with pytest.raises(ValueError, match="max_steps"):
        RunConfig(model="m", dataset="d", output_dir=str(tmp_path), max_steps=0).resolve()


def test_recorder_writes_metrics_and_plot(tmp_path):
    recorder = RunRecorder(tmp_path, technique="unit")
    history = [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0}, {"step": 2, "eval_loss": 2.5}]
    recorder.record_training(history, train_seconds=2.0, tokens_seen=100)
    recorder.record_eval("eval_loss", 3.1, 2.4, higher_is_better=False)
    metrics = json.loads(recorder.write(device="cpu").read_text())
    assert metrics["train_loss_start"] == 3.0 and metrics["train_loss_end"] == 2.0
    assert metrics["tokens_per_s"] == 50.0 and metrics["peak_memory_bytes"] > 0
    assert (tmp_path / "loss_curve.png").stat().st_size > 1000
    with pytest.raises(RuntimeError, match="logging_steps"):
        recorder.record_training([], 1.0, 0)
