"""The uninterrupted smoke run, shared by the end-to-end tests that read it."""

import pytest
from workflow_cli import smoke


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    """A directory where the smoke workflow (config/smoke.yaml) has run to its end."""
    path = tmp_path_factory.mktemp("smoke")
    result = smoke(path)
    assert result.returncode == 0, result.stderr[-5000:]
    return path
