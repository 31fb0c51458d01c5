"""Rules for the files only Docker and GitHub run (container/, .devcontainer/, .github/), checked offline.

Each test names the failure it keeps from coming back; .ci/lint-infra.sh runs the linters.
"""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from tools import pixi_manifest, pixi_pip

WORKFLOWS = ".github/workflows"


@pytest.fixture(scope="module")
def dockerfile(repo_root):
    return (repo_root / "container/Dockerfile").read_text()


def workflow(repo_root, name):
    return yaml.safe_load((repo_root / WORKFLOWS / name).read_text())


def test_base_images_are_literal_so_dependabot_can_update_them(dockerfile):
    images = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert images, "no FROM line"
    for image in images:
        assert "$" not in image, f"FROM {image}: Dependabot cannot update an image named through a build argument"


def test_runtime_image_has_a_c_compiler_for_triton(dockerfile):
    runtime = dockerfile.split(" AS runtime", 1)[1]
    install = re.search(r"apt-get install[^\n]*(\\\n[^\n]*)*", runtime)
    assert install and re.search(r"\bgcc\b", install.group(0)) and "libc6-dev" in install.group(0)


def test_dev_container_caches_live_where_the_uid_update_reaches(repo_root, dockerfile):
    """updateRemoteUserUID re-owns the user's home only: a cache volume elsewhere stays owned by UID 1000."""
    config = json.loads((repo_root / ".devcontainer/devcontainer.json").read_text())
    if not config.get("updateRemoteUserUID", True):
        return
    home = f"/home/{config['remoteUser']}/"
    for mount in config.get("mounts", []):
        target = dict(part.split("=", 1) for part in mount.split(","))["target"]
        assert target.startswith(home), f"mount {target} is outside {home}"
        assert target in dockerfile, f"the image must create {target} so that the user owns it"
    assert config["containerEnv"]["HF_HOME"].startswith(home)


def test_pull_requests_never_get_packages_write(repo_root):
    for path in sorted((repo_root / WORKFLOWS).glob("*.yml")):
        spec = yaml.safe_load(path.read_text())
        triggers = spec.get(True, spec.get("on", {}))  # YAML reads the bare key `on` as True
        if "pull_request" not in triggers and "pull_request_target" not in triggers:
            continue
        assert spec.get("permissions") == {}, f"{path.name}: set `permissions: {{}}` at the top"
        for name, job in spec["jobs"].items():
            if (job.get("permissions") or {}).get("packages") == "write":
                assert "github.event_name != 'pull_request'" in job.get("if", ""), f"{path.name}: job {name}"


def test_called_workflows_take_their_callers_permissions(repo_root):
    """A nested job asking for more than its caller grants (packages: write from a pull request job)
    makes the run invalid; called workflows leave permissions to the calling jobs."""
    for path in sorted((repo_root / WORKFLOWS).glob("*.yml")):
        spec = yaml.safe_load(path.read_text())
        if set(spec.get(True, {})) != {"workflow_call"}:
            continue
        assert "permissions" not in spec, path.name
        for name, job in spec["jobs"].items():
            assert "permissions" not in job, f"{path.name}: job {name}"


def test_pixi_exec_specs_use_the_space_form(repo_root):
    """pixi's lenient parser reads `name==0.3.*` as exactly 0.3.0; `name 0.3.*` means the series."""
    for path in sorted((repo_root / WORKFLOWS).glob("*.yml")):
        for spec in re.findall(r'--spec\s+"([^"]+)"', path.read_text()):
            assert not re.search(r"==[^,]*\*", spec), f"{path.name}: --spec {spec!r}"
    assert '--spec "pixi-diff-to-markdown 0.3.*"' in (repo_root / WORKFLOWS / "lockfile.yml").read_text()


def test_the_lockfile_pull_request_runs_ci(repo_root):
    """A pull request opened with GITHUB_TOKEN triggers no workflow: the job dispatches ci.yml itself."""
    spec = workflow(repo_root, "lockfile.yml")
    job = spec["jobs"]["update"]
    assert job["permissions"].get("actions") == "write"
    runs = " ".join(step.get("run", "") for step in job["steps"])
    assert "gh workflow run ci.yml --ref pixi/update-lock" in runs
    ci_triggers = workflow(repo_root, "ci.yml")[True]
    assert "workflow_dispatch" in ci_triggers
    assert "first" in runs and "pixi lock" in runs  # the first run creates the lock and says so


def test_ci_runs_the_notebook_contract_in_every_environment(repo_root):
    jobs = workflow(repo_root, "ci.yml")["jobs"]
    steps = " ".join(step.get("run", "") for step in jobs["test"]["steps"])
    assert 'pixi run -e "$PIXI_ENV" test' in steps and "not notebook" not in steps
    assert set(jobs["test"]["strategy"]["matrix"]["environment"]) == {
        "full-finetuning",
        "peft",
        "instruction-tuning",
        "reasoning",
    }


def test_ci_installs_the_locked_peft_environment_on_macos(repo_root):
    jobs = workflow(repo_root, "ci.yml")["jobs"]
    macos = [job for job in jobs.values() if str(job.get("runs-on", "")).startswith("macos")]
    assert macos, "no macOS job"
    setup = [s for s in macos[0]["steps"] if str(s.get("uses", "")).startswith("prefix-dev/setup-pixi@")]
    assert setup and setup[0]["with"]["locked"] is True and setup[0]["with"]["environments"] == "peft"
    assert any("test" in s.get("run", "") for s in macos[0]["steps"])


def test_actions_are_pinned_by_commit_sha(repo_root):
    for path in sorted((repo_root / WORKFLOWS).glob("*.yml")):
        for action in re.findall(r"uses:\s*(\S+)", path.read_text()):
            if action.startswith("./"):
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), f"{path.name}: {action}"


COLLECT_WITHOUT = """
import sys
for name in sys.argv[1].split():
    sys.modules[name] = None  # `import name` now fails, as on a platform without it
import pytest
sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[2:]]))
"""


def test_macos_leg_collects_without_the_linux_only_packages(repo_root):
    """The macOS job's test selection must not import what osx-arm64 lacks (bitsandbytes: linux-64 only)."""
    job = next(j for j in workflow(repo_root, "ci.yml")["jobs"].values() if str(j["runs-on"]).startswith("macos"))
    command = next(s["run"] for s in job["steps"] if "pixi run" in s.get("run", ""))
    words = shlex.split(command)
    env_name = words[words.index("-e") + 1]
    pytest_args = words[words.index("test") + 1 :]
    manifest = pixi_manifest.load()
    platforms = pixi_manifest.platforms(manifest)
    linux = pixi_pip.platform_requirements(manifest, env_name, platforms["linux-64-cpu"])
    macos = pixi_pip.platform_requirements(manifest, env_name, platforms["osx-arm64"])
    missing = sorted(name.replace("-", "_") for name in set(linux) - set(macos))
    assert missing == ["bitsandbytes"]
    result = subprocess.run(
        [sys.executable, "-c", COLLECT_WITHOUT, " ".join(missing), *pytest_args],
        cwd=repo_root,
        env={**os.environ, "PIXI_ENVIRONMENT_NAME": env_name},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"collecting {pytest_args} without {missing} failed:\n{result.stdout[-3000:]}"
