"""A short HF Trainer run of the tiny smoke model that tests/test_crash_safety.py kills with SIGKILL and resumes.

    python tests/killable_training.py MODEL OUTPUT_DIR [--pause-at STEP --pause-in step|save]

`main(argv)` runs it in the calling process. Started again with the same OUTPUT_DIR it resumes from `cookbook.training.last_checkpoint`, as the notebooks
do. With --pause-at it writes OUTPUT_DIR/paused and sleeps, so the test kills it at a known point: after
optimizer step STEP (`step`), or halfway through writing checkpoint-STEP (`save`: weights and optimizer state
on disk, RNG state and trainer_state.json not yet). A finished run writes result.json and final/.
"""

import argparse
import json
import time
from pathlib import Path

import datasets
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from cookbook.chat import tokenize_conversation
from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.packing import padded_collator
from cookbook.results import training_losses
from cookbook.smoke.data import chat_examples
from cookbook.training import last_checkpoint

MAX_STEPS, SAVE_STEPS = 8, 2


def wait_to_be_killed(output_dir: str) -> None:
    Path(output_dir, "paused").write_text("waiting for SIGKILL\n")
    time.sleep(600)
    raise SystemExit("nobody killed this run")


class PauseAfterStep(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            wait_to_be_killed(args.output_dir)


class PausingTrainer(Trainer):
    """Pauses inside `_save_checkpoint` at `pause_at`: after the weights, optimizer and scheduler are written,
    before the RNG state and trainer_state.json (the Trainer writes that file last)."""

    pause_at: int | None = None

    def _save_rng_state(self, output_dir):
        if self.state.global_step == self.pause_at:
            wait_to_be_killed(self.args.output_dir)
        super()._save_rng_state(output_dir)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("output_dir")
    parser.add_argument("--pause-at", type=int)
    parser.add_argument("--pause-in", choices=["step", "save"], default="step")
    options = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float operations in every run, in a test process or on its own
    try:
        return train(options)
    finally:
        torch.set_num_threads(threads)


def train(options: argparse.Namespace) -> dict:

    tokenizer = load_tokenizer(options.model)
    rows = datasets.Dataset.from_list(chat_examples(64, seed=3))
    train = rows.map(lambda row: tokenize_conversation(row["messages"], tokenizer, 64), remove_columns=["messages"])
    args = TrainingArguments(
        output_dir=options.output_dir,
        max_steps=MAX_STEPS,
        per_device_train_batch_size=4,
        learning_rate=3e-3,
        lr_scheduler_type="cosine",
        warmup_steps=1,
        logging_steps=1,
        save_steps=SAVE_STEPS,
        report_to="none",
        seed=7,
        use_cpu=True,
    )
    callbacks = [PauseAfterStep(options.pause_at)] if options.pause_in == "step" and options.pause_at else []
    trainer = PausingTrainer(
        model=load_causal_lm(options.model),
        args=args,
        train_dataset=train,
        data_collator=padded_collator(tokenizer),
        callbacks=callbacks,
    )
    trainer.pause_at = options.pause_at if options.pause_in == "save" else None
    resume = last_checkpoint(options.output_dir)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(Path(options.output_dir, "final")))
    result = {"resumed_from": resume, "losses": training_losses(trainer.state.log_history)}
    Path(options.output_dir, "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
