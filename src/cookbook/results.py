"""What every notebook run writes: `metrics.json` and a loss-curve PNG in its output folder.

The tests read `metrics.json` to check that training really happened, so its keys are fixed:
`train_loss_start`/`train_loss_end`, `eval` (one metric before and after training, and whether
higher is better), peak memory, wall time, tokens per second and the device.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch


def peak_memory() -> dict[str, float | str]:
    """Peak memory of this process: CUDA's allocator peak on a GPU, the resident set size on CPU."""
    if torch.cuda.is_available():
        return {
            "peak_memory_bytes": float(torch.cuda.max_memory_allocated()),
            "peak_memory_kind": "cuda_allocated",
        }
    if torch.backends.mps.is_available():
        return {
            "peak_memory_bytes": float(torch.mps.driver_allocated_memory()),
            "peak_memory_kind": "mps_driver",
        }
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return {
        "peak_memory_bytes": float(rss if sys.platform == "darwin" else rss * 1024),
        "peak_memory_kind": "cpu_rss",
    }


def training_losses(log_history: list[dict]) -> list[tuple[int, float]]:
    """(step, loss) pairs from a Trainer's `state.log_history`."""
    return [(entry["step"], float(entry["loss"])) for entry in log_history if "loss" in entry]


def plot_losses(log_history: list[dict], path: str | Path, title: str = "Training loss") -> Path:
    """Save the training (and eval, where logged) loss curve as a PNG and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    train = training_losses(log_history)
    if train:
        ax.plot(*zip(*train, strict=True), label="train")
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval")
    ax.set(xlabel="step", ylabel="loss", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


@dataclass
class RunRecorder:
    """Collects a run's measurements and writes them to `<output_dir>/metrics.json`."""

    output_dir: str | Path
    technique: str
    metrics: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def record_training(self, log_history: list[dict], train_seconds: float, tokens_seen: int) -> None:
        losses = [loss for _, loss in training_losses(log_history)]
        if not losses:
            raise RuntimeError("the trainer logged no training loss: set logging_steps to at most max_steps")
        self.metrics.update(
            train_loss_start=losses[0],
            train_loss_end=losses[-1],
            train_seconds=train_seconds,
            tokens_seen=int(tokens_seen),
            tokens_per_s=tokens_seen / train_seconds if train_seconds > 0 else 0.0,
        )
        plot_losses(log_history, Path(self.output_dir) / "loss_curve.png", f"{self.technique}: training loss")

    def record_eval(self, name: str, before: float, after: float, higher_is_better: bool) -> None:
        """The recipe's headline evaluation: the untrained baseline and the trained model on held-out data."""
        self.metrics["eval"] = {
            "metric": name,
            "before": before,
            "after": after,
            "higher_is_better": higher_is_better,
        }

    def write(self, device: str, **extra) -> Path:
        self.metrics.update(extra, technique=self.technique, device=device, **peak_memory())
        self.metrics["wall_time_s"] = time.perf_counter() - self.started
        path = Path(self.output_dir) / "metrics.json"
        path.write_text(json.dumps(self.metrics, indent=2, sort_keys=True) + "\n")
        return path
