"""A deployed stack's names and ARNs: `terraform output -json` in its directory, for one workspace.

The release, the power tuner and the local platform read names this way, never by spelling them: what
Terraform created in a workspace is what its state says, so `dev` and its workspace `pr123` can never be
mixed up. The workspace is always passed explicitly (TF_WORKSPACE), so a workspace left selected in the
stack directory cannot redirect a command to another copy of the environment.
"""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from patternwatch_infra.workspaces import DEFAULT_WORKSPACE, workspace_name_problem

from .toolchain import ToolchainError, terraform_env

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = PROJECT_ROOT / "cdktf.out" / "stacks"
WORKSPACE_VAR = "TF_WORKSPACE"


class StackOutputsError(RuntimeError):
    """The outputs cannot be read; the message says why and what to do."""


def stack_dir(env_name: str, stacks_dir: Path = STACKS_DIR, stack_name: str | None = None) -> Path:
    """The environment's platform stack, or another of its stacks (`patternwatch-<env>-power-tuner`)."""
    return stacks_dir / (stack_name or f"patternwatch-{env_name}")


def selected_workspace(environ: Mapping[str, str] | None = None) -> str:
    """The workspace a command works on: TF_WORKSPACE when set (as Terraform itself reads it), else `default`."""
    environ = os.environ if environ is None else environ
    return environ.get(WORKSPACE_VAR) or DEFAULT_WORKSPACE


def check_workspace(workspace: str) -> str:
    problem = workspace_name_problem(workspace)
    if problem:
        raise StackOutputsError(problem)
    return workspace


def workspace_env(workspace: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The project's Terraform environment, pinned to `workspace`."""
    return {**terraform_env(None if environ is None else dict(environ)), WORKSPACE_VAR: check_workspace(workspace)}


def read_stack_outputs(
    env_name: str,
    *,
    workspace: str = DEFAULT_WORKSPACE,
    stacks_dir: Path = STACKS_DIR,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
    hint: str = "",
    stack_name: str | None = None,
    deploy_command: str = "make deploy",
) -> dict[str, Any]:
    """`terraform output -json` of the environment's stack (or its stack `stack_name`) in `workspace`, as {name: value}."""
    directory = stack_dir(env_name, stacks_dir, stack_name)
    hint = f", {hint}" if hint else ""
    where = directory.name + ("" if workspace == DEFAULT_WORKSPACE else f" (workspace {workspace})")
    if not directory.is_dir():
        raise StackOutputsError(f"{directory} does not exist: run `{deploy_command} ENV={env_name}` (or `make synth`) first{hint}")
    try:
        result = run(["terraform", "output", "-json", "-no-color"], cwd=directory, env=workspace_env(workspace), capture_output=True, text=True)
    except FileNotFoundError:
        raise StackOutputsError(f"terraform is not on PATH: install Terraform >= 1.10{hint}") from None
    except ToolchainError as error:
        raise StackOutputsError(f"{error}{hint}") from None
    if result.returncode != 0:
        raise StackOutputsError(
            f"`terraform output -json` failed for {where} in {directory} (is it initialised? `terraform -chdir={directory} init`)"
            f"{hint}:\n{result.stderr.strip()}"
        )
    return parse_outputs(result.stdout, source=str(directory))


def parse_outputs(document: str, *, source: str) -> dict[str, Any]:
    try:
        outputs = json.loads(document)
    except json.JSONDecodeError as error:
        raise StackOutputsError(f"`terraform output -json` in {source} did not print JSON: {error}") from None
    return {name: entry.get("value") for name, entry in outputs.items() if isinstance(entry, Mapping)}
