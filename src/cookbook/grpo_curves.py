"""What a GRPO run looks like over time: mean reward, each reward function's mean, completion length."""

from __future__ import annotations

from pathlib import Path


def grpo_series(log_history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """(step, value) series from a GRPOTrainer's `state.log_history`: `reward`, every
    `rewards/<function>/mean`, `completions/mean_length` and `frac_reward_zero_std` where logged."""
    series: dict[str, list[tuple[int, float]]] = {}
    for entry in log_history:
        for key, value in entry.items():
            wanted = key in ("reward", "completions/mean_length", "frac_reward_zero_std") or (
                key.startswith("rewards/") and key.endswith("/mean")
            )
            if wanted and "step" in entry:
                series.setdefault(key, []).append((entry["step"], float(value)))
    return series


def plot_grpo_history(log_history: list[dict], path: str | Path) -> Path:
    """Save reward (total and per function) and completion length over steps as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = grpo_series(log_history)
    if "reward" not in series:
        raise RuntimeError("the GRPO trainer logged no reward: set logging_steps to at most max_steps")
    fig, (rewards, lengths) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key, points in series.items():
        if key == "reward" or key.startswith("rewards/"):
            label = "total (weighted)" if key == "reward" else key.split("/")[1]
            rewards.plot(*zip(*points, strict=True), label=label, linewidth=2 if key == "reward" else 1)
    rewards.set(xlabel="step", ylabel="mean reward", title="Reward per step")
    rewards.legend()
    lengths.plot(*zip(*series.get("completions/mean_length", [(0, 0.0)]), strict=True))
    lengths.set(xlabel="step", ylabel="tokens", title="Mean completion length")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
