"""What an earlier deploy leaves behind never breaks the next one (tooling/local_platform.py, docs/reliability.md).

The decisions are read here with the checkout's files moved to a temporary folder and the emulator answered
by a stand-in; tests/integration/test_interrupted_deploy.py interrupts a real deploy.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tooling import emulator, local_platform


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """The deploy's files in tmp_path, and a stand-in emulator: {"answers": identity() or None, "stopped": n}."""
    state = tmp_path / "terraform.patternwatch-local.tfstate"
    monkeypatch.setattr(local_platform, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(local_platform, "STATE_FILE", state)
    monkeypatch.setattr(local_platform, "STACK_DIR", tmp_path / "cdktf.out" / "stacks" / "patternwatch-local")
    monkeypatch.setattr(local_platform, "FLAT_OUTPUTS", tmp_path / "cfn-outputs" / "flat-outputs.json")
    monkeypatch.setattr(local_platform, "JOURNAL", tmp_path / ".local" / "deploy.json")
    monkeypatch.setattr(local_platform, "APPLIED_RECORD", tmp_path / ".local" / "applied.json")
    fake = {"answers": {"pid": 4242, "projectRoot": str(emulator.PROJECT_ROOT)}, "stopped": 0}
    monkeypatch.setattr(emulator, "identity", lambda url=None: fake["answers"])
    monkeypatch.setattr(emulator, "stop", lambda: fake.__setitem__("stopped", fake["stopped"] + 1))
    local_platform.STACK_DIR.mkdir(parents=True)
    local_platform.FLAT_OUTPUTS.parent.mkdir()
    return tmp_path, fake


def leave(tmp_path, journal: dict) -> None:
    (tmp_path / "terraform.patternwatch-local.tfstate").write_text("{}")
    (tmp_path / "cfn-outputs" / "flat-outputs.json").write_text("{}")
    local_platform._write_journal(journal)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def left_behind(tmp_path) -> list[str]:
    return sorted(p.name for p in [tmp_path / "terraform.patternwatch-local.tfstate", tmp_path / "cfn-outputs" / "flat-outputs.json",
                                   tmp_path / ".local" / "deploy.json"] if p.exists())


def test_a_deploy_that_died_mid_apply_is_started_over_on_a_fresh_emulator(checkout, capsys):
    tmp_path, fake = checkout
    leave(tmp_path, {"status": "applying", "pid": dead_pid(), "terraformPid": dead_pid(), "started": 0, "emulatorPid": 4242})
    local_platform.recover_from_earlier_runs()
    assert fake["stopped"] == 1
    assert left_behind(tmp_path) == []
    assert "did not finish" in capsys.readouterr().out


def test_make_down_stops_the_emulator_and_forgets_every_workspace_and_the_tuner_without_terraform(checkout, monkeypatch):
    tmp_path, fake = checkout
    leave(tmp_path, {"status": "applied", "pid": dead_pid(), "started": 0, "emulatorPid": 4242})
    workspace_state = tmp_path / "terraform.patternwatch-local.tfstate.d" / "pr123" / "terraform.tfstate"
    workspace_state.parent.mkdir(parents=True)
    workspace_state.write_text("{}")
    tuner_state = tmp_path / "terraform.patternwatch-local-power-tuner.tfstate"
    tuner_state.write_text("{}")
    local_platform.APPLIED_RECORD.write_text("{}")
    monkeypatch.setattr(local_platform, "terraform", lambda *args, **kwargs: pytest.fail("make down ran terraform"))
    local_platform.destroy()
    assert fake["stopped"] == 1
    assert left_behind(tmp_path) == []
    assert not (tmp_path / "terraform.patternwatch-local.tfstate.d").exists() and not tuner_state.exists()
    assert not local_platform.APPLIED_RECORD.exists()


def test_a_deploy_still_running_stops_the_next_one_at_once(checkout):
    tmp_path, fake = checkout
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        leave(tmp_path, {"status": "applying", "pid": running.pid, "started": 0})
        with pytest.raises(SystemExit, match=f"another deploy of this checkout \\(pid {running.pid}"):
            local_platform.recover_from_earlier_runs()
    finally:
        running.kill()
        running.wait()
    assert fake["stopped"] == 0 and len(left_behind(tmp_path)) == 3


def test_terraform_still_applying_after_its_deploy_died_stops_the_next_one_with_what_to_do(checkout):
    tmp_path, fake = checkout
    terraform = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], cwd=local_platform.STACK_DIR)
    try:
        leave(tmp_path, {"status": "applying", "pid": dead_pid(), "terraformPid": terraform.pid, "started": 0})
        with pytest.raises(SystemExit, match=f"wait until it ends \\(or kill {terraform.pid}\\)"):
            local_platform.recover_from_earlier_runs()
    finally:
        terraform.kill()
        terraform.wait()
    assert fake["stopped"] == 0


def test_state_from_an_emulator_since_restarted_is_dropped_and_a_finished_deploy_is_kept(checkout):
    tmp_path, fake = checkout
    leave(tmp_path, {"status": "applied", "pid": dead_pid(), "emulatorPid": 4242})
    local_platform.recover_from_earlier_runs()
    assert len(left_behind(tmp_path)) == 3  # the same emulator: the state describes it

    fake["answers"] = {"pid": 5151, "projectRoot": str(emulator.PROJECT_ROOT)}
    local_platform.recover_from_earlier_runs()
    assert left_behind(tmp_path) == [] and fake["stopped"] == 0


def test_another_checkouts_emulator_is_never_stopped_for_our_interrupted_deploy(checkout):
    tmp_path, fake = checkout
    fake["answers"] = {"pid": 4242, "projectRoot": "/somewhere/else"}
    leave(tmp_path, {"status": "applying", "pid": dead_pid(), "started": 0})
    local_platform.recover_from_earlier_runs()
    assert fake["stopped"] == 0 and left_behind(tmp_path) == []


def test_the_emulator_refuses_a_port_held_by_another_checkout_or_another_process(monkeypatch):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setenv("PATTERNWATCH_EMULATOR_PORT", str(port))
        with pytest.raises(SystemExit, match=f"port {port} is held by a process that does not answer as an emulator"):
            emulator.start()
        monkeypatch.setattr(emulator, "is_healthy", lambda url=None: True)
        monkeypatch.setattr(emulator, "identity", lambda url=None: {"pid": 7, "projectRoot": "/other/checkout"})
        with pytest.raises(SystemExit, match="held by the emulator of /other/checkout \\(pid 7\\).*PATTERNWATCH_EMULATOR_PORT"):
            emulator.start()


def test_the_journal_is_written_whole(checkout):
    tmp_path, _ = checkout
    local_platform._write_journal({"status": "applying", "pid": os.getpid()})
    local_platform._update_journal(terraform_pid=99)
    local_platform._update_journal(status="applied", terraform_pid=None)
    assert json.loads((tmp_path / ".local" / "deploy.json").read_text()) == {"status": "applied", "pid": os.getpid(), "terraformPid": None}
