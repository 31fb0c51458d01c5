"""The pip path (CI, Colab) is derived from pixi.toml and must not drift from it."""

import copy
import re

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


def test_pixi_specs_that_pip_reads_differently_are_refused():
    with pytest.raises(pixi_pip.ManifestSpecError, match=re.escape("write '0.9.*'")):
        pixi_pip.conda_to_pep440("==0.9.*")  # pixi reads it as exactly 0.9
    assert pixi_pip.pypi_to_pep440("==0.9.*") == "==0.9.*"  # PEP 440: the 0.9 series
    assert pixi_pip.pypi_to_pep440("*") == ""
    with pytest.raises(pixi_pip.ManifestSpecError, match="no PEP 440 equivalent"):
        pixi_pip.conda_to_pep440("1.0|2.0")


def test_a_pypi_series_spec_renders():
    manifest = copy.deepcopy(pixi_pip.load_manifest())
    manifest["feature"]["reasoning"]["pypi-dependencies"]["math-verify"] = "==0.9.*"
    assert "math-verify==0.9.*" in pixi_pip.render_requirements(manifest, "reasoning").splitlines()


def test_pypi_extras_reach_the_requirements():
    manifest = copy.deepcopy(pixi_pip.load_manifest())
    manifest["feature"]["full-finetuning"]["pypi-dependencies"]["deeplake"] = {
        "version": ">=4.3,<5",
        "extras": ["enterprise"],
    }
    assert "deeplake[enterprise]>=4.3,<5" in pixi_pip.render_requirements(manifest, "full-finetuning").splitlines()
    assert pixi_pip.check(manifest)  # and the committed file no longer matches


@pytest.mark.parametrize(
    ("table", "key", "value"),
    [
        (("target", "linux-64-cuda", "dependencies"), "cuda-version", "13.0.*"),
        (("target", "linux-64-cuda", "dependencies"), "pytorch-gpu", ">=2.9,<2.15"),
        (("target", "osx-arm64", "dependencies"), "pytorch", ">=2.9,<2.15"),
        (("target", "linux-aarch64", "dependencies"), "pytorch-cpu", ">=2.10,<2.15"),
    ],
)
def test_changes_on_any_platform_are_drift(table, key, value):
    """Every platform's view is rendered, so editing any target table makes the committed files stale."""
    manifest = copy.deepcopy(pixi_pip.load_manifest())
    section = manifest
    for part in table:
        section = section[part]
    section[key] = value
    assert pixi_pip.check(manifest), f"{'.'.join(table)}.{key} changed unnoticed"


def test_target_tables_replace_the_base_spec():
    """pixi replaces a feature's base spec with a matching target's; it does not intersect the two."""
    manifest = copy.deepcopy(pixi_pip.load_manifest())
    manifest["dependencies"]["pandas"] = ">=2.2"
    manifest["target"]["osx-arm64"]["dependencies"]["pandas"] = ">=1.5,<2"
    lines = pixi_pip.render_requirements(manifest, "peft").splitlines()
    assert 'pandas>=1.5,<2; (sys_platform == "darwin" and platform_machine == "arm64")' in lines
    linux = [line for line in lines if line.startswith("pandas>=2.2")]
    assert linux and "darwin" not in linux[0] and "aarch64" in linux[0]


def test_platform_only_packages_carry_markers():
    lines = pixi_pip.render_requirements(pixi_pip.load_manifest(), "peft").splitlines()
    assert 'bitsandbytes>=0.46,<1; (sys_platform == "linux" and platform_machine == "x86_64")' in lines
    assert "# pixi also installs on linux-64-cuda: cuda-version 12.9.*; python >=3.11,<3.13" in lines


def test_the_header_says_what_pip_does_with_torch():
    text = pixi_pip.render_requirements(pixi_pip.load_manifest(), "peft")
    assert "CUDA build" in text and "nvidia-*" in text
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text
    assert "linux-64-cpu platform)" not in text  # the old header claimed a CPU-only path


def test_cuda_and_cpu_views_that_pip_cannot_tell_apart_are_refused():
    manifest = copy.deepcopy(pixi_pip.load_manifest())
    manifest["target"]["linux-64-cuda"]["dependencies"]["pytorch-gpu"] = ">=2.9,<2.15"
    with pytest.raises(pixi_pip.ManifestSpecError, match="pip cannot tell them apart"):
        pixi_pip.render_requirements(manifest, "peft")


def test_pins_come_from_the_lock_when_there_is_one():
    """The reader of pixi.lock rows: conda packages count under their purl's PyPI name."""
    manifest = pixi_pip.load_manifest()
    conda = "https://conda.anaconda.org/conda-forge/linux-64/pytorch-2.13.0-cpu_generic_py312_h0_0.conda"
    pypi = "https://files.pythonhosted.org/packages/x/deeplake-4.7.4-cp312-cp312-manylinux2014_x86_64.whl"
    rows = [{"conda": conda}, {"pypi": pypi}, {"pypi": "./"}]
    lock = {
        "version": 6,
        "environments": {env: {"packages": {"linux-64-cpu": rows}} for env in manifest["environments"]},
        "packages": [
            {"conda": conda, "purls": ["pkg:pypi/torch?source=hash-mapping"]},
            {"pypi": pypi, "name": "deeplake", "version": "4.7.4"},
            {"pypi": "./", "name": "llm-finetuning-cookbook", "version": "0.1.0"},
        ],
    }
    assert pixi_pip.pins_from_lock(manifest, lock) == {"deeplake": "4.7.4", "torch": "2.13.0"}
    lock["environments"]["peft"]["packages"] = {"p1": rows}
    with pytest.raises(pixi_pip.ManifestSpecError, match="no rows named linux-64-cpu"):
        pixi_pip.pins_from_lock(manifest, lock)
