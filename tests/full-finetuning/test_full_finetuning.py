"""01-Full-Fine-Tuning/train.py: an interrupted-and-resumed run equals an uninterrupted one (and one that lost its
optimizer state does not), and the same script under `accelerate launch` with 2 CPU processes (gloo, the CPU
stand-in for NCCL) trains like 1 process at the same global batch.

FSDP on CPU: accelerate turns FSDP on only for accelerator processes (AcceleratorState's FSDP branch covers
MULTI_GPU, MULTI_XPU, MULTI_NPU...; CPU processes are MULTI_CPU), so `fsdp.yaml` launched on CPU processes trains
as plain DDP, without sharding (`test_fsdp_yaml_on_cpu_processes_is_not_fsdp`). Its sharded path needs GPUs."""

import contextlib
import importlib.util
import json
import os
import re
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


# torch's TCPStore: "... port: 29500, ..., code: -98, name: EADDRINUSE, message: address already in use"
PORT_TAKEN = re.compile(r"EADDRINUSE|address already in use", re.IGNORECASE)


def launch(config: str, processes: int, script_arguments: list[str], attempts: int = 3):
    """`accelerate launch` of train.py on CPU processes. A port found free can be taken by another process before
    the launcher binds it; then the launch is retried on a new port, up to `attempts` times."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    # ACCELERATE_USE_CPU: CPU processes talking over gloo, the stand-in for GPUs talking over NCCL.
    env.update(ACCELERATE_USE_CPU="true", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    for _ in range(attempts):
        command = [
            sys.executable, "-m", "accelerate.commands.launch",
            "--config_file", str(REPO_ROOT / "01-Full-Fine-Tuning" / config),
            "--num_processes", str(processes), "--main_process_port", str(free_port()),
            str(SCRIPT), *script_arguments,
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode == 0 or not PORT_TAKEN.search(done.stderr):
            return done
    return done


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


def test_the_tolerance_would_catch_a_resume_that_lost_the_optimizer_state(corpus, straight, tmp_path):
    """Not vacuous: the same interrupted run, resumed from a checkpoint whose AdamW moments and step counts were
    dropped (weights, schedule, RNG and data position kept), ends measurably away from the uninterrupted run."""
    train = load_script()
    train.main(arguments(corpus, tmp_path, 8, "--stop-after", "5"))
    optimizer_file = tmp_path / "checkpoint-5" / "optimizer.pt"
    saved = torch.load(optimizer_file, weights_only=True)
    assert saved["state"], "the checkpoint holds no optimizer state to drop"
    torch.save({**saved, "state": {}}, optimizer_file)  # fresh moments; the param groups (learning rate) stay

    resumed = train.main(arguments(corpus, tmp_path, 8))
    assert resumed["resumed_from"].endswith("checkpoint-5") and resumed["global_step"] == 8
    assert resumed["loss_final"] != pytest.approx(straight["loss_final"], rel=1e-3)
    assert resumed["weight_checksum"] != pytest.approx(straight["weight_checksum"], rel=1e-4)


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


def test_two_processes_train_like_one_process_at_the_same_global_batch(corpus, tmp_path):
    """2 processes x 2 blocks and 1 process x 4 blocks (x 2 accumulation steps both): the same 8 blocks per
    optimizer step. Comparing the ranks with each other would prove little (DDP keeps replicas equal by
    construction, and the Trainer averages the ranks' losses before logging); the 1-process run is the reference."""
    evaluation = ("--eval-data", corpus["test"], "--eval-blocks", "8")
    done = launch("ddp.yaml", 2, arguments(corpus, tmp_path / "ddp", 6, *evaluation))
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / "ddp" / f"result-rank{rank}.json").read_text()) for rank in (0, 1)]
    single = load_script().main(arguments(corpus, tmp_path / "single", 6, *evaluation, "--batch-size", "4"))

    assert all(r["world_size"] == 2 and r["global_step"] == 6 for r in ranks) and single["world_size"] == 1
    assert all(r["distributed_type"].endswith("MULTI_CPU") for r in ranks)  # gloo, the CPU stand-in for NCCL
    assert ranks[0]["weight_checksum"] == pytest.approx(ranks[1]["weight_checksum"], rel=1e-9)
    assert single["loss_final"] < 0.9 * single["loss_first"]
    # Same data, same updates: only the order of floating-point sums differs (gloo's all-reduce).
    for key in ("loss_first", "loss_final", "weight_checksum", "eval_perplexity"):
        assert ranks[0][key] == pytest.approx(single[key], rel=1e-4), key


def test_fsdp_yaml_on_cpu_processes_is_not_fsdp(corpus, tmp_path):
    """The plain statement of why fsdp.yaml is not run on CPU, kept true by a test: on CPU processes accelerate
    trains fsdp.yaml as DDP (MULTI_CPU, no sharding)."""
    on_cpu = launch("fsdp.yaml", 2, arguments(corpus, tmp_path / "cpu", 1, "--save-steps", "100"))
    assert on_cpu.returncode == 0, on_cpu.stderr[-3000:]
    result = json.loads((tmp_path / "cpu" / "result-rank0.json").read_text())
    assert result["distributed_type"] == "DistributedType.MULTI_CPU"  # not DistributedType.FSDP


def test_a_launch_whose_port_was_taken_is_retried(monkeypatch):
    answers = iter(
        [
            subprocess.CompletedProcess([], 1, "", "code: -98, name: EADDRINUSE, message: address already in use"),
            subprocess.CompletedProcess([], 0, "", ""),
        ]
    )
    ports = []
    monkeypatch.setattr(
        subprocess,
        "run",
        lambda command, **_: ports.append(command[command.index("--main_process_port") + 1]) or next(answers),
    )
    assert launch("ddp.yaml", 2, []).returncode == 0
    assert len(ports) == 2
    failed = subprocess.CompletedProcess([], 1, "", "some other failure")
    monkeypatch.setattr(subprocess, "run", lambda command, **_: failed)
    assert launch("ddp.yaml", 2, []) is failed  # not retried: only a taken port is


@pytest.mark.parametrize(("config", "kind"), [("ddp.yaml", "MULTI_GPU"), ("fsdp.yaml", "FSDP")])
def test_accelerate_reads_the_launch_configs(config, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    loaded = load_config_from_file(str(REPO_ROOT / "01-Full-Fine-Tuning" / config))
    assert str(loaded.distributed_type).endswith(kind)
    if kind == "FSDP":
        assert loaded.fsdp_config["fsdp_version"] == 2
        assert loaded.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
