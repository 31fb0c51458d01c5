"""Step time of LoRA vs DoRA vs rsLoRA, side by side in one run, reported as ratios to LoRA.

    pixi run -e peft python 02-PEFT/step_time.py            # CPU or GPU, whichever is there
    python 02-PEFT/step_time.py --hidden 1024 --layers 4 --rounds 5 --out step_time.json

Builds a randomly initialized Llama-shaped model from a config (no download; step time does not
depend on the weights' values), wraps it once per method, and times forward+backward+AdamW steps.
The methods take turns within each round, so a machine that gets busier or quieter mid-run affects
all of them alike; the reported figure is each method's median step time over the rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

METHODS = {"lora": {}, "rslora": {"use_rslora": True}, "dora": {"use_dora": True}}


def build(method: str, args) -> torch.nn.Module:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 8 // 3,
        num_hidden_layers=args.layers,
        num_attention_heads=max(1, args.hidden // 64),
    )
    lora = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, target_modules="all-linear", **METHODS[method])
    return get_peft_model(LlamaForCausalLM(config), lora).to(args.device)


def step_seconds(model, optimizer, batch, steps: int) -> float:
    if batch["input_ids"].is_cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if batch["input_ids"].is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per method per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)

    ids = torch.randint(0, args.vocab, (args.batch, args.length), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids.to(args.device), "labels": ids.to(args.device)}
    models = {method: build(method, args) for method in METHODS}
    optimizers = {
        m: torch.optim.AdamW([p for p in model.parameters() if p.requires_grad]) for m, model in models.items()
    }
    for method in METHODS:  # warm-up: first steps allocate optimizer state and caches
        step_seconds(models[method], optimizers[method], batch, 1)
    times = {method: [] for method in METHODS}
    for _ in range(args.rounds):
        for method in METHODS:
            times[method].append(step_seconds(models[method], optimizers[method], batch, args.steps))
    median = {method: statistics.median(values) for method, values in times.items()}
    result = {
        "setup": vars(args),
        "trainable_parameters": {
            m: sum(p.numel() for p in model.parameters() if p.requires_grad) for m, model in models.items()
        },
        "median_step_seconds": median,
        "ratio_to_lora": {method: median[method] / median["lora"] for method in METHODS},
    }
    for method in METHODS:
        print(
            f"{method:7s} {median[method] * 1000:8.1f} ms/step  x{result['ratio_to_lora'][method]:.2f} vs LoRA  "
            f"({result['trainable_parameters'][method]:,} trainable)"
        )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
