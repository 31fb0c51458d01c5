"""Shared fixtures, and which tests run in which pixi environment.

Tests of one technique live in `tests/<environment>/` (e.g. `tests/reasoning/`). In a technique
environment (`pixi run -e peft test`, where pixi sets PIXI_ENVIRONMENT_NAME) the other techniques'
folders are not collected, since their packages are not installed there; the `default` environment
and the pip path used by `.ci/run` have every package and run everything.
"""

import os

import pytest

from cookbook.layout import REPO_ROOT, TECHNIQUE_ENVIRONMENTS

_environment = os.environ.get("PIXI_ENVIRONMENT_NAME", "default")
collect_ignore = [env for env in TECHNIQUE_ENVIRONMENTS.values() if _environment not in ("default", env)]


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT
