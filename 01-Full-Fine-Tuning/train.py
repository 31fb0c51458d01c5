"""Full fine-tuning of a causal LM on a Deep Lake text corpus: the script behind `accelerate launch`.

One process (a GPU, or the CPU):
    python 01-Full-Fine-Tuning/train.py --model Qwen/Qwen2.5-0.5B --train-data ./data/imdb-train \
        --eval-data ./data/imdb-test --output-dir outputs/full-ft

N GPUs on one machine, or several machines (see README.md):
    accelerate launch --config_file 01-Full-Fine-Tuning/ddp.yaml --num_processes 8 01-Full-Fine-Tuning/train.py ...
    accelerate launch --config_file 01-Full-Fine-Tuning/fsdp.yaml --num_processes 8 01-Full-Fine-Tuning/train.py ...

The datasets are Deep Lake datasets with a text column (the notebook builds them; any URL Deep Lake
opens works: a folder, s3://, gs://...). The run saves a checkpoint every --save-steps and, started
again with the same --output-dir, resumes from the newest one: weights, optimizer, schedule, RNG and
the position in the data stream. Each process writes `result-rank<R>.json` with its final loss and a
checksum of the weights it holds, so you can check that every process ended with the same model.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments, set_seed

from cookbook import DeviceChoice, select_device
from cookbook.deeplake_data import PackedTextStream
from cookbook.errors import CookbookInputError
from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.results import training_losses
from cookbook.training import StopAfterSteps, last_checkpoint


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="hub id or local folder of a causal LM")
    parser.add_argument("--train-data", required=True, help="URL of a Deep Lake dataset with a text column")
    parser.add_argument("--eval-data", help="URL of a held-out Deep Lake dataset (perplexity after training)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--warmup", type=float, default=0.05, help="warmup steps, or a fraction of max-steps if < 1")
    parser.add_argument("--batch-size", type=int, default=2, help="blocks per device per micro-batch")
    parser.add_argument("--grad-accum", type=int, default=8, help="micro-batches per optimizer step")
    parser.add_argument("--block-size", type=int, default=1024, help="tokens per packed block")
    parser.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="recompute activations in backward (~30%% more compute); on when `pixi run plan` says it does not fit",
    )
    parser.add_argument("--save-steps", type=int, default=100)
    parser.add_argument("--eval-blocks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--stop-after", type=int, help="stop after this many steps (simulates an interruption)")
    parser.add_argument("--no-resume", action="store_true", help="ignore checkpoints already in --output-dir")
    return parser.parse_args(argv)


def using_fsdp() -> bool:
    """True inside `accelerate launch --config_file fsdp.yaml` (the launcher sets this variable)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def training_arguments(options: argparse.Namespace, device: DeviceChoice) -> TrainingArguments:
    """Every knob of a full fine-tune in one place: batch geometry, schedule, memory savers, checkpoints,
    and the device's precision (bf16 autocast where the GPU has it) and optimizer (fused AdamW on CUDA)."""
    return TrainingArguments(
        output_dir=options.output_dir,
        max_steps=options.max_steps,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum,
        # Recompute each layer's activations in the backward pass instead of storing them: about a third more
        # compute for much less memory. Under FSDP, fsdp.yaml switches on FSDP's own checkpointing instead.
        activation_checkpointing=options.gradient_checkpointing and not using_fsdp(),
        optim=device.trainer_optimizer,
        learning_rate=options.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=options.warmup,
        weight_decay=0.01,
        max_grad_norm=1.0,
        logging_steps=1,
        save_steps=options.save_steps,
        save_total_limit=2,
        report_to="none",
        seed=options.seed,
        data_seed=options.seed,
        dataloader_drop_last=True,
        **device.trainer_precision,
    )


def weight_checksum(trainer: Trainer) -> float | None:
    """Sum of all weights in float64 (the full model, gathered under FSDP; None on ranks that hold no copy)."""
    state = trainer.accelerator.get_state_dict(trainer.model)
    if not state:
        return None
    return float(sum(tensor.double().sum().item() for tensor in state.values()))


def main(argv: list[str] | None = None) -> dict:
    options = parse_args(argv)
    device = select_device()
    set_seed(options.seed)
    tokenizer = load_tokenizer(options.model)
    train_stream = PackedTextStream(
        options.train_data, tokenizer, options.block_size, options.text_column, seed=options.seed
    )
    eval_stream = None
    if options.eval_data:
        eval_stream = PackedTextStream(
            options.eval_data,
            tokenizer,
            options.block_size,
            options.text_column,
            shuffle=False,
            repeat=False,
            max_blocks=options.eval_blocks,
        )
    # fp32 master weights; with bf16=True the Trainer runs the forward/backward in bf16 autocast.
    model = load_causal_lm(options.model, dtype=torch.float32)
    model.config.use_cache = False  # the KV cache is for generation; training with checkpointing needs it off

    args = training_arguments(options, device)
    callbacks = [StopAfterSteps(options.stop_after)] if options.stop_after else []
    trainer = Trainer(model=model, args=args, train_dataset=train_stream, callbacks=callbacks)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if trainer.accelerator.num_processes != launched:
        raise CookbookInputError(
            f"accelerate launched {launched} processes but they did not join one process group "
            f"({trainer.accelerator.distributed_type}); without GPUs set ACCELERATE_USE_CPU=true to train on CPUs over gloo"
        )
    resume = None if options.no_resume else last_checkpoint(options.output_dir)

    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    losses = training_losses(trainer.state.log_history)
    result = {
        "global_step": trainer.state.global_step,
        "loss_first": losses[0][1] if losses else None,
        "loss_final": losses[-1][1] if losses else None,
        "weight_checksum": weight_checksum(trainer),
        "train_seconds": seconds,
        "resumed_from": resume,
        "world_size": trainer.accelerator.num_processes,
        "distributed_type": str(trainer.accelerator.distributed_type),
        "device": str(device),
    }
    if eval_stream is not None and not options.stop_after:
        result["eval_perplexity"] = math.exp(trainer.evaluate(eval_dataset=eval_stream)["eval_loss"])
    if trainer.state.global_step >= options.max_steps:
        trainer.save_model(str(Path(options.output_dir) / "final"))  # on the main process; FSDP gathers first
        if trainer.accelerator.is_main_process:
            tokenizer.save_pretrained(Path(options.output_dir) / "final")
    rank = trainer.accelerator.process_index
    Path(options.output_dir, f"result-rank{rank}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"rank {rank}: {json.dumps(result)}")
    return result


if __name__ == "__main__":
    main()
