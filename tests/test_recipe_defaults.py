"""Every notebook's default run fits a 24 GB GPU by the memory planner, and its prose quotes the planner.

The defaults are read from each notebook's `parameters` cell (parsed with ast, never executed); what the
recipe does with them (technique, precision, optimizer, gradient checkpointing it hard-codes) is written
below per notebook. The planner runs on the model's published config from `benchmarks/model_configs/`.
Each planned run must fit with the planner's margins (1 GiB for CUDA, 10% headroom), and the notebook's
markdown must quote it as "`<planner command>`: <total> GiB" with the figure the command prints.

`python tests/test_recipe_defaults.py` prints the lines every notebook must contain.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from cookbook.layout import REPO_ROOT
from cookbook.perf.memory_plan import main, plan

GPU_GIB = 24
CONFIGS = REPO_ROOT / "benchmarks" / "model_configs"


def parameters(notebook: Path) -> dict:
    """The literal values assigned in the notebook's cell tagged `parameters`."""
    cells = json.loads(notebook.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: needs exactly one cell tagged parameters"
    values = {}
    for node in ast.parse("".join(tagged[0]["source"])).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def markdown(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


@dataclass(frozen=True)
class PlannedRun:
    """One training run of a notebook, as planner options."""

    label: str
    model: str
    options: dict
    fits: bool = True  # False: a counter-example the prose quotes (why the defaults are what they are)

    def command(self) -> str:
        o = self.options
        words = ["pixi run plan", f"--model {self.model}", f"--technique {o['technique']}"]
        if o.get("objective", "sft") != "sft":
            words.append(f"--objective {o['objective']}")
        if o.get("beta"):
            words.append(f"--beta {o['beta']:g}")
        words += [f"--batch-size {o['batch_size']}", f"--seq-len {o['seq_len']}"]
        if o.get("completion_len"):
            words.append(f"--completion-len {o['completion_len']}")
        if o.get("gradient_checkpointing"):
            words.append("--gradient-checkpointing")
        if o.get("optimizer", "adamw") != "adamw":
            words.append(f"--optimizer {o['optimizer']}")
        if o.get("dtype", "bf16") != "bf16":
            words.append(f"--dtype {o['dtype']}")
        if o.get("lora_rank", 16) != 16 and o["technique"] != "full":
            words.append(f"--lora-rank {o['lora_rank']}")
        if o.get("loss", "standard") != "standard":
            words.append(f"--loss {o['loss']}")
        return " ".join([*words, f"--gpu-gib {GPU_GIB}"])

    def config_path(self) -> Path:
        name = self.model.split("/")[-1].removesuffix("-Instruct")  # an instruct model has its base's shape
        path = CONFIGS / f"{name}.json"
        assert path.exists(), f"{self.model}: add its config.json (shape fields only) to benchmarks/model_configs/"
        return path

    def printed(self) -> str:
        """What the documented command prints, run on the model's config from benchmarks/model_configs/."""
        argv = shlex.split(self.command().removeprefix("pixi run plan "))
        argv[argv.index("--model") + 1] = str(self.config_path())
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(argv)
        return out.getvalue()

    def quote(self) -> str:
        total = re.search(r"^\s+total\s+([\d.]+) GiB$", self.printed(), re.MULTILINE)[1]
        return f"`{self.command()}`: {total} GiB"


def loss(p: dict) -> str:
    return "chunked" if p.get("use_liger_kernel") else "standard"


def full_finetuning(p):
    # fp32 model under Trainer(bf16=True): bf16 mixed precision; blocks of block_size tokens
    options = dict(technique="full", dtype="bf16-mixed", batch_size=p["batch_size"], seq_len=p["block_size"])
    return [PlannedRun("training", p["model_name"], {**options, "gradient_checkpointing": p["gradient_checkpointing"]})]


def adapter_lifecycle(p):
    # the qlora.ipynb recipe: NF4 base, checkpointing and paged 8-bit AdamW hard-coded
    options = dict(technique="qlora", optimizer="paged-adamw-8bit", gradient_checkpointing=True)
    sizes = dict(batch_size=p["batch_size"], seq_len=p["max_length"], lora_rank=p["lora_rank"])
    return [PlannedRun("QLoRA adapter", p["model_name"], {**options, **sizes})]


def lora(p):
    options = dict(technique="lora", batch_size=p["batch_size"], seq_len=p["max_length"], lora_rank=p["lora_rank"])
    options |= dict(gradient_checkpointing=p["gradient_checkpointing"], loss=loss(p))
    unaccumulated = {**options, "batch_size": p["batch_size"] * p["gradient_accumulation_steps"]}
    return [
        PlannedRun("training", p["model_name"], options),
        PlannedRun("the same sequences per step in one micro-batch", p["model_name"], unaccumulated, fits=False),
    ]


def memory_comparison(p):
    # the three runs, one after the other, all with gradient checkpointing (hard-coded)
    sizes = dict(batch_size=p["batch_size"], seq_len=p["max_length"], gradient_checkpointing=True)
    return [
        PlannedRun("full", p["model_name"], {**sizes, "technique": "full"}),
        PlannedRun("LoRA", p["model_name"], {**sizes, "technique": "lora", "lora_rank": p["lora_rank"]}),
        PlannedRun(
            "QLoRA",
            p["model_name"],
            {**sizes, "technique": "qlora", "optimizer": "paged-adamw-8bit", "lora_rank": p["lora_rank"]},
        ),
    ]


def qlora(p):
    options = dict(technique="qlora", optimizer="paged-adamw-8bit", batch_size=p["batch_size"])
    options |= dict(
        seq_len=p["max_length"], lora_rank=p["lora_rank"], gradient_checkpointing=p["gradient_checkpointing"]
    )
    return [PlannedRun("training", p["model_name"], options)]


def full_weights(use_lora: bool) -> dict:
    """Full-weight training loads fp32 master weights and trains under bf16 autocast
    (`DeviceChoice.trainable_dtype`): the planner's bf16-mixed; a LoRA base stays frozen in bf16."""
    return dict(technique="lora", dtype="bf16") if use_lora else dict(technique="full", dtype="bf16-mixed")


def sft(p):
    options = dict(full_weights(p["use_lora"]), batch_size=p["batch_size"], seq_len=p["max_length"])
    options |= dict(gradient_checkpointing=p["gradient_checkpointing"], lora_rank=p["lora_rank"], loss=loss(p))
    unaccumulated = {**options, "batch_size": p["batch_size"] * p["gradient_accumulation_steps"]}
    return [
        PlannedRun("training", p["model_name"], options),
        PlannedRun("the same sequences per step in one micro-batch", p["model_name"], unaccumulated, fits=False),
    ]


def dpo(p):
    # LoRA on the frozen bf16 base, which with the adapter disabled is the reference (no copy)
    options = dict(technique="lora", objective="dpo", batch_size=p["batch_size"], seq_len=p["max_length"])
    options |= dict(gradient_checkpointing=p["gradient_checkpointing"], lora_rank=p["lora_rank"])
    runs = [PlannedRun("DPO", p["model_name"], options)]
    if p["sft_steps"]:  # the optional warm start: full SFT on 2 x batch_size chosen replies, bf16 weights
        warm = dict(technique="full", batch_size=2 * p["batch_size"], seq_len=p["max_length"])
        runs.append(
            PlannedRun(
                "SFT warm start", p["model_name"], {**warm, "gradient_checkpointing": p["gradient_checkpointing"]}
            )
        )
    return runs


# GSM8K questions with the system prompt and the chat template stay under this many tokens; TRL 1.x no longer
# truncates prompts, so the plan assumes it (the GRPO notebook's prose says so).
GRPO_PROMPT_TOKENS = 256


def grpo(p):
    # the model is loaded once, in fp32 (`DeviceChoice.trainable_dtype`), for the warm start and for GRPO
    warm_start = dict(full_weights(False), batch_size=p["sft_batch_size"], seq_len=p["sft_max_length"])
    warm_start |= dict(gradient_checkpointing=p["gradient_checkpointing"], loss=loss(p))
    # with use_lora the adapter sits on that fp32 base: planned in fp32 (the planner models autocast for full only)
    rl = dict(technique="lora", dtype="fp32") if p["use_lora"] else full_weights(False)
    rl |= dict(objective="grpo", beta=p["beta"])
    length = dict(seq_len=GRPO_PROMPT_TOKENS + p["max_completion_length"], completion_len=p["max_completion_length"])
    rl |= dict(batch_size=p["batch_size"], **length)
    rl |= dict(gradient_checkpointing=p["gradient_checkpointing"], lora_rank=p["lora_rank"], loss=loss(p))
    return [PlannedRun("warm start", p["model_name"], warm_start), PlannedRun("GRPO", p["model_name"], rl)]


RECIPES = {
    "01-Full-Fine-Tuning/full_finetuning.ipynb": full_finetuning,
    "02-PEFT/adapter_lifecycle.ipynb": adapter_lifecycle,
    "02-PEFT/lora.ipynb": lora,
    "02-PEFT/memory_comparison.ipynb": memory_comparison,
    "02-PEFT/qlora.ipynb": qlora,
    "03-Instruction-Tuning/dpo.ipynb": dpo,
    "03-Instruction-Tuning/sft.ipynb": sft,
    "04-Reasoning-Tuning/grpo.ipynb": grpo,
}


def planned_runs(relative: str) -> list[PlannedRun]:
    return RECIPES[relative](parameters(REPO_ROOT / relative))


def test_every_notebook_is_planned():
    found = {str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob("0*/*.ipynb")}
    assert found == set(RECIPES), "a notebook was added or renamed: say in RECIPES how it trains"


@pytest.mark.parametrize("relative", sorted(RECIPES))
def test_default_run_fits_a_24gb_gpu(relative):
    for run in planned_runs(relative):
        printed = run.printed()
        assert (f"fits on a {GPU_GIB} GiB GPU" in printed) == run.fits, (
            f"{relative} ({run.label}): the defaults do not fit a {GPU_GIB} GB GPU by the planner; "
            f"change batch x accumulation, max length or gradient checkpointing:\n{printed}"
            if run.fits
            else f"{relative} ({run.label}): the counter-example the prose quotes now fits; rewrite the prose"
        )


@pytest.mark.parametrize("relative", sorted(RECIPES))
def test_prose_quotes_the_planner_for_the_defaults(relative):
    text = markdown(REPO_ROOT / relative)
    for run in planned_runs(relative):
        assert run.quote() in text, f"{relative} ({run.label}): the markdown must say {run.quote()}"


def test_the_check_catches_the_old_lora_default():
    """lora.ipynb's former defaults (batch 8 x 1024, no checkpointing) do not fit: 29.96 GiB."""
    run = PlannedRun("old", "Qwen/Qwen2.5-0.5B", dict(technique="lora", batch_size=8, seq_len=1024))
    assert "does NOT fit" in run.printed()
    assert run.quote().endswith(": 29.96 GiB")
    shape = str(run.config_path())
    assert plan(shape, "lora", batch_size=8, seq_len=1024, gradient_checkpointing=True).fits(GPU_GIB)


if __name__ == "__main__":
    for relative in sorted(RECIPES):
        for run in planned_runs(relative):
            print(f"{relative} ({run.label}): {run.quote()}")
