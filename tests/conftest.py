import pytest

from cookbook.layout import REPO_ROOT


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT
