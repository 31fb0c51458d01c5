"""Run configuration: what a notebook trains, on what, for how long, and where results go.

A notebook's tagged parameters cell sets real hub defaults for GPU users. With `smoke=True` the
same notebook swaps in the offline tiny model and generated data and trains for a few steps, which
is how the tests run every recipe on a CPU without a network.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class RunConfig:
    model: str  # hub id or local path
    dataset: str  # hub id or local path (a folder of train/test JSONL files, say)
    output_dir: str
    max_steps: int
    learning_rate: float = 2e-4
    seed: int = 42
    smoke: bool = False
    smoke_data: str = "chat"  # which generated data a smoke run uses: chat, text or math
    smoke_max_steps: int = 60
    smoke_learning_rate: float = 2e-3  # a randomly initialized tiny model takes larger steps

    def resolve(self) -> RunConfig:
        """Make the output folder; in smoke mode point model and dataset at local stand-ins."""
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}: set it in the parameters cell")
        out = Path(self.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        if not self.smoke:
            return self
        # The smoke fixtures are imported here only, so a real run never loads them.
        from cookbook.smoke.data import GENERATORS, write_smoke_dataset
        from cookbook.smoke.tiny_model import save_tiny_model

        if self.smoke_data not in GENERATORS:
            raise ValueError(f"smoke_data={self.smoke_data!r} is unknown: use one of {sorted(GENERATORS)}")
        # The tiny model's matmuls are too small to split across threads: one thread is faster, and
        # much faster on a busy machine.
        torch.set_num_threads(1)
        return dataclasses.replace(
            self,
            model=str(save_tiny_model()),
            dataset=str(write_smoke_dataset(self.smoke_data, out / "smoke-data")),
            max_steps=min(self.max_steps, self.smoke_max_steps),
            learning_rate=self.smoke_learning_rate,
        )

    def __str__(self) -> str:
        mode = "smoke run (tiny local model, generated data)" if self.smoke else "full run"
        return f"{mode}: model={self.model} dataset={self.dataset} steps={self.max_steps} lr={self.learning_rate:g} -> {self.output_dir}"
