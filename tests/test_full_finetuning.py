"""01-Full-Fine-Tuning/train.py: an interrupted-and-resumed run equals an uninterrupted one, and the same
script trains under `accelerate launch` with 2 CPU processes (gloo) that end with identical weights."""

import importlib.util
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from cookbook.deeplake_data import smoke_corpus, write_text_dataset
from cookbook.layout import REPO_ROOT
from cookbook.tiny_model import save_tiny_model

SCRIPT = REPO_ROOT / "01-Full-Fine-Tuning" / "train.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load_script():
    spec = importlib.util.spec_from_file_location("full_ft_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny model's matmuls are too small to split across threads; on a busy CI core it is much faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("deeplake")
    write_text_dataset(str(root / "train"), smoke_corpus(256, seed=1))
    write_text_dataset(str(root / "test"), smoke_corpus(32, seed=2))
    return {"model": str(save_tiny_model()), "train": str(root / "train"), "test": str(root / "test")}


def arguments(corpus, output_dir, steps, *extra):
    return [
        "--model", corpus["model"], "--train-data", corpus["train"], "--output-dir", str(output_dir),
        "--max-steps", str(steps), "--learning-rate", "3e-3", "--warmup", "2", "--batch-size", "2",
        "--grad-accum", "2", "--block-size", "32", "--save-steps", "3", "--seed", "7", *extra,
    ]  # fmt: skip


def test_interrupted_and_resumed_run_ends_like_an_uninterrupted_one(corpus, tmp_path):
    train = load_script()
    straight = train.main(arguments(corpus, tmp_path / "straight", 8))

    interrupted = train.main(arguments(corpus, tmp_path / "resumed", 8, "--stop-after", "5"))
    assert interrupted["global_step"] == 5  # stopped early, checkpoint-5 written by the callback
    assert (tmp_path / "resumed" / "checkpoint-5").is_dir()
    assert not (tmp_path / "resumed" / "final").exists()
    resumed = train.main(arguments(corpus, tmp_path / "resumed", 8))

    assert resumed["resumed_from"].endswith("checkpoint-5")
    assert resumed["global_step"] == straight["global_step"] == 8
    assert straight["loss_final"] < straight["loss_first"]
    assert resumed["loss_final"] == pytest.approx(straight["loss_final"], rel=1e-5)
    assert resumed["weight_checksum"] == pytest.approx(straight["weight_checksum"], rel=1e-6)
    assert (tmp_path / "resumed" / "final" / "model.safetensors").exists()


def test_resuming_without_the_checkpointed_state_would_differ(corpus, tmp_path):
    """The equivalence above is not vacuous: restarting from scratch with a shorter run ends elsewhere."""
    train = load_script()
    full = train.main(arguments(corpus, tmp_path / "a", 8))
    restarted = train.main(arguments(corpus, tmp_path / "b", 3, "--save-steps", "100"))
    assert restarted["loss_final"] != pytest.approx(full["loss_final"], rel=1e-3)


def test_two_processes_under_accelerate_launch_train_and_agree(corpus, tmp_path):
    output = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    # ACCELERATE_USE_CPU: CPU processes talking over gloo, the stand-in for GPUs talking over NCCL.
    env.update(ACCELERATE_USE_CPU="true", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO_ROOT / "01-Full-Fine-Tuning" / "ddp.yaml"),
        "--num_processes", "2", "--main_process_port", str(free_port()),
        str(SCRIPT), *arguments(corpus, output, 6, "--eval-data", corpus["test"], "--eval-blocks", "8"),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    ranks = [json.loads((output / f"result-rank{rank}.json").read_text()) for rank in (0, 1)]
    assert all(r["world_size"] == 2 and r["global_step"] == 6 for r in ranks)
    assert ranks[0]["loss_final"] < ranks[0]["loss_first"]
    assert ranks[0]["loss_final"] == pytest.approx(ranks[1]["loss_final"], rel=1e-6)
    assert ranks[0]["weight_checksum"] == pytest.approx(ranks[1]["weight_checksum"], rel=1e-9)
    assert ranks[0]["eval_perplexity"] == pytest.approx(ranks[1]["eval_perplexity"], rel=1e-6)
