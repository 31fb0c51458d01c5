"""Experiment tracking: `report_to` is checked before training, and what TensorBoard stores is what the Trainer logged."""

import pytest
import torch
from transformers import Trainer, TrainingArguments

from cookbook.errors import CookbookInputError
from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.smoke.tiny_model import save_tiny_model
from cookbook.tracking import read_tensorboard_scalars, tensorboard_event_files, trackers, tracking_summary


@pytest.mark.parametrize(
    ("report_to", "expected"),
    [("none", []), (None, []), ([], []), ("tensorboard", ["tensorboard"]), (" tensorboard ,", ["tensorboard"])],
)
def test_report_to_is_normalised_to_the_trainers_list(report_to, expected):
    assert trackers(report_to) == expected


def test_unknown_tracker_is_one_line_naming_the_choices():
    with pytest.raises(CookbookInputError, match="tensorboard") as error:
        trackers("tensorbored")
    assert "\n" not in str(error.value)


def test_tracker_whose_package_is_missing_says_what_to_install(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(CookbookInputError, match="pip install wandb"):
        trackers("wandb")


class _Blocks(torch.utils.data.Dataset):
    def __init__(self, tokenizer):
        ids = tokenizer("The quick fox runs near the river. " * 8, return_tensors="pt")["input_ids"][0][:32]
        self.ids = ids

    def __len__(self):
        return 64

    def __getitem__(self, index):
        return {"input_ids": self.ids, "labels": self.ids}


def test_tensorboard_holds_the_loss_of_every_logged_step(tmp_path):
    model_path = str(save_tiny_model())
    tokenizer = load_tokenizer(model_path)
    report_to = trackers("tensorboard")
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=report_to,
        use_cpu=True,
    )
    trainer = Trainer(model=load_causal_lm(model_path), args=args, train_dataset=_Blocks(tokenizer))
    trainer.train()

    assert tensorboard_event_files(tmp_path), "no TensorBoard event file under output_dir/runs"
    stored = read_tensorboard_scalars(tmp_path, "train/loss")
    logged = tracking_summary(report_to, tmp_path, trainer.state.log_history)["logged_losses"]
    assert [step for step, _ in stored] == [step for step, _ in logged] == list(range(1, 7))
    # TensorBoard stores float32: equal to the Trainer's value up to float32 rounding
    assert [value for _, value in stored] == pytest.approx([value for _, value in logged], rel=1e-6)
    assert len({value for _, value in stored}) > 1, "the loss never changed: nothing was trained"


def test_an_evaluation_before_training_logs_into_output_dir_too(tmp_path, monkeypatch):
    """Every recipe evaluates its baseline before training: those logs and the training's must land in
    `<output_dir>/runs/`, never in `./runs/` of the working directory (the notebook's folder)."""
    monkeypatch.chdir(tmp_path)
    model_path = str(save_tiny_model())
    tokenizer = load_tokenizer(model_path)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=3,
        per_device_train_batch_size=4,
        logging_steps=1,
        save_strategy="no",
        report_to=trackers("tensorboard"),
        use_cpu=True,
    )
    data = _Blocks(tokenizer)
    trainer = Trainer(model=load_causal_lm(model_path), args=args, train_dataset=data, eval_dataset=data)
    trainer.evaluate()
    trainer.train()
    assert not (tmp_path / "runs").exists(), "TensorBoard wrote into the working directory"
    assert [step for step, _ in read_tensorboard_scalars(tmp_path / "out", "train/loss")] == [1, 2, 3]
    assert read_tensorboard_scalars(tmp_path / "out", "eval/loss"), "the baseline evaluation is missing"
