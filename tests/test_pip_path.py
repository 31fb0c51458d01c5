"""The pip path (CI, Colab) is derived from pixi.toml and must not drift from it."""

import copy

import pytest

from tools import pixi_pip  # the repository root is on pytest's pythonpath


@pytest.mark.parametrize(
    ("conda", "pep440"),
    [
        ("*", ""),
        (">=5.0,<6", ">=5.0,<6"),
        ("12.6.*", "==12.6.*"),
        ("2.13.0", "==2.13.0"),
        (">=3.11,<3.13", ">=3.11,<3.13"),
    ],
)
def test_conda_specs_translate_to_pep440(conda, pep440):
    assert pixi_pip.conda_to_pep440(conda) == pep440


def test_committed_requirements_agree_with_pixi_toml():
    assert pixi_pip.check(pixi_pip.load_manifest()) == []


def test_conda_names_map_to_pypi_names():
    requirements = pixi_pip.environment_requirements(pixi_pip.load_manifest(), "peft")
    assert "torch" in requirements and "pytorch-cpu" not in requirements
    assert "python" not in requirements and "cuda-version" not in requirements
    assert "llm-finetuning-cookbook" not in requirements  # the project itself is installed with -e .
    assert "bitsandbytes" in requirements  # from the feature's linux-64 target


def test_lint_environment_has_no_torch():
    assert "torch" not in pixi_pip.environment_requirements(pixi_pip.load_manifest(), "lint")


def test_a_range_that_excludes_the_pin_is_reported():
    manifest = copy.deepcopy(pixi_pip.load_manifest())
    manifest["dependencies"]["transformers"] = ">=99"
    problems = pixi_pip.check(manifest)
    assert any("transformers==" in p and "outside" in p for p in problems)
    assert any("out of date" in p for p in problems)
