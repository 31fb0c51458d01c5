"""01-Full-Fine-Tuning/train.py: an interrupted-and-resumed run equals an uninterrupted one, and the same
script trains under `accelerate launch` with 2 CPU processes (gloo) that end with identical weights."""

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys

import deeplake
import pytest
import torch

from cookbook.deeplake_data import write_text_dataset
from cookbook.errors import CookbookInputError
from cookbook.layout import REPO_ROOT
from cookbook.smoke.data import worked_problems_text
from cookbook.smoke.tiny_model import save_tiny_model

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


@contextlib.contextmanager
def one_torch_thread():
    """The tiny model's matmuls are too small to split across threads; on a busy CI core one is much faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("deeplake")
    write_text_dataset(str(root / "train"), worked_problems_text(256, seed=1))
    write_text_dataset(str(root / "test"), worked_problems_text(32, seed=2))
    return {"model": str(save_tiny_model()), "train": str(root / "train"), "test": str(root / "test")}


def arguments(corpus, output_dir, steps, *extra):
    return [
        "--model", corpus["model"], "--train-data", corpus["train"], "--output-dir", str(output_dir),
        "--max-steps", str(steps), "--learning-rate", "3e-3", "--warmup", "2", "--batch-size", "2",
        "--grad-accum", "2", "--block-size", "32", "--save-steps", "3", "--seed", "7", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def straight(corpus, tmp_path_factory):
    """An uninterrupted 8-step run: the reference the resumed run must match."""
    with one_torch_thread():
        return load_script().main(arguments(corpus, tmp_path_factory.mktemp("straight"), 8))


def test_interrupted_and_resumed_run_ends_like_an_uninterrupted_one(corpus, straight, tmp_path):
    train = load_script()
    interrupted = train.main(arguments(corpus, tmp_path, 8, "--stop-after", "5"))
    assert interrupted["global_step"] == 5  # stopped early; the callback saved checkpoint-5 first
    assert (tmp_path / "checkpoint-5").is_dir()
    assert not (tmp_path / "final").exists()
    resumed = train.main(arguments(corpus, tmp_path, 8))  # same command again: picks up checkpoint-5

    assert resumed["resumed_from"].endswith("checkpoint-5")
    assert resumed["global_step"] == straight["global_step"] == 8
    assert straight["loss_final"] < straight["loss_first"]
    assert resumed["loss_final"] == pytest.approx(straight["loss_final"], rel=1e-5)
    assert resumed["weight_checksum"] == pytest.approx(straight["weight_checksum"], rel=1e-6)
    assert (tmp_path / "final" / "model.safetensors").exists()


def test_the_tolerance_would_catch_a_run_that_lost_its_state(corpus, straight, tmp_path):
    """Not vacuous: resuming while ignoring the checkpoint (a fresh start) ends at a different loss."""
    restarted = load_script().main(arguments(corpus, tmp_path, 3, "--save-steps", "100", "--no-resume"))
    assert restarted["loss_final"] != pytest.approx(straight["loss_final"], rel=1e-3)


def test_a_dataset_without_the_text_column_stops_before_training(corpus, tmp_path):
    url = str(tmp_path / "reviews")
    ds = deeplake.create(url)
    ds.add_column("review", deeplake.types.Text())
    ds.append({"review": ["great film", "dull plot"]})
    ds.commit()
    arguments_ = arguments(corpus, tmp_path / "run", 8)
    arguments_[arguments_.index("--train-data") + 1] = url
    with pytest.raises(CookbookInputError, match=r"has no 'text' column \(it has \['review'\]\)"):
        load_script().main(arguments_)
    assert not (tmp_path / "run" / "checkpoint-3").exists()


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
    assert all(r["distributed_type"].endswith("MULTI_CPU") for r in ranks)  # gloo, the CPU stand-in for NCCL
    assert ranks[0]["loss_final"] < ranks[0]["loss_first"]
    assert ranks[0]["loss_final"] == pytest.approx(ranks[1]["loss_final"], rel=1e-6)
    assert ranks[0]["weight_checksum"] == pytest.approx(ranks[1]["weight_checksum"], rel=1e-9)
    assert ranks[0]["eval_perplexity"] == pytest.approx(ranks[1]["eval_perplexity"], rel=1e-6)


@pytest.mark.parametrize(("config", "kind"), [("ddp.yaml", "MULTI_GPU"), ("fsdp.yaml", "FSDP")])
def test_accelerate_reads_the_launch_configs(config, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    loaded = load_config_from_file(str(REPO_ROOT / "01-Full-Fine-Tuning" / config))
    assert str(loaded.distributed_type).endswith(kind)
    if kind == "FSDP":
        assert loaded.fsdp_config["fsdp_version"] == 2
        assert loaded.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
