"""Every notebook under the numbered directories runs headless in smoke mode and shows learning.

New notebooks are picked up automatically. Each must write metrics.json through RunRecorder with an
`eval` entry: the headless check is that the trained model beats the untrained baseline on
held-out data by a clear margin.
"""

import math
import os
import time

import pytest

from cookbook.layout import find_notebooks
from cookbook.run import run_notebook

# In a technique environment only that technique's notebooks can run (see conftest.py).
NOTEBOOKS = find_notebooks(environment=os.environ.get("PIXI_ENVIRONMENT_NAME"))
REQUIRED = [
    "train_loss_start",
    "train_loss_end",
    "peak_memory_bytes",
    "wall_time_s",
    "tokens_per_s",
    "device",
]
TRUNCATING = {"lora.ipynb", "qlora.ipynb", "sft.ipynb"}  # chat recipes: examples cut to max_length are counted


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[f"{p.parent.name}/{p.name}" for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode_and_learns(notebook, tmp_path):
    started = time.perf_counter()
    metrics = run_notebook(notebook, tmp_path, smoke=True)
    print(f"{notebook.name}: {time.perf_counter() - started:.1f} s")

    assert all(key in metrics for key in REQUIRED), f"metrics.json lacks {set(REQUIRED) - set(metrics)}"
    assert all(math.isfinite(metrics[key]) for key in REQUIRED if key != "device")
    assert (tmp_path / "loss_curve.png").exists()
    result = metrics["eval"]
    if result["higher_is_better"]:
        assert result["after"] > result["before"], f"{result['metric']} did not improve: {result}"
    else:
        assert result["after"] < 0.9 * result["before"], f"{result['metric']} did not drop by 10%: {result}"
    if notebook.name in TRUNCATING:
        assert set(metrics["truncation"]) == {"train", "test"}
        assert all(0 <= r["dropped"] <= r["cut"] <= r["examples"] for r in metrics["truncation"].values())
    if "adapter_reload_max_abs_diff" in metrics:
        assert metrics["adapter_reload_max_abs_diff"] < 1e-4


def test_notebooks_are_found():
    assert NOTEBOOKS, "no notebooks found under the numbered directories"


def test_committed_notebooks_have_no_outputs_and_a_parameters_cell():
    import nbformat

    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert not any(cell.outputs or cell.execution_count for cell in code), f"{path} has outputs: pixi run strip"
        tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path} needs exactly one cell tagged 'parameters'"
        assert "smoke = False" in tagged[0].source, f"{path}: the parameters cell must default to smoke = False"
