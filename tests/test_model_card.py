"""Model cards are written from metrics.json with the run's figures and exact environment; publishing is wired
to HF_TOKEN only and checked before training. Nothing here reaches the network."""

import hashlib
import json

import pytest
from huggingface_hub import ModelCard

from cookbook import model_card
from cookbook.errors import CookbookInputError
from cookbook.model_card import check_publishing, environment_facts, push_folder, write_model_card
from cookbook.results import RunRecorder


@pytest.fixture
def run_folder(tmp_path):
    """A run's output folder: metrics.json written by RunRecorder, and a saved adapter folder."""
    recorder = RunRecorder(tmp_path, technique="dpo")
    recorder.metrics.update(train_loss_start=0.6931, train_loss_end=0.3492, tokens_per_s=2220.5)
    recorder.record_eval("preference_accuracy", 0.59375, 0.84375, higher_is_better=True)
    metrics_path = recorder.write(device="device=cpu dtype=float32")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    return adapter, metrics_path


def test_card_has_hub_front_matter_and_the_runs_figures(run_folder, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    adapter, metrics_path = run_folder
    card_path = write_model_card(adapter, metrics_path, "Qwen/Qwen2.5-0.5B-Instruct", "trl-lib/ultrafeedback_binarized")

    card = ModelCard.load(card_path)
    assert card.data.base_model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert card.data.datasets == ["trl-lib/ultrafeedback_binarized"]
    assert card.data.library_name == "peft"
    assert {"dpo", "lora"} <= set(card.data.tags)
    assert "| preference_accuracy | 0.5938 | 0.8438 | higher |" in card.text
    assert "0.6931 -> 0.3492" in card.text
    assert json.loads((adapter / "metrics.json").read_text()) == json.loads(metrics_path.read_text())


def test_local_paths_stay_out_of_the_front_matter(run_folder, tmp_path):
    adapter, metrics_path = run_folder
    card = ModelCard.load(write_model_card(adapter, metrics_path, str(tmp_path), str(tmp_path)))
    assert card.data.base_model is None and card.data.datasets is None
    assert f"`{tmp_path}`" in card.text  # still named in the body


def test_environment_is_the_pixi_lock_hash_when_there_is_one(run_folder, monkeypatch, tmp_path):
    (tmp_path / "pixi.lock").write_text("version: 6\npackages: []\n")
    monkeypatch.setenv("PIXI_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("PIXI_ENVIRONMENT_NAME", "instruction-tuning")
    facts = environment_facts()
    assert facts["pixi_environment"] == "instruction-tuning"
    assert facts["pixi_lock_sha256"] == hashlib.sha256((tmp_path / "pixi.lock").read_bytes()).hexdigest()
    adapter, metrics_path = run_folder
    text = write_model_card(adapter, metrics_path, "a/b", "c/d").read_text()
    assert f"pixi environment `instruction-tuning`, pixi.lock sha256 `{facts['pixi_lock_sha256']}`" in text


def test_environment_without_pixi_lists_the_installed_versions(monkeypatch, tmp_path):
    (tmp_path / "pixi.toml").write_text("")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "pins.txt").write_text("torch==2.13.0\n")
    monkeypatch.setenv("PIXI_PROJECT_ROOT", str(tmp_path))
    facts = environment_facts()
    assert "pixi_lock_sha256" not in facts
    assert facts["pip_pins_sha256"] == hashlib.sha256(b"torch==2.13.0\n").hexdigest()
    import torch
    import transformers

    assert facts["packages"]["torch"] == torch.__version__
    assert facts["packages"]["transformers"] == transformers.__version__


def test_card_needs_the_saved_folder(tmp_path):
    with pytest.raises(CookbookInputError, match="save the model"):
        write_model_card(tmp_path / "missing", tmp_path / "metrics.json", "a/b", "c/d")


@pytest.mark.parametrize(
    ("hub_model_id", "token", "message"),
    [("", "hf_x", "hub_model_id"), ("no-owner", "hf_x", "hub_model_id"), ("me/model", None, "HF_TOKEN")],
)
def test_publishing_problems_are_caught_before_training(monkeypatch, hub_model_id, token, message):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    check_publishing(False, hub_model_id)  # off: nothing to check
    with pytest.raises(CookbookInputError, match=message):
        check_publishing(True, hub_model_id)


def test_push_uses_the_token_from_the_environment_and_a_private_repo(monkeypatch, run_folder):
    calls = []

    class FakeApi:
        def __init__(self, token):
            calls.append(("token", token))

        def create_repo(self, repo_id, private, exist_ok):
            calls.append(("create_repo", repo_id, private, exist_ok))
            return f"https://hub.example/{repo_id}"

        def upload_folder(self, repo_id, folder_path, ignore_patterns, commit_message):
            calls.append(("upload_folder", repo_id, folder_path, tuple(ignore_patterns)))

    monkeypatch.setattr(model_card, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    adapter, _ = run_folder
    assert push_folder(adapter, "me/dpo-adapter") == "https://hub.example/me/dpo-adapter"
    assert calls[0] == ("token", "hf_secret")
    assert calls[1] == ("create_repo", "me/dpo-adapter", True, True)
    assert calls[2][:3] == ("upload_folder", "me/dpo-adapter", str(adapter))
    assert "checkpoint-*/**" in calls[2][3]  # optimizer states of checkpoints are not published
