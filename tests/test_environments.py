"""Each technique environment's tests import only what that environment installs.

The GitHub matrix runs `pixi run -e <environment> test`, which cannot run here. So for every technique
environment we collect the tests (which imports every test module and the cookbook modules they use)
in a subprocess where the packages of pixi.toml that this environment lacks cannot be imported.
"""

import os
import subprocess
import sys

import pytest

from cookbook.layout import REPO_ROOT, TECHNIQUE_ENVIRONMENTS
from tools import pixi_pip  # the repository root is on pytest's pythonpath

COLLECT = """
import sys
for name in sys.argv[1:]:
    sys.modules[name] = None  # `import name` now fails, as in an environment without it
import pytest
sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "tests"]))
"""


def missing_imports(environment: str) -> list[str]:
    manifest = pixi_pip.load_manifest()
    everything = pixi_pip.environment_requirements(manifest, "default")
    present = pixi_pip.environment_requirements(manifest, environment)
    return sorted(name.replace("-", "_") for name in set(everything) - set(present) if name != "torch")


@pytest.mark.parametrize("environment", sorted(TECHNIQUE_ENVIRONMENTS.values()))
def test_tests_collect_without_other_techniques_packages(environment):
    blocked = missing_imports(environment)
    assert blocked, f"{environment} should lack some technique's packages"
    env = {**os.environ, "PIXI_ENVIRONMENT_NAME": environment}
    result = subprocess.run(
        [sys.executable, "-c", COLLECT, *blocked], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, f"collecting in {environment} without {blocked} failed:\n{result.stdout[-3000:]}"
