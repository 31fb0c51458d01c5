"""SFT on every zoo member: SFTTrainer never stops on a valid template (TRL's markers, else the cookbook's
mask pre-tokenised), the mask inside the trainer's dataset is exact on multi-turn conversations, full-weight
training keeps fp32 master weights, and the saved model stops at the end-of-turn token."""

import datasets
import pytest
import torch
from trl import SFTConfig, SFTTrainer

from cookbook.chat import masked_segments
from cookbook.sft_data import CONVERSATIONAL, sft_training_data
from cookbook.smoke.zoo import ZOO
from tests.zoo_fixtures import END_OF_TURN, expected_segments, load_member
from tests.zoo_recipes import CONVERSATIONS, end_of_turn_id, saved_stop, stop_rate

pytestmark = pytest.mark.zoo


def sft_run(member, tmp_path, steps=3):
    _, tokenizer, model = load_member(member, dtype=torch.float32)
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_list(CONVERSATIONS)})
    sft_splits, loss_options = sft_training_data(splits, tokenizer, max_length=192, data_format=CONVERSATIONAL)
    args = SFTConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        max_length=192,
        eos_token=tokenizer.eos_token,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        gradient_checkpointing=False,
        **loss_options,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=sft_splits["train"], processing_class=tokenizer)
    return tokenizer, model, trainer, loss_options


@pytest.mark.parametrize("member", ZOO)
def test_sft_recipe(member, tmp_path, capsys):
    tokenizer, model, trainer, loss_options = sft_run(member, tmp_path)
    printed = capsys.readouterr().out
    assert "loss mask: " in printed  # the path taken is said
    if member not in ("tiny-llama", "gpt2"):  # real templates carry no markers; the cookbook's ChatML has them
        assert not loss_options["assistant_only_loss"] and "pre-tokenised" in printed
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(6)])
    for i in range(6):
        row = {"input_ids": batch["input_ids"][i].tolist(), "labels": batch["labels"][i].tolist()}
        row["input_ids"] = [t for t, m in zip(row["input_ids"], batch["attention_mask"][i].tolist(), strict=True) if m]
        row["labels"] = row["labels"][: len(row["input_ids"])]
        assert masked_segments(row, tokenizer) == expected_segments(member, CONVERSATIONS[i]["messages"])
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # master weights stay fp32
    trainer.train()
    trainer.save_model(str(tmp_path / "model"))
    tokenizer.save_pretrained(tmp_path / "model")
    assert saved_stop(tmp_path / "model", tokenizer) == (END_OF_TURN[member], end_of_turn_id(tokenizer))


def test_sft_on_the_base_qwen2_5_template_no_longer_stops_in_the_trainer(tmp_path):
    """Issue item 1: TRL raised "The chat template is not training-compatible ... patching is not supported" for
    base Qwen2.5's template (ChatML, no markers, default system prompt "You are a helpful assistant.")."""
    tokenizer, model, trainer, loss_options = sft_run("qwen2.5-base", tmp_path, steps=2)
    assert loss_options == {"assistant_only_loss": False, "completion_only_loss": False}
    trainer.train()
    # what the notebook did before: TRL's own assistant-only loss on this template
    rows = datasets.Dataset.from_list(CONVERSATIONS[:4])
    args = SFTConfig(str(tmp_path / "trl"), max_steps=1, assistant_only_loss=True, report_to="none", use_cpu=True)
    with pytest.raises(ValueError, match="not training-compatible"):
        SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)


def test_sft_raises_the_stop_rate(tmp_path):
    """On the pretrained member; the random-weight members learn to stop in the LoRA runs (tests/peft)."""
    tokenizer, model, trainer, _ = sft_run("tiny-llama", tmp_path, steps=30)
    # 30 steps teach the turn's end before they teach short replies: give the replies room to reach it
    before = stop_rate(model, tokenizer, max_new_tokens=32)
    trainer.train()
    assert stop_rate(model, tokenizer, max_new_tokens=32) > before


@pytest.mark.notebook
def test_sft_notebook_runs_on_the_base_qwen2_5_member_as_a_user_would(tmp_path):
    """Issue item 1 end to end: `python -m cookbook.run sft.ipynb -p model_name FOLDER ...` with a base-Qwen2.5-shaped
    checkpoint and the notebook's default packing, not smoke mode."""
    from cookbook.layout import REPO_ROOT
    from cookbook.run import run_notebook
    from cookbook.smoke.data import write_smoke_dataset
    from cookbook.smoke.zoo import save_member

    parameters = {
        "model_name": str(save_member("qwen2.5-base")),
        "dataset_name": str(write_smoke_dataset("chat", tmp_path / "data", n_train=64, n_test=8)),
        "max_steps": 3,
        "batch_size": 4,
        "max_length": 128,
        "eval_samples": 8,
        "generation_samples": 2,
        "max_new_tokens": 8,
        "compare_packing_steps": 0,
    }
    metrics = run_notebook(REPO_ROOT / "03-Instruction-Tuning" / "sft.ipynb", tmp_path / "run", parameters)
    assert metrics["loss_mask"] == "cookbook" and metrics["packed_training"] is True
    assert metrics["end_of_turn_token"] == END_OF_TURN["qwen2.5-base"]
    assert metrics["generation_eos_token_id"][0] != metrics["generation_eos_token_id"][-1]  # original EOS kept


def test_the_zoo_templates_are_the_ones_trl_ships():
    from importlib import resources

    for path in resources.files("cookbook.smoke").joinpath("chat_templates").iterdir():
        if path.name.endswith(".jinja"):
            assert path.read_text() == resources.files("trl").joinpath("chat_templates", path.name).read_text()
