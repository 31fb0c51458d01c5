"""Execute notebooks headless with papermill: one recipe with parameters, or all of them in smoke mode.

    python -m cookbook.run 02-PEFT/lora.ipynb -p max_steps 200      # one recipe, real model
    python -m cookbook.run --smoke --all                             # every recipe, tiny local model
    python -m cookbook.run 02-PEFT/lora.ipynb --cell-timeout 7200    # fail a cell that runs over 2 hours

Each notebook writes into `<output-root>/<notebook name>/`: the executed notebook, metrics.json
and its plots. Paths are relative to the working directory (pixi runs tasks from the workspace
root). In a pixi technique environment (PIXI_ENVIRONMENT_NAME), `--all` runs that
technique's notebooks only.

A cell that runs longer than the cell timeout stops the run with an error instead of hanging it: smoke runs
get SMOKE_CELL_TIMEOUT_S by default, real runs none (their training cell takes as long as it takes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import yaml

import cookbook
from cookbook.layout import find_notebooks

# The slowest smoke cell (the SFT or GRPO training cell) takes about 1-2 minutes on a busy 2-core CI machine;
# a cell still running after 10 minutes is stuck (a hung kernel, a generate() that never stops, a deadlock).
SMOKE_CELL_TIMEOUT_S = 600


class CellTimeoutError(RuntimeError):
    """A notebook cell ran longer than the cell timeout."""


def kernel_environment(smoke: bool) -> dict[str, str]:
    """The environment the notebook kernel starts with: this process's, plus our package on the path
    (so the kernel imports the same `cookbook` as the caller) and, for smoke runs, no hub access."""
    env = dict(os.environ)
    source_root = str(Path(cookbook.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if smoke:
        # The tiny model's matmuls are too small to share across threads; on a busy machine two
        # threads per kernel made smoke runs 4-16x slower than one.
        env["OMP_NUM_THREADS"] = "1"
        env["HF_HUB_OFFLINE"] = "1"
        env["HF_DATASETS_OFFLINE"] = "1"
    return env


def run_notebook(
    notebook: str | Path,
    output_dir: str | Path,
    parameters: dict | None = None,
    smoke: bool = False,
    cell_timeout: float | None = None,
) -> dict:
    """Execute one notebook with papermill and return the metrics.json it wrote.

    `cell_timeout`: seconds any one cell may run (None: SMOKE_CELL_TIMEOUT_S for smoke runs, no limit otherwise).
    """
    import nbclient.exceptions
    import papermill

    notebook, output_dir = Path(notebook).resolve(), Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    parameters = {**(parameters or {}), "output_dir": str(output_dir)}
    if smoke:
        parameters["smoke"] = True
    if cell_timeout is None and smoke:
        cell_timeout = SMOKE_CELL_TIMEOUT_S
    saved_environ = dict(os.environ)
    os.environ.update(kernel_environment(smoke))
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output_dir / notebook.name),
            parameters=parameters,
            cwd=str(notebook.parent),
            progress_bar=False,
            kernel_name="python3",
            execution_timeout=cell_timeout,
        )
    except nbclient.exceptions.CellTimeoutError as error:
        raise CellTimeoutError(
            f"{notebook.name}: a cell ran longer than {cell_timeout:g} s and was stopped "
            f"(the executed notebook is {output_dir / notebook.name}); raise --cell-timeout if it is only slow"
        ) from error
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)
    metrics_path = output_dir / "metrics.json"
    if not metrics_path.exists():
        raise RuntimeError(
            f"{notebook.name} ran but wrote no {metrics_path}: its last cells must call RunRecorder.write"
        )
    return json.loads(metrics_path.read_text())


def _parse_parameters(pairs: list[list[str]]) -> dict:
    return {name: yaml.safe_load(value) for name, value in pairs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run")
    parser.add_argument("--all", action="store_true", help="run every notebook of this environment")
    parser.add_argument("--smoke", action="store_true", help="tiny local model and generated data, no downloads")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--output-root", type=Path, default=Path("outputs"))
    parser.add_argument(
        "--cell-timeout",
        type=float,
        help=f"seconds one cell may run before the run fails (default: {SMOKE_CELL_TIMEOUT_S} with --smoke, else none)",
    )
    args = parser.parse_args(argv)

    notebooks = list(args.notebooks)
    if args.all:
        # From the working directory: in the container the package is installed apart from the notebooks.
        notebooks += find_notebooks(Path.cwd(), environment=os.environ.get("PIXI_ENVIRONMENT_NAME"))
    if not notebooks:
        parser.error("name at least one notebook, or pass --all")
    for notebook in notebooks:
        if not notebook.exists():
            parser.error(f"{notebook} does not exist: give a path such as 02-PEFT/lora.ipynb")

    parameters = _parse_parameters(args.parameter)
    timings = []
    for notebook in notebooks:
        started = time.perf_counter()
        metrics = run_notebook(
            notebook, args.output_root / notebook.stem, parameters, smoke=args.smoke, cell_timeout=args.cell_timeout
        )
        seconds = time.perf_counter() - started
        timings.append((notebook, seconds))
        summary = metrics.get("eval", {})
        print(
            f"{notebook}: {seconds:.1f} s, {summary.get('metric', 'eval')} "
            f"{summary.get('before', float('nan')):.4g} -> {summary.get('after', float('nan')):.4g}"
        )
    print(f"{len(timings)} notebook(s) in {sum(s for _, s in timings):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
