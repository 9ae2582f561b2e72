"""Synthesize every environment once per test session (jsii start-up costs ~12 s a process): the platform
stacks, and the power tuner's stacks where the environment enables it, as main.py does."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cdktf import App

from patternwatch_infra.config import ENVIRONMENT_NAMES, load_environment
from patternwatch_infra.power_tuner import power_tuner_stack
from patternwatch_infra.stack import PatternWatchStack
from tooling.toolchain import AWS_PROVIDER_VERSION, terraform_env

def _synth(outdir: Path, configs) -> dict[str, dict]:
    """Every synthesized stack's cdk.tf.json, by stack name."""
    app = App(outdir=str(outdir))
    for config in configs:
        power_tuner_stack(app, PatternWatchStack(app, config))
    app.synth()
    return {d.name: json.loads((d / "cdk.tf.json").read_text()) for d in sorted((outdir / "stacks").iterdir())}


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cdktf.out")


@pytest.fixture(scope="session")
def all_stacks(synth_dir) -> dict[str, dict]:
    """Every synthesized stack (platforms and tuners), by stack name."""
    return _synth(synth_dir, [load_environment(name) for name in ENVIRONMENT_NAMES])


@pytest.fixture(scope="session")
def stacks(all_stacks) -> dict[str, dict]:
    """The platform stack of every environment, by environment name."""
    return {name: all_stacks[f"patternwatch-{name}"] for name in ENVIRONMENT_NAMES}


@pytest.fixture(scope="session")
def tuner_stacks(all_stacks) -> dict[str, dict]:
    """The power tuner's stack of every environment that has one, by environment name."""
    return {name: all_stacks[f"patternwatch-{name}-power-tuner"] for name in ENVIRONMENT_NAMES if f"patternwatch-{name}-power-tuner" in all_stacks}


def _stack_of(stacks_fixture: str, environment: str):
    """A session fixture for one environment's stack, so a test names the stack it reads (`dev`, `dev_tuner`)."""
    @pytest.fixture(scope="session")
    def one_stack(request) -> dict:
        return request.getfixturevalue(stacks_fixture)[environment]
    return one_stack


local, dev, prod = (_stack_of("stacks", environment) for environment in ("local", "dev", "prod"))
dev_tuner = _stack_of("tuner_stacks", "dev")


@pytest.fixture(scope="session")
def initialized_stacks(all_stacks, synth_dir) -> dict[str, Path]:
    """Each stack directory after `terraform init -backend=false` (offline, through the project's CLI config), by stack name."""
    dirs = {}
    for name in all_stacks:
        stack_dir = synth_dir / "stacks" / name
        result = subprocess.run(
            ["terraform", "init", "-backend=false", "-input=false", "-no-color"],
            cwd=stack_dir, env=terraform_env(), capture_output=True, text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        dirs[name] = stack_dir
    return dirs


@pytest.fixture(scope="session")
def provider_schema(tmp_path_factory) -> dict:
    """The AWS provider's own schema: the authority on which resource types accept tags."""
    workdir = tmp_path_factory.mktemp("provider-schema")
    (workdir / "main.tf.json").write_text(json.dumps(
        {"terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": AWS_PROVIDER_VERSION}}}}
    ))
    env = terraform_env()
    for command in (["terraform", "init", "-input=false", "-no-color"], ["terraform", "providers", "schema", "-json"]):
        result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    schemas = json.loads(result.stdout)["provider_schemas"]
    return schemas["registry.terraform.io/hashicorp/aws"]
