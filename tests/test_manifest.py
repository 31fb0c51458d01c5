"""pixi.toml: valid against pixi's own schema, and consistent with the repository around it."""

import hashlib
import json
import tomllib

import jsonschema
import pytest

from cookbook.layout import TECHNIQUE_ENVIRONMENTS

SCHEMA = "tools/schemas/pixi-manifest-v0.77.0.json"


@pytest.fixture(scope="module")
def manifest(repo_root):
    with open(repo_root / "pixi.toml", "rb") as f:
        return tomllib.load(f)


def all_tasks(manifest):
    tasks = dict(manifest.get("tasks", {}))
    for feature in manifest.get("feature", {}).values():
        tasks.update(feature.get("tasks", {}))
    return tasks


def test_manifest_validates_against_pixi_schema(manifest, repo_root):
    schema = json.loads((repo_root / SCHEMA).read_text())
    errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(manifest)]
    assert errors == []


def test_vendored_schema_is_the_recorded_copy(repo_root):
    """tools/schemas/README.md records the schema's sha256, so this runs in every checkout, GitHub included."""
    digest = hashlib.sha256((repo_root / SCHEMA).read_bytes()).hexdigest()
    assert f"sha256 `{digest}`" in (repo_root / "tools/schemas/README.md").read_text()
    shared = repo_root.parent / "shared/reference/pixi/manifest-schema-v0.77.0.json"
    if shared.exists():  # the reference copy beside a development checkout must be the same file
        assert hashlib.sha256(shared.read_bytes()).hexdigest() == digest


def test_every_technique_directory_has_an_environment(manifest, repo_root):
    numbered = sorted(p.name for p in repo_root.glob("0*-*") if p.is_dir())
    assert numbered, "no numbered technique directories found"
    for directory in numbered:
        assert directory in TECHNIQUE_ENVIRONMENTS, f"{directory} is not mapped to an environment in layout.py"
        assert TECHNIQUE_ENVIRONMENTS[directory] in manifest["environments"]


def test_every_environment_names_existing_features(manifest):
    features = set(manifest.get("feature", {}))
    for name, env in manifest["environments"].items():
        listed = env if isinstance(env, list) else env.get("features", [])
        assert set(listed) <= features, f"environment {name} names unknown features {set(listed) - features}"


def test_technique_environments_share_one_solve_group(manifest):
    groups = {manifest["environments"][env].get("solve-group") for env in TECHNIQUE_ENVIRONMENTS.values()}
    assert groups == {manifest["environments"]["default"]["solve-group"]}


def test_tasks_have_descriptions_and_known_dependencies(manifest):
    tasks = all_tasks(manifest)
    for required in ("lab", "test", "lint", "fmt", "strip", "notebook", "smoke"):
        assert required in tasks, f"task {required} is missing"
    for name, task in tasks.items():
        assert task.get("description"), f"task {name} has no description"
        for dependency in task.get("depends-on", []):
            target = dependency if isinstance(dependency, str) else dependency["task"]
            assert target in tasks, f"task {name} depends on unknown task {target}"
        if "default-environment" in task:
            assert task["default-environment"] in manifest["environments"]


def test_cuda_comes_from_conda_not_pip(manifest):
    cuda = manifest["target"]["linux-64-cuda"]["dependencies"]
    assert "pytorch-gpu" in cuda and cuda["cuda-version"].startswith("12.")
    assert "pytorch-cuda" not in json.dumps(manifest)  # the legacy pytorch-channel metapackage
    for feature in [manifest, *manifest.get("feature", {}).values()]:
        assert "torch" not in feature.get("pypi-dependencies", {}), "torch must come from conda, never PyPI"


def environment_tasks(manifest, env):
    """The tasks `pixi run -e env` offers: the default feature's (unless excluded) and its features'."""
    definition = manifest["environments"][env]
    tasks = {} if definition.get("no-default-feature") else dict(manifest.get("tasks", {}))
    for feature in definition.get("features", []):
        tasks.update(manifest["feature"][feature].get("tasks", {}))
    return tasks


def test_every_environment_can_run_its_tasks(manifest):
    """The lint environment has no torch and no notebooks: it must not offer `test` or `smoke`."""
    lint = environment_tasks(manifest, "lint")
    assert {"lint", "fmt", "strip"} <= set(lint) and not {"test", "smoke", "notebook", "lab"} & set(lint)
    for env in TECHNIQUE_ENVIRONMENTS.values():
        assert {"test", "smoke", "notebook", "lab"} <= set(environment_tasks(manifest, env))


def test_default_feature_packages_are_declared_once(manifest):
    """The default feature is in every training environment: a feature repeating one of its packages drifts."""
    base = set(manifest["dependencies"]) | set(manifest.get("pypi-dependencies", {}))
    for name, feature in manifest["feature"].items():
        repeated = base & (set(feature.get("dependencies", {})) | set(feature.get("pypi-dependencies", {})))
        assert not repeated, f"feature {name} repeats {sorted(repeated)} from [dependencies]"


def test_platforms_cover_cuda_cpu_arm64_and_macos(manifest):
    names = {p if isinstance(p, str) else p["name"] for p in manifest["workspace"]["platforms"]}
    assert {"linux-64-cuda", "linux-64-cpu", "linux-aarch64", "osx-arm64"} <= names
    first = manifest["workspace"]["platforms"][0]
    assert isinstance(first, dict) and first.get("cuda"), "the CUDA platform must come first to win on GPU machines"
