"""`terraform init -backend=false && terraform validate` on every synthesized stack, offline."""
from __future__ import annotations

import subprocess

import pytest

from patternwatch_infra.config import ENVIRONMENT_NAMES
from tooling.toolchain import terraform_env


@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_stack_passes_terraform_validate(initialized_stacks, env):
    result = subprocess.run(
        ["terraform", "validate", "-json", "-no-color"],
        cwd=initialized_stacks[env], env=terraform_env(), capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"valid": true' in result.stdout
