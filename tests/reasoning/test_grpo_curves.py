"""The GRPO curve plot reads TRL's log history: total reward, each reward function, completion length."""

import pytest

from cookbook.grpo_curves import grpo_series, plot_grpo_history

HISTORY = [
    {"step": 1, "loss": 0.0, "reward": 0.2, "rewards/correctness_reward/mean": 0.0,
     "rewards/correctness_reward/std": 0.0, "rewards/format_reward/mean": 1.0, "completions/mean_length": 12.0,
     "frac_reward_zero_std": 1.0},
    {"step": 2, "loss": 0.1, "reward": 0.7, "rewards/correctness_reward/mean": 0.5,
     "rewards/format_reward/mean": 1.0, "completions/mean_length": 10.5, "frac_reward_zero_std": 0.5},
    {"step": 2, "train_runtime": 3.0},
]  # fmt: skip


def test_grpo_series_picks_means_not_stds():
    series = grpo_series(HISTORY)
    assert series["reward"] == [(1, 0.2), (2, 0.7)]
    assert series["rewards/correctness_reward/mean"] == [(1, 0.0), (2, 0.5)]
    assert series["completions/mean_length"] == [(1, 12.0), (2, 10.5)]
    assert "rewards/correctness_reward/std" not in series and "loss" not in series


def test_plot_grpo_history_writes_a_png(tmp_path):
    path = plot_grpo_history(HISTORY, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(RuntimeError, match="no reward"):
        plot_grpo_history([{"step": 1, "loss": 0.3}], tmp_path / "none.png")
