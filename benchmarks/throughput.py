"""Training throughput, side by side in one run: padded batches vs three padding-free packings, with and
without gradient checkpointing, for full fine-tuning, LoRA and QLoRA.

    python benchmarks/throughput.py                 # CPU preset: a few minutes on 2 cores
    python benchmarks/throughput.py --preset gpu    # on a GPU: a 0.5B model, longer chats, MFU for full FT

Every configuration trains the same randomly initialised model on the same variable-length chat
batches (cookbook.perf.packing_layouts.variable_length_chats: log-normal lengths, like real chat corpora) for a fixed
number of steps, each in its own process so that peak memory is its own. Layouts (`--layouts`):
padded (to each batch's longest), packed (the batch flattened into one row), binned (best-fit-decreasing
rows no longer than the batch's longest example), segments (the flattened row, attention run per
example) and recipe (what the recipes run: the flattened row with the kernel `cookbook.packing.choose_attention`
picks, FlashAttention-2 where flash-attn is installed, else SDPA per example). Every layout computes the same examples per step. Reported per configuration:
tokens/s counting real (non-pad) tokens only, the share of computed tokens that were padding, peak
memory (CUDA: torch.cuda.max_memory_allocated; CPU: growth of the process's peak RSS during training)
and, for full fine-tuning on CUDA, model FLOPs utilisation (MFU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# a ~1M-parameter Llama that trains in seconds on 2 CPU cores
CPU_PRESET = dict(
    config=dict(
        model_type="llama",
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
    ),
    median_tokens=64,
    max_tokens=256,
    batch_size=8,
    steps=4,
    warmup=1,
    repeats=3,
    threads=1,
)

PRESETS = {
    "cpu": CPU_PRESET,
    # four times the compute per token: less of each step is Python and framework overhead
    "cpu-large": {
        **CPU_PRESET,
        "config": {
            **CPU_PRESET["config"],
            "hidden_size": 256,
            "intermediate_size": 768,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
        },
    },
    # Qwen2.5-0.5B's shape, random weights (nothing downloaded)
    "gpu": dict(
        config="benchmarks/model_configs/Qwen2.5-0.5B.json",
        median_tokens=384,
        max_tokens=4096,
        batch_size=16,
        steps=20,
        warmup=5,
        repeats=1,
    ),
}
CONFIGURATIONS = [
    (technique, layout, checkpointing)
    for technique in ("full", "lora", "qlora")
    for checkpointing in (False, True)
    for layout in ("padded", "packed", "binned", "segments", "recipe")
]
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "4090": 165.0}


def rss_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def build_model(spec: dict, technique: str, device: str, dtype, attention: str = "sdpa", allow_flash: bool = True):
    from transformers import AutoConfig

    from cookbook.perf.technique_models import build_random_model

    config = spec["config"]
    config = AutoConfig.from_pretrained(config) if isinstance(config, str) else AutoConfig.for_model(**config)
    config.vocab_size = spec["vocab_size"]
    if device == "cuda" and attention == "sdpa" and allow_flash:
        import importlib.util

        if importlib.util.find_spec("flash_attn"):
            attention = "flash_attention_2"
    model = build_random_model(
        config, technique, dtype, device=device, attn_implementation=attention, lora_rank=16, lora_alpha=32
    )
    return model, attention


def child(spec: dict) -> dict:
    """Train one configuration and return its measurements."""
    import torch
    from transformers import DataCollatorWithFlattening

    from cookbook.packing import choose_attention, packing_collator
    from cookbook.perf.packing_layouts import binned_packing_collator, register_segment_attention

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    rows = json.loads(Path(spec["data"]).read_text())
    layout = spec["layout"]
    # segments: per-example SDPA on the flattened row (the CPU stand-in for a variable-length kernel)
    attention = register_segment_attention() if layout == "segments" else "sdpa"
    if layout == "recipe":  # the recipes' layout and kernel: packing_collator + choose_attention
        attention = choose_attention(device).implementation
    # binned rows stay on SDPA: transformers' FlashAttention path reads packed position_ids only for batch 1
    model, attention = build_model(spec, spec["technique"], device, dtype, attention, allow_flash=layout != "binned")
    if spec["checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if spec["technique"] != "full":
            model.enable_input_require_grads()
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, fused=device == "cuda")

    batch_size = spec["batch_size"]
    if layout in ("packed", "segments", "recipe"):
        collate = packing_collator()
        assert isinstance(collate, DataCollatorWithFlattening)
    elif layout == "binned":
        collate = binned_packing_collator(spec["pad_token_id"])
    else:
        pad = spec["pad_token_id"]

        def collate(batch):
            longest = max(len(row["input_ids"]) for row in batch)
            out = {"input_ids": [], "attention_mask": [], "labels": []}
            for row in batch:
                extra = longest - len(row["input_ids"])
                out["input_ids"].append(row["input_ids"] + [pad] * extra)
                out["attention_mask"].append([1] * len(row["input_ids"]) + [0] * extra)
                out["labels"].append(row["labels"] + [-100] * extra)
            return {key: torch.tensor(value) for key, value in out.items()}

    groups = [rows[i : i + batch_size] for i in range(0, len(rows) - batch_size + 1, batch_size)]
    batches = [collate(group) for group in groups]
    steps, warmup = spec["steps"], spec["warmup"]
    assert len(batches) >= steps + warmup, "not enough data for the requested steps"

    def step(batch):
        inputs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        # use_cache=False matters for packing: with a cache, transformers skips the packed-sequence
        # mask and examples in the flattened row attend to each other
        loss = model(**inputs, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for batch in batches[:warmup]:
        step(batch)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
    start_rss = rss_bytes("VmRSS")
    real = computed = attended = scores = 0
    seconds = 0.0
    for group, batch in zip(groups[warmup : warmup + steps], batches[warmup : warmup + steps], strict=True):
        # each batch runs `repeats` times and counts its fastest run: on a shared machine the other
        # processes slow some runs down, rarely all of them
        times = []
        for _ in range(spec.get("repeats", 1)):
            began = time.perf_counter()
            step(batch)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - began)
        seconds += min(times)
        computed += batch["input_ids"].numel()
        lengths = [len(row["input_ids"]) for row in group]
        real += sum(lengths)
        attended += sum(n * n for n in lengths)
        # attention scores SDPA computes: every row's full width^2, or each example's length^2 with segments
        n_rows, width = batch["input_ids"].shape
        per_example = layout == "segments" or (layout == "recipe" and attention != "sdpa")
        scores += sum(n * n for n in lengths) if per_example else n_rows * width * width
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else rss_bytes("VmHWM") - start_rss
    result = {
        "technique": spec["technique"],
        "layout": layout,
        "checkpointing": spec["checkpointing"],
        "device": torch.cuda.get_device_name(0) if device == "cuda" else f"cpu x{torch.get_num_threads()}",
        "attention": attention,
        "tokens_per_s": real / seconds,
        "padding_share": 1 - real / computed,
        "scores_per_step": scores / steps,
        "peak_memory_bytes": peak,
        "peak_kind": "cuda max_memory_allocated" if device == "cuda" else "cpu peak RSS growth",
        "seconds": seconds,
    }
    if device == "cuda" and spec["technique"] == "full":
        # model FLOPs: 6 per parameter per token (forward + backward) plus causal attention,
        # 6 * layers * hidden * L per sequence of L tokens (12 * ... halved for the causal mask)
        config = model.config
        n_params = sum(p.numel() for p in model.parameters())
        flops = 6 * n_params * real + 6 * config.num_hidden_layers * config.hidden_size * attended
        name = torch.cuda.get_device_name(0)
        peak_tflops = spec.get("peak_tflops") or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        if peak_tflops:
            result["mfu"] = flops / seconds / (peak_tflops * 1e12)
            result["peak_tflops"] = peak_tflops
    return result


def fmt_bytes(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"


def markdown(results: list[dict]) -> str:
    baseline = {(r["technique"], r["checkpointing"]): r["tokens_per_s"] for r in results if r["layout"] == "padded"}
    lines = [
        "| technique | batches | grad. checkpointing | tokens/s (real) | vs padded | padding share | attention scores/step | peak memory | MFU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        ratio = r["tokens_per_s"] / baseline[(r["technique"], r["checkpointing"])]
        mfu = f"{r['mfu']:.1%}" if "mfu" in r else "-"
        batches = f"{r['layout']} ({r['attention']})" if r["layout"] == "recipe" else r["layout"]
        lines.append(
            f"| {r['technique']} | {batches} | {'on' if r['checkpointing'] else 'off'} | {r['tokens_per_s']:,.0f} | "
            f"{ratio:.2f}x | {r['padding_share']:.0%} | {r['scores_per_step'] / 1e3:,.0f}k | {fmt_bytes(r['peak_memory_bytes'])} | {mfu} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Throughput: padded vs packing, with and without checkpointing")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--techniques", default="full,lora,qlora", help="comma-separated subset of full,lora,qlora")
    parser.add_argument(
        "--layouts", default="padded,packed,binned,segments,recipe", help="comma-separated; padded first"
    )
    parser.add_argument("--steps", type=int)
    parser.add_argument("--repeats", type=int, help="runs per batch; the fastest counts (default: preset)")
    parser.add_argument("--threads", type=int, help="CPU threads per configuration (default: preset)")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, for MFU (auto for H100/A100...)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(Path(args.child).read_text()))))
        return

    from cookbook.perf.packing_layouts import padding_share, variable_length_chats
    from cookbook.smoke.tiny_model import train_tiny_tokenizer

    preset = dict(PRESETS[args.preset])
    for option in ("steps", "repeats", "threads"):
        if getattr(args, option):
            preset[option] = getattr(args, option)
    tokenizer = train_tiny_tokenizer()
    n = preset["batch_size"] * (preset["steps"] + preset["warmup"])
    rows = variable_length_chats(tokenizer, n, preset["median_tokens"], preset["max_tokens"])
    lengths = [len(row["input_ids"]) for row in rows]
    print(
        f"{len(rows)} conversations, lengths {min(lengths)}..{max(lengths)} (median {sorted(lengths)[len(lengths) // 2]}),"
        f" batch {preset['batch_size']}: padding to the longest would make {padding_share(lengths, preset['batch_size']):.0%}"
        " of computed tokens padding",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="throughput-"))
    (work / "data.json").write_text(json.dumps(rows))
    techniques = args.techniques.split(",")
    layouts = args.layouts.split(",")
    results = []
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    )
    for technique, layout, checkpointing in CONFIGURATIONS:
        if technique not in techniques or layout not in layouts:
            continue
        spec = dict(
            preset,
            technique=technique,
            layout=layout,
            checkpointing=checkpointing,
            data=str(work / "data.json"),
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            peak_tflops=args.peak_tflops,
        )
        (work / "spec.json").write_text(json.dumps(spec))
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(work / "spec.json")], capture_output=True, text=True, env=env
        )
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{technique}/{layout}/checkpointing={checkpointing} failed")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        print(
            f"{technique:6} {layout:8} checkpointing={'on ' if checkpointing else 'off'} "
            f"{result['tokens_per_s']:9,.0f} tokens/s  padding {result['padding_share']:4.0%}  "
            f"peak {fmt_bytes(result['peak_memory_bytes'])}",
            flush=True,
        )
    print(f"\ndevice: {results[0]['device']}, attention: {results[0]['attention']}\n")
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
