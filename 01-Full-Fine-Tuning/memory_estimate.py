"""Estimate GPU memory for full fine-tuning with AdamW in bf16 mixed precision; prints README.md's table.

    python 01-Full-Fine-Tuning/memory_estimate.py --batch-size 4 --seq-len 1024 --gpus 8

These are computed estimates, not measurements. Per parameter: fp32 weights (4 bytes), fp32 gradients
(4) and AdamW's two fp32 moments (8) = 16 bytes. Activations, in bf16, per micro-batch of b sequences of
s tokens, hidden size h, L layers (after Korthikanti et al. 2022, "Reducing Activation Recomputation in
Large Transformer Models", with fused attention so no s x s score matrices are kept):
  - without checkpointing: about 34 * s * b * h bytes per layer;
  - with checkpointing: each layer keeps only its bf16 input (2 * s * b * h bytes), plus one layer's full
    activations while it is recomputed;
  - plus the logits and their gradient in fp32 for the loss: about 8 * s * b * vocab bytes.
Real use adds the CUDA context (~0.5-1 GB), allocator fragmentation and temporary buffers: keep 10-20% spare.
"""

from __future__ import annotations

import argparse

# (parameters, hidden_size, num_hidden_layers, vocab_size) as published in each model's config.json.
MODELS = {
    "Qwen2.5-0.5B": (0.494e9, 896, 24, 151936),
    "Qwen2.5-1.5B": (1.54e9, 1536, 28, 151936),
    "Qwen2.5-3B": (3.09e9, 2048, 36, 151936),
    "Qwen2.5-7B": (7.62e9, 3584, 28, 152064),
    "Llama-3.1-8B": (8.03e9, 4096, 32, 128256),
    "Qwen2.5-14B": (14.7e9, 5120, 48, 152064),
    "Llama-3.1-70B": (70.6e9, 8192, 80, 128256),
}
GB = 1e9


def estimate(params: float, hidden: int, layers: int, vocab: int, batch: int, seq: int) -> dict[str, float]:
    tokens = batch * seq
    per_layer_full = 34 * tokens * hidden
    logits = 8 * tokens * vocab
    return {
        "weights": 4 * params,
        "gradients": 4 * params,
        "adamw": 8 * params,
        "activations_checkpointed": layers * 2 * tokens * hidden + per_layer_full + logits,
        "activations_full": layers * per_layer_full + logits,
    }


def table(batch: int, seq: int, gpus: int) -> str:
    rows = [
        f"| model | weights fp32 | gradients fp32 | AdamW (2 moments) | activations, checkpointing | "
        f"activations, none | total, 1 GPU (checkpointing) | per GPU, FSDP x{gpus} |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, spec in MODELS.items():
        e = estimate(*spec, batch=batch, seq=seq)
        states = e["weights"] + e["gradients"] + e["adamw"]
        total = states + e["activations_checkpointed"]
        sharded = states / gpus + e["activations_checkpointed"]
        cells = [e["weights"], e["gradients"], e["adamw"], e["activations_checkpointed"], e["activations_full"]]
        rows.append(
            f"| {name} | "
            + " | ".join(f"{c / GB:.1f} GB" for c in cells)
            + f" | {total / GB:.0f} GB | {sharded / GB:.1f} GB |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=4, help="sequences per micro-batch per GPU")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--gpus", type=int, default=8, help="GPUs that FSDP shards the states over")
    args = parser.parse_args(argv)
    print(f"micro-batch {args.batch_size} x {args.seq_len} tokens per GPU (computed estimates, see the docstring)\n")
    print(table(args.batch_size, args.seq_len, args.gpus))


if __name__ == "__main__":
    main()
