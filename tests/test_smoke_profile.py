"""Each notebook's smoke profile is one dict, `smoke_overrides`, at the end of its parameters cell: the values the
smoke run uses instead of the real ones, by the same names. `apply_smoke_profile` picks a column; the checks
below keep the two columns of every notebook from drifting apart (parsed with ast, never executed)."""

import ast
import json

import pytest

from cookbook import apply_smoke_profile
from cookbook.config import SMOKE_DATA
from cookbook.errors import CookbookInputError
from cookbook.layout import find_notebooks
from cookbook.smoke.data import GENERATORS

REAL = {"max_steps": 300, "learning_rate": 2e-4, "batch_size": 8, "dataset_config": "main", "seed": 42}
PROFILE = {"smoke_data": "chat", "max_steps": 20, "learning_rate": 1e-2, "batch_size": 8, "dataset_config": None}


def test_smoke_run_takes_the_smoke_column_and_a_real_run_the_real_one():
    assert apply_smoke_profile(REAL, PROFILE, smoke=True) == {
        "max_steps": 20,
        "learning_rate": 1e-2,
        "batch_size": 8,
        "dataset_config": None,
    }
    assert apply_smoke_profile(REAL, PROFILE, smoke=False) == {
        "max_steps": 300,
        "learning_rate": 2e-4,
        "batch_size": 8,
        "dataset_config": "main",
    }
    assert REAL["max_steps"] == 300, "the caller's parameters must not be changed"


def test_the_printed_columns_show_only_what_the_smoke_run_changes(capsys):
    apply_smoke_profile(REAL, PROFILE, smoke=True)
    lines = capsys.readouterr().out.splitlines()
    assert "this run: smoke" in lines[0]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["max_steps", "300", "20"],
        ["learning_rate", "0.0002", "0.01"],
        ["dataset_config", "'main'", "None"],
    ]  # batch_size is the same in both columns; seed is not in the profile
    apply_smoke_profile(REAL, PROFILE, smoke=False)
    assert "this run: real" in capsys.readouterr().out


def test_a_profile_key_that_is_not_a_parameter_is_a_one_line_error():
    with pytest.raises(CookbookInputError, match="'max_step'") as error:
        apply_smoke_profile(REAL, {**PROFILE, "max_step": 5}, smoke=True)
    assert "\n" not in str(error.value)


def cell_sources(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    index = next(i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    setup = next(c for c in cells[index + 1 :] if c["cell_type"] == "code")
    later = [c for c in cells[index + 1 :] if c["cell_type"] == "code"]
    return "".join(cells[index]["source"]), "".join(setup["source"]), ["".join(c["source"]) for c in later]


def names_assigned_under_a_smoke_test(source):
    """Names assigned inside `if smoke:` / `if run.smoke:` blocks: a smoke setting kept outside the profile."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and "smoke" in ast.unparse(node.test):
            for statement in node.body:
                for child in ast.walk(statement):
                    if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                        found.add(child.id)
    return found


NOTEBOOKS = find_notebooks()


def test_every_notebook_is_checked():
    assert len(NOTEBOOKS) >= 8


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_the_smoke_profile_is_a_column_of_the_parameters_cell(notebook):
    parameters_source, setup_source, later_sources = cell_sources(notebook)
    statements = ast.parse(parameters_source).body
    last = statements[-1]
    assert isinstance(last, ast.Assign) and ast.unparse(last.targets[0]) == "smoke_overrides", (
        f"{notebook.name}: the parameters cell must end with smoke_overrides = {{...}}"
    )
    profile = ast.literal_eval(last.value)  # plain values only: the smoke column is data
    parameters = [ast.unparse(s.targets[0]) for s in statements[:-1] if isinstance(s, ast.Assign)]
    assert profile.get(SMOKE_DATA) in GENERATORS, f"{notebook.name}: smoke_data must name generated data"
    settings = [key for key in profile if key != SMOKE_DATA]
    strangers = [key for key in settings if key not in parameters]
    assert not strangers, f"{notebook.name}: smoke_overrides sets {strangers}, which the parameters cell does not"
    assert settings == sorted(settings, key=parameters.index), f"{notebook.name}: keep the parameters cell's order"
    assert {"max_steps", "learning_rate"} <= set(settings), f"{notebook.name}: a smoke run sets its steps and rate"
    # The setup cell applies the profile once, and no later cell keeps a smoke setting of its own.
    assert "globals().update(apply_smoke_profile(globals(), smoke_overrides, smoke))" in setup_source
    assert 'smoke_data=smoke_overrides["smoke_data"]' in setup_source
    for source in later_sources:
        stray = names_assigned_under_a_smoke_test(source) & set(parameters)
        assert not stray, f"{notebook.name}: {sorted(stray)} set under `if smoke`: move them into smoke_overrides"


def test_the_stray_check_sees_a_smoke_setting_outside_the_profile():
    assert names_assigned_under_a_smoke_test("if run.smoke:\n    max_length, batch_size = 96, 4\n") == {
        "max_length",
        "batch_size",
    }
