"""Check the memory planner's peak against torch.cuda.max_memory_allocated on a GPU.

    python benchmarks/check_planner_gpu.py                       # 3 techniques x 2 sizes x 2 settings
    python benchmarks/check_planner_gpu.py --json planner_gpu.json

For each configuration a randomly initialised model with a real model's shape (benchmarks/model_configs,
nothing downloaded) is loaded on the GPU in bf16, trained for two optimizer steps on random tokens, and
the allocator's peak is compared with the plan's total. The plan counts tensors only: the CUDA context
and cuBLAS workspaces are outside max_memory_allocated and outside the comparison. The target is a
prediction within 15% of the measurement. Prints a Markdown table to paste into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoConfig

from cookbook.perf.memory_plan import load_shape, plan
from cookbook.perf.technique_models import build_random_model

CONFIGS = Path(__file__).with_name("model_configs")
SIZES = ("Qwen2.5-0.5B", "Llama-3.2-1B")
SETTINGS = (
    dict(batch_size=4, seq_len=512, gradient_checkpointing=False),
    dict(batch_size=8, seq_len=1024, gradient_checkpointing=True),
)


def build(config_path: Path, technique: str):
    config = AutoConfig.from_pretrained(config_path)
    return build_random_model(config, technique, torch.bfloat16, device="cuda", attn_implementation="sdpa")


def measure(name: str, technique: str, batch_size: int, seq_len: int, gradient_checkpointing: bool) -> dict:
    path = CONFIGS / f"{name}.json"
    model = build(path, technique)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if technique != "full":
            model.enable_input_require_grads()
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=True)
    vocab = model.config.vocab_size
    torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        ids = torch.randint(0, vocab, (batch_size, seq_len), device="cuda")
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        del loss
    torch.cuda.synchronize()
    measured = torch.cuda.max_memory_allocated()
    predicted = plan(
        load_shape(str(path)),
        technique,
        batch_size=batch_size,
        seq_len=seq_len,
        gradient_checkpointing=gradient_checkpointing,
        lora_rank=16,
    )
    del model, optimizer
    torch.cuda.empty_cache()
    return {
        "model": name,
        "technique": technique,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "gradient_checkpointing": gradient_checkpointing,
        "predicted_bytes": predicted.total,
        "predicted_static_bytes": predicted.static,
        "measured_bytes": measured,
        "error": predicted.total / measured - 1,
        "device": torch.cuda.get_device_name(0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: this check needs one (the CPU checks are tests/test_memory_plan.py)")
    rows = []
    for name in SIZES:
        for technique in ("full", "lora", "qlora"):
            for setting in SETTINGS:
                row = measure(name, technique, **setting)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"\n{rows[0]['device']}, bf16, SDPA, AdamW (fused), LoRA r=16 on all linear layers\n")
    print("| model | technique | batch x length | grad. checkpointing | predicted GiB | measured GiB | error |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['model']} | {r['technique']} | {r['batch_size']} x {r['seq_len']} | "
            f"{'on' if r['gradient_checkpointing'] else 'off'} | {r['predicted_bytes'] / 2**30:.2f} | "
            f"{r['measured_bytes'] / 2**30:.2f} | {r['error']:+.1%} |"
        )
    within = sum(abs(r["error"]) <= 0.15 for r in rows)
    print(f"\n{within}/{len(rows)} configurations within 15%")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
