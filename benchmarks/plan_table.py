"""Markdown tables of the memory plan for common model sizes, one per technique, for the READMEs.

    python benchmarks/plan_table.py --batch-size 4 --seq-len 1024
    python benchmarks/plan_table.py --technique full --dtype bf16-mixed --gpus 8 --models Qwen2.5-0.5B,Llama-3.1-70B

The configs in benchmarks/model_configs/ hold the published shapes of the models (no weights), so the
table needs no network; `pixi run plan --model <hub id>` reads any other model's config from the hub.
Every number comes from `cookbook.perf.memory_plan.plan`; nothing here adds its own formula.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cookbook.perf.memory_plan import DTYPES, GIB, LOSSES, OBJECTIVES, OPTIMIZERS, TECHNIQUES, load_shape, plan

CONFIGS = Path(__file__).with_name("model_configs")
ORDER = ["Qwen2.5-0.5B", "Llama-3.2-1B", "Qwen2.5-1.5B", "Llama-3.2-3B", "Qwen2.5-7B", "Llama-3.1-8B"]


def gib(value: int) -> str:
    return f"{value / GIB:.1f}"


def describe(
    technique: str, dtype: str, optimizer: str, batch_size: int, seq_len: int, lora_rank: int, extra: dict
) -> str:
    precision = "bf16 mixed precision (fp32 weights, bf16 autocast)" if dtype == "bf16-mixed" else f"{dtype} weights"
    lora = f", LoRA r={lora_rank} on all linear layers" if technique != "full" else ""
    objective = extra.get("objective", "sft")
    label = technique if objective == "sft" else f"{technique} {objective.upper()}"
    what = f"batch {batch_size} x {seq_len} tokens"
    if extra.get("completion_len"):
        what += f" (completions of {extra['completion_len']})"
    if extra.get("beta"):
        what += f", beta {extra['beta']:g}"
    if extra.get("loss", "standard") != "standard":
        what += f", {extra['loss']} cross-entropy"
    return f"{label}: {precision}, {optimizer}, {what}{lora}"


def table(
    technique: str,
    batch_size: int,
    seq_len: int,
    optimizer: str,
    lora_rank: int,
    dtype: str = "bf16",
    gpus: int = 1,
    models: list[str] = ORDER,
    extra: dict | None = None,
) -> str:
    """One Markdown table: a row per model, the plan's parts on one GPU, and with `gpus` > 1 the per-GPU
    total under FSDP full sharding. `extra`: objective, completion_len, beta, loss (see `plan`)."""
    extra = {key: value for key, value in (extra or {}).items() if value is not None}
    fsdp = gpus > 1
    rows = []
    for name in models:
        shape = load_shape(str(CONFIGS / f"{name}.json"))
        kwargs = dict(batch_size=batch_size, seq_len=seq_len, optimizer=optimizer, lora_rank=lora_rank, dtype=dtype)
        kwargs |= extra
        plain = plan(shape, technique, **kwargs)
        checkpointed = plan(shape, technique, gradient_checkpointing=True, **kwargs)
        sharded = plan(shape, technique, gradient_checkpointing=True, gpus=gpus, **kwargs) if fsdp else None
        rows.append((name, shape, plain, checkpointed, sharded))
    copies = any(plain.weight_copies for _, _, plain, _, _ in rows)
    reference = any(plain.reference_weights for _, _, plain, _, _ in rows)
    generation = extra.get("objective") == "grpo"

    header = ["model", "params", "weights", "gradients", "optimizer"]
    header += ["bf16 weight copies"] * copies + ["reference model"] * reference
    header += ["activations (no GC / GC)", "logits"] + ["KV cache (generation)"] * generation
    header += ["total GiB (no GC / GC)", "fits 24 GiB", "fits 80 GiB"]
    header += [f"per GPU, FSDP x{gpus}, GC", f"fits 80 GiB x{gpus}"] * fsdp
    lines = [
        describe(technique, dtype, optimizer, batch_size, seq_len, lora_rank, extra),
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    for name, shape, plain, checkpointed, sharded in rows:

        def verdict(gpu: float, plain=plain, checkpointed=checkpointed) -> str:
            if plain.fits(gpu):
                return "yes"
            return "with GC" if checkpointed.fits(gpu) else "no"

        cells = [name, f"{shape.num_parameters() / 1e9:.2f} B", gib(plain.weights), gib(plain.gradients)]
        cells += [gib(plain.optimizer_state)] + [gib(plain.weight_copies)] * copies
        cells += [gib(plain.reference_weights)] * reference
        cells += [f"{gib(plain.activations)} / {gib(checkpointed.activations)}", gib(plain.logits)]
        cells += [gib(plain.kv_cache)] * generation
        cells += [f"{gib(plain.total)} / {gib(checkpointed.total)}", verdict(24), verdict(80)]
        if sharded:
            cells += [gib(sharded.total), "yes" if sharded.fits(80) else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(args: argparse.Namespace) -> str:
    """Everything the command prints, so a README can be checked against it."""
    models = args.models.split(",") if args.models else ORDER
    extra = dict(objective=args.objective, completion_len=args.completion_len, beta=args.beta, loss=args.loss)
    out = []
    for technique in args.technique or TECHNIQUES:
        out.append(
            table(
                technique,
                args.batch_size,
                args.seq_len,
                args.optimizer,
                args.lora_rank,
                args.dtype,
                args.gpus,
                models,
                extra,
            )
        )
    return "\n\n".join(out)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw")
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--technique", choices=TECHNIQUES, action="append")
    parser.add_argument("--dtype", choices=DTYPES, default="bf16", help="bf16-mixed: fp32 model under bf16 autocast")
    parser.add_argument("--gpus", type=int, default=1, help="add a per-GPU column for FSDP full shard over N GPUs")
    parser.add_argument("--objective", choices=OBJECTIVES, default=None, help="sft (default), dpo or grpo")
    parser.add_argument("--completion-len", type=int, default=None, help="GRPO: completion tokens of --seq-len")
    parser.add_argument("--beta", type=float, default=None, help="GRPO: KL coefficient (> 0: a reference model)")
    parser.add_argument("--loss", choices=LOSSES, default=None, help="chunked: fused/chunked cross-entropy")
    parser.add_argument("--models", help=f"comma-separated names from {CONFIGS.name}/ (default: {','.join(ORDER)})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    print(tables(parse(argv)), end="\n\n")


if __name__ == "__main__":
    main()
