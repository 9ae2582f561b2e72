"""`terraform init -backend=false && terraform validate` on every synthesized stack, offline."""
from __future__ import annotations

import subprocess

import pytest

from patternwatch_infra.config import ENVIRONMENT_NAMES, load_environment
from tooling.toolchain import terraform_env

STACK_NAMES = [stack for env in ENVIRONMENT_NAMES for stack in load_environment(env).stack_names]


def test_every_environment_has_its_platform_stack_and_the_tuner_where_enabled():
    assert STACK_NAMES == [
        "patternwatch-local", "patternwatch-local-power-tuner", "patternwatch-dev", "patternwatch-dev-power-tuner",
        "patternwatch-staging", "patternwatch-staging-power-tuner", "patternwatch-prod",
    ]


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_stack_passes_terraform_validate(initialized_stacks, stack):
    result = subprocess.run(
        ["terraform", "validate", "-json", "-no-color"],
        cwd=initialized_stacks[stack], env=terraform_env(), capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"valid": true' in result.stdout
