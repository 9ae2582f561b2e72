"""What a second `make demo` may skip: the synth when no input changed, the apply when the deployment is current."""
from __future__ import annotations

import json
import os

import pytest

from tooling import local_platform


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project tree with every synth input, and a synthesized local stack naming one asset."""
    for name in local_platform.SYNTH_INPUTS:
        path = tmp_path / name
        if "." in name:
            path.write_text(f"{name}\n")
        else:
            (path / "pkg").mkdir(parents=True)
            (path / "pkg" / "module.py").write_text("VALUE = 1\n")
    stack_dir = tmp_path / "cdktf.out" / "stacks" / "patternwatch-local"
    (stack_dir / "assets" / "code").mkdir(parents=True)
    (stack_dir / "assets" / "code" / "fn.zip").write_bytes(b"zip")
    (stack_dir / "cdk.tf.json").write_text(json.dumps({"resource": {"filename": "assets/code/fn.zip"}}))
    monkeypatch.setattr(local_platform, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(local_platform, "STACK_DIR", stack_dir)
    monkeypatch.setattr(local_platform, "SYNTH_STAMP", tmp_path / "cdktf.out" / "stamp.json")
    for name in [n for n in os.environ if n.startswith("PATTERNWATCH_")]:
        monkeypatch.delenv(name)
    return tmp_path


def stamp(project) -> str:
    """Record a synth of the current inputs, as `synth()` does after main.py succeeds."""
    inputs = local_platform.synth_inputs_digest()
    local_platform.SYNTH_STAMP.write_text(json.dumps({"inputs": inputs, "stacks": local_platform._stack_digests()}))
    return inputs


def test_the_synth_is_reused_only_while_every_input_and_its_output_are_unchanged(project, monkeypatch):
    inputs = stamp(project)
    assert local_platform._synthesized_for(inputs)

    (project / "envs" / "pkg" / "module.py").write_text("VALUE = 2\n")
    assert local_platform.synth_inputs_digest() != inputs
    (project / "envs" / "pkg" / "module.py").write_text("VALUE = 1\n")
    assert local_platform.synth_inputs_digest() == inputs

    (project / "lambda_src" / "pkg" / "__pycache__").mkdir()
    (project / "lambda_src" / "pkg" / "__pycache__" / "module.cpython-311.pyc").write_bytes(b"cache")
    assert local_platform.synth_inputs_digest() == inputs  # caches are not inputs

    monkeypatch.setenv("PATTERNWATCH_EMULATOR_PORT", "5099")  # the endpoint is in the synthesized JSON
    assert local_platform.synth_inputs_digest() != inputs


def test_a_stack_rewritten_by_another_synth_or_a_missing_asset_means_a_new_synth(project):
    inputs = stamp(project)
    stack = local_platform.STACK_DIR / "cdk.tf.json"
    stack.write_text(stack.read_text() + " ")  # e.g. `make synth` with another emulator port
    assert not local_platform._synthesized_for(inputs)

    inputs = stamp(project)
    (local_platform.STACK_DIR / "assets" / "code" / "fn.zip").unlink()
    assert not local_platform._synthesized_for(inputs)

    local_platform.SYNTH_STAMP.write_text("not json")
    assert not local_platform._synthesized_for(inputs)


def test_the_apply_is_skipped_only_on_the_emulator_and_state_the_last_apply_left(tmp_path, monkeypatch):
    monkeypatch.setattr(local_platform, "APPLIED_RECORD", tmp_path / "applied.json")
    deployment = {"emulator": "boot-1", "stack": "stack-1", "state": "state-1"}
    monkeypatch.setattr(local_platform, "_deployment", lambda: dict(deployment))
    assert not local_platform.is_current()  # nothing recorded yet

    local_platform._record_deployment()
    assert local_platform.is_current()
    for key, changed in (("emulator", "boot-2"), ("stack", "stack-2"), ("state", "state-2")):
        deployment[key] = changed  # a restarted emulator, a new synth, a state another command changed
        assert not local_platform.is_current(), key
        deployment[key] = f"{key}-1" if key != "emulator" else "boot-1"
    assert local_platform.is_current()

    deployment["state"] = None  # no state file at all
    local_platform._record_deployment()
    assert not local_platform.is_current()
