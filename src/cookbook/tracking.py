"""Experiment tracking: where a run's curves go while it trains, and reading them back.

Every recipe has a `report_to` parameter, passed straight to the Trainer's `report_to`. Its default,
TensorBoard, writes event files under `<output_dir>/runs/`: no account, no server to reach, and
`pixi run dashboard` opens them all side by side. Weights & Biases (`"wandb"`), MLflow (`"mlflow"`),
trackio and the other integrations transformers knows work by name once their package is installed
(and, for W&B, `WANDB_API_KEY` is set); several at once as a list.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from cookbook.errors import CookbookInputError

# report_to name -> the module transformers needs for it
TRACKER_MODULES = {
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "mlflow": "mlflow",
    "trackio": "trackio",
    "comet_ml": "comet_ml",
    "clearml": "clearml",
    "neptune": "neptune",
    "dvclive": "dvclive",
    "swanlab": "swanlab",
}


def keep_tensorboard_in_output_dir() -> None:
    """Make the Trainer's TensorBoard callback write under `<output_dir>/runs/` even when the first thing logged is
    an evaluation before training (every recipe measures its baseline so). transformers' callback picks its folder
    in `on_train_begin`; a log before that opens a writer on PyTorch's default, `./runs/` in the working
    directory, and keeps it for the whole run. Called once when `cookbook` is imported."""
    from transformers.integrations import integration_utils

    base = integration_utils.TensorBoardCallback
    if getattr(integration_utils.INTEGRATION_TO_CALLBACK["tensorboard"], "keeps_output_dir", False):
        return

    class OutputDirTensorBoardCallback(base):
        keeps_output_dir = True

        def _init_summary_writer(self, args):
            if self.logging_dir is None:
                self.logging_dir = os.path.join(args.output_dir, integration_utils.default_logdir())
            super()._init_summary_writer(args)

    integration_utils.INTEGRATION_TO_CALLBACK["tensorboard"] = OutputDirTensorBoardCallback


def trackers(report_to: str | list[str] | None) -> list[str]:
    """`report_to` as the Trainer's list, checked: a known name whose package is installed, or "none"."""
    names = [report_to] if isinstance(report_to, str) or report_to is None else list(report_to)
    names = [part.strip() for name in names if name for part in name.split(",") if part.strip()]
    if names in ([], ["none"]):
        return []
    for name in names:
        if name not in TRACKER_MODULES:
            raise CookbookInputError(
                f"report_to={name!r} is not a tracker this cookbook knows: use one of {sorted(TRACKER_MODULES)} or 'none'"
            )
        if importlib.util.find_spec(TRACKER_MODULES[name]) is None:
            raise CookbookInputError(
                f"report_to={name!r} needs the {TRACKER_MODULES[name]} package: pip install {TRACKER_MODULES[name]}, "
                "or set report_to='tensorboard'"
            )
    return names


def tensorboard_event_files(output_dir: str | Path) -> list[Path]:
    """The TensorBoard event files a Trainer wrote under `<output_dir>/runs/` (one folder per run or resume)."""
    return sorted(Path(output_dir).glob("runs/*/events.out.tfevents.*"))


def read_tensorboard_scalars(output_dir: str | Path, tag: str = "train/loss") -> list[tuple[int, float]]:
    """(step, value) for one scalar tag across every event file under `<output_dir>/runs/`, sorted by step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points = {}
    for path in tensorboard_event_files(output_dir):
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})  # 0: keep every point
        events.Reload()
        if tag in events.Tags()["scalars"]:
            points.update({event.step: event.value for event in events.Scalars(tag)})
    return sorted(points.items())


def tracking_summary(report_to: list[str], output_dir: str | Path, log_history: list[dict]) -> dict:
    """What metrics.json records about tracking: the trackers used, where TensorBoard's files are, and the
    training loss per step as the Trainer logged it (to compare with what the tracker stored)."""
    return {
        "report_to": list(report_to),
        "tensorboard_dir": str(Path(output_dir) / "runs") if "tensorboard" in report_to else None,
        "logged_losses": [[entry["step"], float(entry["loss"])] for entry in log_history if "loss" in entry],
    }
