"""Markdown tables of the memory plan for common model sizes, one per technique, for the READMEs.

    python benchmarks/plan_table.py --batch-size 4 --seq-len 1024

The configs in benchmarks/model_configs/ hold the published shapes of the models (no weights), so the
table needs no network; `pixi run plan --model <hub id>` reads any other model's config from the hub.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cookbook.memory_plan import GIB, TECHNIQUES, load_shape, plan

CONFIGS = Path(__file__).with_name("model_configs")
ORDER = ["Qwen2.5-0.5B", "Llama-3.2-1B", "Qwen2.5-1.5B", "Llama-3.2-3B", "Qwen2.5-7B", "Llama-3.1-8B"]


def gib(value: int) -> str:
    return f"{value / GIB:.1f}"


def table(technique: str, batch_size: int, seq_len: int, optimizer: str, lora_rank: int) -> str:
    lines = [
        f"{technique}: bf16 weights, {optimizer}, batch {batch_size} x {seq_len} tokens"
        + (f", LoRA r={lora_rank} on all linear layers" if technique != "full" else ""),
        "",
        "| model | params | weights | gradients | optimizer | activations (no GC / GC) | logits | total GiB (no GC / GC) |"
        " fits 24 GiB | fits 80 GiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in ORDER:
        shape = load_shape(str(CONFIGS / f"{name}.json"))
        kwargs = dict(batch_size=batch_size, seq_len=seq_len, optimizer=optimizer, lora_rank=lora_rank)
        plain = plan(shape, technique, **kwargs)
        checkpointed = plan(shape, technique, gradient_checkpointing=True, **kwargs)

        def verdict(gpu: float, plain=plain, checkpointed=checkpointed) -> str:
            if plain.fits(gpu):
                return "yes"
            return "with GC" if checkpointed.fits(gpu) else "no"

        lines.append(
            f"| {name} | {shape.num_parameters() / 1e9:.2f} B | {gib(plain.weights)} | {gib(plain.gradients)} | "
            f"{gib(plain.optimizer_state)} | {gib(plain.activations)} / {gib(checkpointed.activations)} | "
            f"{gib(plain.logits)} | {gib(plain.total)} / {gib(checkpointed.total)} | {verdict(24)} | {verdict(80)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--optimizer", default="adamw")
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--technique", choices=TECHNIQUES, action="append")
    args = parser.parse_args()
    for technique in args.technique or TECHNIQUES:
        print(table(technique, args.batch_size, args.seq_len, args.optimizer, args.lora_rank), end="\n\n")


if __name__ == "__main__":
    main()
