"""Resume equivalence on the tiny model, for any technique: an interrupted-and-resumed run must end where an
uninterrupted one ends, and a resume that loses the optimizer state must not.

A technique is one function, `make_trainer(output_dir) -> Trainer`, that builds a fresh model and trainer
(Trainer, TRL's SFTTrainer, GRPOTrainer, ...) with `max_steps` set; `compare_resume` runs it three or four times:

- straight: all steps at once (the reference);
- resumed: stopped after `stop_after` steps (a checkpoint is saved there, as a preempted job would have),
  then started again on the same folder, resuming from `cookbook.training.last_checkpoint` like the notebooks;
- lost_optimizer: the same resume from a copy of that checkpoint without its optimizer state: the negative
  control, which shows the comparison can fail (a Trainer silently starts a fresh optimizer then).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import Trainer, set_seed

from cookbook.results import training_losses
from cookbook.training import StopAfterSteps, last_checkpoint

TrainerFactory = Callable[[str], Trainer]
LOSS_RTOL = 1e-5  # relative, on every logged loss
WEIGHT_ATOL = 1e-6  # absolute, on every trainable weight (they are of order 1e-2..1)
# Arguments every technique's TrainingArguments/TRL config takes in these checks: every loss logged, no
# scheduled saves (the interrupted run saves where it stops, through StopAfterSteps), CPU, fixed seed.
TRAINING_ARGUMENTS = {"logging_steps": 1, "save_strategy": "no", "report_to": "none", "seed": 3, "use_cpu": True}


@dataclass
class Run:
    losses: list[tuple[int, float]]  # (step, loss) for every logged step, those before a resume included
    weights: dict[str, torch.Tensor]  # the trainable parameters at the end
    resumed_from: str | None


def train(make_trainer: TrainerFactory, output_dir: Path, stop_after: int | None = None, resume_from=None) -> Run:
    set_seed(0)  # the same initialisation (LoRA matrices, ...) before the Trainer re-seeds with its own seed
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model's matmuls gain nothing from threads; one keeps runs repeatable
    try:
        trainer = make_trainer(str(output_dir))
        if stop_after:
            trainer.add_callback(StopAfterSteps(stop_after))
        trainer.train(resume_from_checkpoint=resume_from)
    finally:
        torch.set_num_threads(threads)
    weights = {name: p.detach().float().clone() for name, p in trainer.model.named_parameters() if p.requires_grad}
    return Run(training_losses(trainer.state.log_history), weights, resume_from)


def without_optimizer_state(checkpoint: str | Path, into: Path) -> str:
    """A copy of `checkpoint` without its optimizer state: what a broken resume would start from."""
    copy = into / Path(checkpoint).name
    shutil.copytree(checkpoint, copy, ignore=shutil.ignore_patterns("optimizer*"))
    return str(copy)


@dataclass
class ResumeComparison:
    straight: Run
    resumed: Run
    lost_optimizer: Run | None

    @staticmethod
    def weight_gap(run: Run, reference: Run) -> float:
        return max((run.weights[name] - weight).abs().max().item() for name, weight in reference.weights.items())

    @staticmethod
    def loss_gap(run: Run, reference: Run) -> float:
        assert [step for step, _ in run.losses] == [step for step, _ in reference.losses], "different logged steps"
        return max(abs(a - b) / max(abs(b), 1e-8) for (_, a), (_, b) in zip(run.losses, reference.losses, strict=True))

    def assert_resume_is_equivalent(self) -> None:
        """Resumed == straight within the tolerances; a resume without optimizer state is far outside them."""
        assert self.resumed.resumed_from, "the second run did not resume from a checkpoint"
        assert len({loss for _, loss in self.straight.losses}) > 1, "the losses never changed: nothing trained"
        assert self.loss_gap(self.resumed, self.straight) <= LOSS_RTOL, self.resumed.losses
        assert self.weight_gap(self.resumed, self.straight) <= WEIGHT_ATOL
        if self.lost_optimizer is not None:
            assert self.weight_gap(self.lost_optimizer, self.straight) > 100 * WEIGHT_ATOL, (
                "a resume that lost the optimizer state matched too: the comparison cannot catch a broken resume"
            )


def compare_resume(
    make_trainer: TrainerFactory, root: Path, stop_after: int, negative_control: bool = True
) -> ResumeComparison:
    """Run `make_trainer`'s training straight, interrupted-and-resumed, and (optionally) resumed without its
    optimizer state, under `root`."""
    straight = train(make_trainer, root / "straight")
    train(make_trainer, root / "resumed", stop_after=stop_after)
    checkpoint = last_checkpoint(root / "resumed")
    assert checkpoint and checkpoint.endswith(f"checkpoint-{stop_after}"), checkpoint
    resumed = train(make_trainer, root / "resumed", resume_from=checkpoint)
    lost = None
    if negative_control:
        broken = without_optimizer_state(checkpoint, root / "lost-optimizer")
        lost = train(make_trainer, root / "lost-optimizer", resume_from=broken)
    return ResumeComparison(straight, resumed, lost)
