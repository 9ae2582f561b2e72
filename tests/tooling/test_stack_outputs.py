"""Reading a deployed stack's outputs for one workspace (tooling/stack_outputs.py)."""
from __future__ import annotations

import json
import subprocess

import pytest

from tooling.stack_outputs import StackOutputsError, read_stack_outputs, selected_workspace, workspace_env

OUTPUTS = json.dumps({
    "pattern_detector_function_name": {"sensitive": False, "type": "string", "value": "PatternDetector-dev-pr123"},
    "api_key_value": {"sensitive": True, "type": "string", "value": "secret"},
})


def test_outputs_come_from_terraform_output_json_in_the_stack_directory_and_workspace(tmp_path):
    (tmp_path / "patternwatch-dev").mkdir()
    calls = []

    def fake_run(command, **kwargs):
        calls.append((command, kwargs))
        return subprocess.CompletedProcess(command, 0, stdout=OUTPUTS, stderr="")

    outputs = read_stack_outputs("dev", workspace="pr123", stacks_dir=tmp_path, run=fake_run)

    assert outputs == {"pattern_detector_function_name": "PatternDetector-dev-pr123", "api_key_value": "secret"}
    command, kwargs = calls[0]
    assert command[:3] == ["terraform", "output", "-json"]
    assert kwargs["cwd"] == tmp_path / "patternwatch-dev"
    assert kwargs["env"]["TF_CLI_CONFIG_FILE"].endswith("terraform.rc")
    # Always explicit: a workspace left selected in the directory cannot redirect the command.
    assert kwargs["env"]["TF_WORKSPACE"] == "pr123"
    read_stack_outputs("dev", stacks_dir=tmp_path, run=fake_run)
    assert calls[1][1]["env"]["TF_WORKSPACE"] == "default"


def test_terraform_failures_missing_stacks_and_bad_workspaces_are_explained(tmp_path):
    with pytest.raises(StackOutputsError, match="make deploy ENV=dev.*or pass --app"):
        read_stack_outputs("dev", stacks_dir=tmp_path, hint="or pass --app")
    (tmp_path / "patternwatch-dev").mkdir()
    failing = lambda command, **_: subprocess.CompletedProcess(command, 1, stdout="", stderr="Backend initialization required")  # noqa: E731
    with pytest.raises(StackOutputsError, match=r"(?s)patternwatch-dev \(workspace pr1\).*is it initialised.*Backend initialization required"):
        read_stack_outputs("dev", workspace="pr1", stacks_dir=tmp_path, run=failing)
    with pytest.raises(StackOutputsError, match="did not print JSON"):
        read_stack_outputs("dev", stacks_dir=tmp_path, run=lambda command, **_: subprocess.CompletedProcess(command, 0, stdout="{", stderr=""))
    with pytest.raises(StackOutputsError, match=r"workspace name 'Pr 1' is not allowed"):
        workspace_env("Pr 1")


def test_the_workspace_is_tf_workspace_or_default():
    assert selected_workspace({"TF_WORKSPACE": "pr9"}) == "pr9"
    assert selected_workspace({}) == "default"
