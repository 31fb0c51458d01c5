"""A model card next to every saved model or adapter, written from the run's metrics.json, and publishing.

The card is the README.md the Hugging Face Hub shows: YAML front matter (base model, datasets, library,
tags) that the Hub indexes, then what was trained, the before/after figures of the run exactly as
metrics.json holds them, and the exact environment it ran in: the pixi environment and the sha256 of
pixi.lock when the run had them, else the versions of the packages installed.

Publishing is off by default. `push_folder` reads the token from the `HF_TOKEN` environment variable
only (never from a notebook parameter, so it cannot end up in a committed notebook or its outputs) and
creates a private repository unless told otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, ModelCardData

from cookbook.errors import CookbookInputError

PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "bitsandbytes", "tensorboard")
TRL_TECHNIQUES = ("sft", "dpo", "grpo")
# Files a published folder never needs: optimizer state of intermediate checkpoints, tracker logs.
NOT_PUBLISHED = ["checkpoint-*/**", "runs/**", "*.pt", "*.pth"]


def _project_root() -> Path | None:
    """The pixi workspace the run belongs to: PIXI_PROJECT_ROOT, else the nearest folder above with a pixi.toml."""
    if os.environ.get("PIXI_PROJECT_ROOT"):
        return Path(os.environ["PIXI_PROJECT_ROOT"])
    for folder in [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]:
        if (folder / "pixi.toml").exists():
            return folder
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def environment_facts() -> dict:
    """What reproduces this run: pixi environment + lock hash when there is a pixi.lock, always the Python and
    package versions installed (and the pip path's pins file hash when there is one)."""
    facts = {"python": platform.python_version(), "packages": {}}
    for package in PACKAGES:
        try:
            facts["packages"][package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    root = _project_root()
    if root and (root / "pixi.lock").exists():
        facts["pixi_environment"] = os.environ.get("PIXI_ENVIRONMENT_NAME", "default")
        facts["pixi_lock_sha256"] = _sha256(root / "pixi.lock")
    elif root and (root / "requirements" / "pins.txt").exists():
        facts["pip_pins_sha256"] = _sha256(root / "requirements" / "pins.txt")
    return facts


def _is_hub_id(name: str) -> bool:
    return not Path(name).exists() and name.count("/") == 1 and not name.startswith((".", "/", "~"))


def _figure(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def card_text(metrics: dict, base_model: str, dataset: str, title: str, adapter: bool, environment: dict) -> ModelCard:
    """The card for one saved folder; every figure comes from `metrics` (a metrics.json) or `environment`."""
    technique = metrics.get("technique", "fine-tuning")
    data = ModelCardData(
        base_model=base_model if _is_hub_id(base_model) else None,
        datasets=[dataset] if _is_hub_id(dataset) else None,
        library_name="peft" if adapter else "transformers",
        pipeline_tag="text-generation",
        tags=list(
            dict.fromkeys(
                ["llm-finetuning-cookbook", technique, "trl" if technique in TRL_TECHNIQUES else "transformers"]
                + (["lora"] if adapter else [])
            )
        ),
    )
    result = metrics.get("eval", {})
    better = "higher" if result.get("higher_is_better") else "lower"
    lines = [
        f"# {title}",
        "",
        f"A {'LoRA adapter' if adapter else 'model'} trained with **{technique}** by the LLM Fine-Tuning Cookbook.",
        "",
        "## Training",
        "| | |",
        "| --- | --- |",
        f"| base model | `{base_model}` |",
        f"| data | `{dataset}` |",
        f"| technique | {technique} |",
        f"| device | {metrics.get('device', 'unknown')} |",
        f"| training loss, first and last logged step | {_figure(metrics.get('train_loss_start'))} -> "
        f"{_figure(metrics.get('train_loss_end'))} |",
        f"| tokens per second | {_figure(metrics.get('tokens_per_s'))} |",
        f"| peak memory (bytes, {metrics.get('peak_memory_kind', '?')}) | {_figure(metrics.get('peak_memory_bytes'))} |",
        f"| wall time (s) | {_figure(metrics.get('wall_time_s'))} |",
        "",
        "## Evaluation on held-out data",
        f"| metric | before training | after training | better is |\n| --- | --- | --- | --- |\n"
        f"| {result.get('metric', '?')} | {_figure(result.get('before'))} | {_figure(result.get('after'))} | {better} |",
        "",
        "The full figures of the run are in `metrics.json` beside this card.",
        "",
        "## Environment",
    ]
    if "pixi_lock_sha256" in environment:
        lines.append(
            f"pixi environment `{environment['pixi_environment']}`, pixi.lock sha256 `{environment['pixi_lock_sha256']}`."
        )
    elif "pip_pins_sha256" in environment:
        lines.append(f"pip path, requirements/pins.txt sha256 `{environment['pip_pins_sha256']}`.")
    lines.append(
        f"Python {environment['python']}; " + ", ".join(f"{k}=={v}" for k, v in environment["packages"].items())
    )
    lines += ["", "## Load it", "```python"]
    if adapter:
        lines += [
            "from peft import AutoPeftModelForCausalLM",
            "from transformers import AutoTokenizer",
            "",
            'model = AutoPeftModelForCausalLM.from_pretrained("<this folder or repo>")',
        ]
    else:
        lines += [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            'model = AutoModelForCausalLM.from_pretrained("<this folder or repo>")',
        ]
    lines += ['tokenizer = AutoTokenizer.from_pretrained("<this folder or repo>")', "```", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def write_model_card(
    folder: str | Path,
    metrics_path: str | Path,
    base_model: str,
    dataset: str,
    title: str | None = None,
) -> Path:
    """Write `<folder>/README.md` (and a copy of metrics.json) for a saved model or adapter; return the card's path."""
    folder, metrics_path = Path(folder), Path(metrics_path)
    if not folder.is_dir():
        raise CookbookInputError(f"{folder} does not exist: save the model or adapter there before writing its card")
    metrics = json.loads(metrics_path.read_text())
    adapter = (folder / "adapter_config.json").exists()
    card = card_text(
        metrics,
        base_model,
        dataset,
        title or f"{metrics.get('technique', 'fine-tuned')} {folder.name}",
        adapter,
        environment_facts(),
    )
    card.save(folder / "README.md")
    (folder / "metrics.json").write_text(metrics_path.read_text())
    return folder / "README.md"


def check_publishing(push_to_hub: bool, hub_model_id: str) -> None:
    """Stop before training when publishing is asked for but cannot happen."""
    if not push_to_hub:
        return
    if not hub_model_id or hub_model_id.count("/") != 1:
        raise CookbookInputError(
            f"push_to_hub=True needs hub_model_id='<user or org>/<name>', got {hub_model_id!r}: set it in the parameters"
        )
    if not os.environ.get("HF_TOKEN"):
        raise CookbookInputError(
            "push_to_hub=True needs a write token in the HF_TOKEN environment variable (never in the notebook): "
            "export HF_TOKEN=... and restart the kernel"
        )


def push_folder(folder: str | Path, hub_model_id: str, private: bool = True) -> str:
    """Upload a saved folder (model or adapter, its tokenizer and card) to the Hub; return the repository URL."""
    check_publishing(True, hub_model_id)
    api = HfApi(token=os.environ["HF_TOKEN"])
    url = api.create_repo(hub_model_id, private=private, exist_ok=True)
    api.upload_folder(
        repo_id=hub_model_id,
        folder_path=str(folder),
        ignore_patterns=NOT_PUBLISHED,
        commit_message="Upload from the LLM Fine-Tuning Cookbook",
    )
    return str(url)
