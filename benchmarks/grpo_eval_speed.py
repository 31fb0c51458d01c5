"""GRPO evaluation speed: greedy answers one problem at a time vs batched (left-padded), side by side in one run.

    python benchmarks/grpo_eval_speed.py                       # CPU: the smoke-sized model, 48 problems
    python benchmarks/grpo_eval_speed.py --batch-sizes 1,8,32 --problems 96 --max-new-tokens 64

`cookbook.rewards.answer_accuracy` scores held-out problems three times per GRPO run (before, after the warm
start, after GRPO). It now generates `batch_size` problems per `generate` call
(`cookbook.rewards.batched_greedy_replies`); this script times that generation for the same problems, the same
model and the same greedy decoding at each batch size (scoring with math-verify is the same work at every
batch size and is left out), checks that every batch size gives the same replies as batch size 1, and prints
the speed-up over batch size 1. Each batch size runs `--repeats` times and its fastest run counts. The model is a randomly
initialised Llama of the given size (nothing downloaded); random weights rarely stop early, so every reply
runs to `--max-new-tokens`, as long completions of a real model do.
"""

from __future__ import annotations

import argparse
import time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="1,4,16", help="comma-separated; the first is the baseline")
    parser.add_argument("--problems", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady timings on a shared machine)")
    args = parser.parse_args(argv)

    import torch

    from cookbook.reasoning_data import prepare_problems
    from cookbook.rewards import batched_greedy_replies
    from cookbook.smoke.data import math_problems
    from cookbook.smoke.tiny_model import TinyModelSpec, build_tiny_model

    torch.set_num_threads(args.threads)
    spec = TinyModelSpec(hidden_size=args.hidden_size, intermediate_size=3 * args.hidden_size)
    spec = TinyModelSpec(**{**spec.__dict__, "num_hidden_layers": args.layers})
    model, tokenizer = build_tiny_model(spec)
    problems = prepare_problems(math_problems(args.problems, seed=7), what="benchmark problems")
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    prompts = [problem["prompt"] for problem in problems]
    results = {}
    batched_greedy_replies(model, tokenizer, prompts[:2], args.max_new_tokens, batch_size=2)  # warm-up
    for size in sizes:
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            replies = batched_greedy_replies(model, tokenizer, prompts, args.max_new_tokens, batch_size=size)
            times.append(time.perf_counter() - started)
        results[size] = (min(times), [reply["reply"] for reply in replies])
    baseline_seconds, baseline_replies = results[sizes[0]]
    print(
        f"{args.problems} problems, {args.max_new_tokens} new tokens, hidden {args.hidden_size} x {args.layers} "
        f"layers, {args.threads} thread(s), device cpu\n"
    )
    print("| batch size | seconds | problems/s | vs batch size " + str(sizes[0]) + " | same replies |")
    print("| --- | --- | --- | --- | --- |")
    for size, (seconds, replies) in results.items():
        same = "yes" if replies == baseline_replies else "NO"
        print(
            f"| {size} | {seconds:.2f} | {args.problems / seconds:.1f} | {baseline_seconds / seconds:.2f}x | {same} |"
        )


if __name__ == "__main__":
    main()
