"""Every planner table in a README is exactly what its documented `benchmarks/plan_table.py` command prints,
and every technique README has a "Will it fit?" section with one."""

import importlib.util
import re
import shlex

import pytest

from cookbook.layout import REPO_ROOT

COMMAND = re.compile(r"python benchmarks/plan_table\.py([^`\n]*)")
TECHNIQUE_READMES = ["01-Full-Fine-Tuning", "02-PEFT", "03-Instruction-Tuning", "04-Reasoning-Tuning"]


def plan_table():
    spec = importlib.util.spec_from_file_location("plan_table", REPO_ROOT / "benchmarks" / "plan_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("folder", [*TECHNIQUE_READMES, "benchmarks"])
def test_readme_tables_are_what_the_documented_command_prints(folder):
    text = (REPO_ROOT / folder / "README.md").read_text()
    commands = COMMAND.findall(text)
    assert commands, f"{folder}/README.md documents no plan_table.py command"
    module = plan_table()
    for arguments in commands:
        printed = module.tables(module.parse(shlex.split(arguments)))
        assert printed.count("| model |") >= 1
        assert printed in text, f"{folder}/README.md: regenerate with python benchmarks/plan_table.py{arguments}"


@pytest.mark.parametrize("folder", TECHNIQUE_READMES)
def test_technique_readmes_say_how_to_ask_the_planner(folder):
    text = (REPO_ROOT / folder / "README.md").read_text()
    assert "## Will it fit?" in text
    assert re.search(r"pixi run plan --model \S+ --technique \S+ .*--batch-size \d+ .*--seq-len \d+", text)
    assert "not yet checked on a GPU" in text and "benchmarks/check_planner_gpu.py" in text


def test_the_check_would_catch_a_stale_table():
    module = plan_table()
    table = module.tables(module.parse(["--technique", "full", "--models", "Qwen2.5-0.5B"]))
    longer = module.tables(module.parse(["--technique", "full", "--models", "Qwen2.5-0.5B", "--seq-len", "2048"]))
    assert table != longer
    mixed = module.tables(module.parse(["--technique", "full", "--dtype", "bf16-mixed", "--gpus", "8"]))
    assert "bf16 weight copies" in mixed and "per GPU, FSDP x8, GC" in mixed
