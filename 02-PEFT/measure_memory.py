"""Measure full fine-tuning vs LoRA vs QLoRA on a mid-sized model without downloading one.

    python 02-PEFT/measure_memory.py --out /tmp/memory      # ~168M parameters, a few minutes on CPU

Builds a Llama-shaped model with random weights (memory counts do not depend on the values) plus the
tiny model's tokenizer and generated conversations, runs `memory_comparison.ipynb` on it for a couple
of steps, and prints the table that `README.md` shows. On a GPU the CUDA peak column fills in too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from cookbook.run import run_notebook
from cookbook.smoke.data import write_smoke_dataset
from cookbook.smoke.tiny_model import save_tiny_model


def build_model(directory: Path, hidden: int, layers: int, vocab: int) -> Path:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 11 // 4,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        max_position_embeddings=512,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    AutoTokenizer.from_pretrained(save_tiny_model()).save_pretrained(directory)
    return directory


def markdown_table(metrics: dict) -> str:
    rows = metrics["memory_comparison"]
    full = rows["full"]["counted_total_bytes"]
    lines = [
        "| method | trainable parameters | weights MiB | gradients MiB | optimizer MiB | total MiB | vs full | CUDA peak MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, r in rows.items():
        peak = f"{r['cuda_peak_bytes'] / 2**20:.0f}" if r["cuda_peak_bytes"] else "n/a (CPU)"
        cells = [
            r[k] / 2**20 for k in ("parameter_bytes", "gradient_bytes", "optimizer_state_bytes", "counted_total_bytes")
        ]
        lines.append(
            f"| {method} | {r['trainable_parameters']:,} | "
            + " | ".join(f"{c:.1f}" for c in cells)
            + f" | {r['counted_total_bytes'] / full:.2f} | {peak} |"
        )
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args(argv)

    model = build_model(args.out / "model", args.hidden, args.layers, args.vocab)
    data = write_smoke_dataset("chat", args.out / "data")
    notebook = Path(__file__).with_name("memory_comparison.ipynb")
    parameters = {
        "model_name": str(model),
        "dataset_name": str(data),
        "max_steps": args.steps,
        "max_length": 96,
        "eval_samples": 8,
        "batch_size": 4,
    }
    metrics = run_notebook(notebook, args.out / "run", parameters)
    (args.out / "memory_table.json").write_text(json.dumps(metrics["memory_comparison"], indent=2))
    table = markdown_table(metrics)
    print(
        f"{sum(p.numel() for p in LlamaForCausalLM.from_pretrained(model).parameters()):,} parameters, {metrics['device']}"
    )
    print(table)
    return table


if __name__ == "__main__":
    main()
