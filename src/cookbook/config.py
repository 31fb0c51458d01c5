"""Run configuration: what a notebook trains, on what, for how long, and where results go.

A notebook's tagged parameters cell sets real hub defaults for GPU users and ends with its smoke profile,
`smoke_overrides`: the values a smoke run uses instead, by the same names. With `smoke=True` the same
notebook takes that column (`apply_smoke_profile`), swaps in the offline tiny model and generated data
(`RunConfig.resolve`) and trains for a few steps, which is how the tests run every recipe on a CPU without
a network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cookbook.errors import CookbookInputError

# The one key of a smoke profile that is not a parameter: which generated data replaces the dataset.
SMOKE_DATA = "smoke_data"


def apply_smoke_profile(parameters: Mapping[str, Any], smoke_overrides: Mapping[str, Any], smoke: bool) -> dict:
    """The values this run uses for the settings `smoke_overrides` names: the smoke column when `smoke`,
    else the real one (`parameters`, e.g. a notebook's globals()). Prints both columns where they differ."""
    unknown = [key for key in smoke_overrides if key != SMOKE_DATA and key not in parameters]
    if unknown:
        raise CookbookInputError(
            f"smoke_overrides sets {unknown[0]!r}, which is not a parameter: name a setting of the parameters cell"
        )
    real = {key: parameters[key] for key in smoke_overrides if key != SMOKE_DATA}
    smoke_column = {key: smoke_overrides[key] for key in real}
    differ = [key for key in real if real[key] != smoke_column[key]]
    if differ:
        width = max(len(key) for key in [*differ, "setting"])
        print(f"{'setting':<{width}}  {'real':<16}  smoke   (this run: {'smoke' if smoke else 'real'})")
        for key in differ:
            print(f"{key:<{width}}  {real[key]!r:<16}  {smoke_column[key]!r}")
    return smoke_column if smoke else real


@dataclass(frozen=True)
class RunConfig:
    model: str  # hub id or local path
    dataset: str  # hub id or local path (a folder of train/test JSONL files, say)
    output_dir: str
    max_steps: int
    learning_rate: float = 2e-4
    seed: int = 42
    smoke: bool = False
    smoke_data: str = "chat"  # which generated data a smoke run uses (the smoke profile's "smoke_data")

    def resolve(self) -> RunConfig:
        """Make the output folder; in smoke mode point model and dataset at local stand-ins.

        Steps and learning rate are taken as given: a smoke run's come from its smoke profile."""
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
        )

    def __str__(self) -> str:
        mode = "smoke run (tiny local model, generated data)" if self.smoke else "full run"
        return f"{mode}: model={self.model} dataset={self.dataset} steps={self.max_steps} lr={self.learning_rate:g} -> {self.output_dir}"
