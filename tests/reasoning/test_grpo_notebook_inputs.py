"""The reasoning notebook on a user's local math folder, run as given (dataset_config="main" left at its hub
default): half the answers unparseable and only two held-out problems left. The skip is counted, the config is
noted as not applying to a folder, and no later cell fails for want of held-out problems."""

import json

import pytest

from cookbook.layout import REPO_ROOT
from cookbook.run import run_notebook
from cookbook.smoke.data import small_math_problems
from cookbook.smoke.tiny_model import save_tiny_model


def write_problems(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.mark.notebook
def test_grpo_notebook_with_a_local_folder_and_two_held_out_problems(tmp_path):
    data = tmp_path / "math"
    data.mkdir()
    problems = small_math_problems(12, seed=8)
    write_problems(data / "train.jsonl", problems[:8])
    broken = [{**row, "answer": "see the figure"} for row in problems[10:]]
    write_problems(data / "test.jsonl", problems[8:10] + broken)  # 2 usable held-out problems of 4
    tiny = {"sft_steps": 2, "max_steps": 1, "batch_size": 2, "num_generations": 2, "max_completion_length": 8}
    parameters = {"model_name": str(save_tiny_model()), "dataset_name": str(data), **tiny}

    metrics = run_notebook(REPO_ROOT / "04-Reasoning-Tuning" / "grpo.ipynb", tmp_path / "run", parameters)

    assert metrics["eval_problems"] == 2
    notebook = (tmp_path / "run" / "grpo.ipynb").read_text()
    assert "dataset config 'main' does not apply" in notebook
    assert "skipped 2 of 4 test problems" in notebook
