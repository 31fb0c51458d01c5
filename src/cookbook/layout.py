"""Where the recipes live, and which pixi environment each technique directory runs in."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

TECHNIQUE_ENVIRONMENTS = {
    "01-Full-Fine-Tuning": "full-finetuning",
    "02-PEFT": "peft",
    "03-Instruction-Tuning": "instruction-tuning",
    "04-Reasoning-Tuning": "reasoning",
}


def find_notebooks(root: str | Path = REPO_ROOT, environment: str | None = None) -> list[Path]:
    """Every recipe notebook under the numbered directories; only one technique's for a technique
    environment (the `default` environment has every technique's packages and runs them all)."""
    root = Path(root)
    notebooks = []
    for directory, env in TECHNIQUE_ENVIRONMENTS.items():
        if environment in (None, "default", env):
            notebooks.extend(
                p for p in sorted((root / directory).glob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts
            )
    return notebooks
