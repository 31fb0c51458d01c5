"""Crash safety: a training process killed with SIGKILL mid-run and again mid-save resumes from its newest
complete checkpoint and ends with the weights and losses of a run that was never interrupted.

Tolerance: none. On one CPU thread the resumed run repeats the same float operations as the uninterrupted
one, so losses and every weight must be bit-identical (`torch.equal`); the negative control in
tests/peft/test_resume_lora.py shows that a resume which loses state is far from that.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cookbook.layout import REPO_ROOT
from cookbook.smoke.tiny_model import save_tiny_model
from cookbook.training import checkpoint_problem, last_checkpoint

SCRIPT = Path(__file__).with_name("killable_training.py")


def start(model: str, output_dir: Path, *pause: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")])
    command = [sys.executable, str(SCRIPT), model, str(output_dir), *pause]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_when_paused(process: subprocess.Popen, output_dir: Path, timeout: float = 240) -> None:
    """Wait until the run says it reached its pause point, then SIGKILL it: no handler, no cleanup runs."""
    marker = output_dir / "paused"
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert process.poll() is None, f"the run ended before pausing:\n{process.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, "the run never reached its pause point"
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    marker.unlink()


def train_here(model: str, output_dir: Path) -> tuple[dict, dict]:
    """The same script in this process (no second interpreter start-up): returns its result and final weights."""
    spec = importlib.util.spec_from_file_location("killable_training", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    result = script.main([model, str(output_dir)])
    return result, load_file(output_dir / "final" / "model.safetensors")


def test_a_run_killed_mid_run_and_mid_save_resumes_to_the_uninterrupted_result(tmp_path):
    model = str(save_tiny_model())
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    first = start(model, killed_dir, "--pause-at", "5", "--pause-in", "step")
    reference, reference_weights = train_here(model, straight_dir)  # while the first run starts up

    kill_when_paused(first, killed_dir)
    assert sorted(p.name for p in killed_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    # Run again: resumes from checkpoint-4, then dies while writing checkpoint-6.
    kill_when_paused(start(model, killed_dir, "--pause-at", "6", "--pause-in", "save"), killed_dir)
    torn = killed_dir / "checkpoint-6"
    assert (torn / "model.safetensors").exists() and not (torn / "trainer_state.json").exists()
    assert checkpoint_problem(torn) == "no trainer_state.json"

    resumed, resumed_weights = train_here(model, killed_dir)  # the plain rerun a user would do

    assert resumed["resumed_from"].endswith("checkpoint-4")
    assert [step for step, _ in resumed["losses"]] == list(range(1, 9))
    assert resumed["losses"] == reference["losses"]
    assert reference["losses"][-1][1] < reference["losses"][0][1]  # it trained
    assert resumed_weights.keys() == reference_weights.keys()
    assert all(torch.equal(resumed_weights[name], reference_weights[name]) for name in reference_weights)


def write_checkpoint(folder: Path, step: int, **leave_out) -> Path:
    """A checkpoint folder with the files a Trainer writes; `leave_out` names the ones a kill cut off."""
    checkpoint = folder / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    files = {
        "weights": lambda: save_file({"w": torch.zeros(64)}, checkpoint / "model.safetensors"),
        "optimizer": lambda: (checkpoint / "optimizer.pt").write_bytes(b"state"),
        "state": lambda: (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step})),
    }
    for name, write in files.items():
        if name not in leave_out:
            write()
    return checkpoint


def cut_short(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize(
    ("tear", "problem"),
    [
        (lambda c: (c / "trainer_state.json").unlink(), "no trainer_state.json"),
        (lambda c: cut_short(c / "trainer_state.json", 5), "trainer_state.json is cut short"),
        (lambda c: (c / "model.safetensors").unlink(), "no model weights"),
        (lambda c: cut_short(c / "model.safetensors", 100), "model.safetensors is cut short"),
        (lambda c: (c / "optimizer.pt").unlink(), "no optimizer state"),
    ],
    ids=["no-state", "state-cut", "no-weights", "weights-cut", "no-optimizer"],
)
def test_the_newest_complete_checkpoint_is_chosen_and_a_torn_one_named(tmp_path, capsys, tear, problem):
    write_checkpoint(tmp_path, 10)
    tear(write_checkpoint(tmp_path, 20))
    write_checkpoint(tmp_path, 9)  # ordered by step, not by name
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    printed = capsys.readouterr().out
    assert f"Skipping {tmp_path / 'checkpoint-20'}: incomplete ({problem})" in printed
    assert f"Resuming from {tmp_path / 'checkpoint-10'}" in printed


def test_no_complete_checkpoint_means_a_fresh_start(tmp_path):
    write_checkpoint(tmp_path, 5, state=True)
    assert last_checkpoint(tmp_path) is None
    assert last_checkpoint(tmp_path / "missing") is None


def test_sharded_weights_need_every_shard(tmp_path):
    checkpoint = write_checkpoint(tmp_path, 3, weights=True)
    save_file({"a": torch.ones(2)}, checkpoint / "model-00001-of-00002.safetensors")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps(index))
    assert checkpoint_problem(checkpoint) == "weight shard(s) ['model-00002-of-00002.safetensors'] missing"
    save_file({"b": torch.ones(2)}, checkpoint / "model-00002-of-00002.safetensors")
    assert checkpoint_problem(checkpoint) is None
