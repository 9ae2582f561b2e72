"""A deploy killed mid-apply leaves nothing that breaks the next one (issue 12 §3; docs/reliability.md).

The session's own platform is not touched: the deploy runs in a copy of this checkout's code in a temporary
folder (its own state, journal and emulator, on a free port), the way a second checkout would. The first
deploy is killed with its terraform (SIGKILL to its process group, as a closed terminal or an out-of-memory
kill would) once 20 resources exist; its emulator lives on with a half-applied platform that no state fully
describes. The next deploy must say so within seconds, start over and end green.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CODE = ("main.py", "cdktf.json", "Pipfile", "Pipfile.lock", "pyproject.toml", "envs", "patternwatch_infra", "lambda_src", "tooling")
DEPLOY = [sys.executable, "-c", "from tooling import local_platform; local_platform.deploy()"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def second_checkout(tmp_path):
    """A copy of the code (imports resolve to it: PYTHONPATH), sharing the project's .venv and its cache of the
    layer's arm64 wheels (read only: the same lock gives the same cache key); its emulator stopped after."""
    root = tmp_path / "checkout"
    root.mkdir()
    for name in CODE:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, root / name)
    (root / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    (root / ".build").mkdir()
    (root / ".build" / "layer-deps").symlink_to(PROJECT_ROOT / ".build" / "layer-deps")
    env = {**os.environ, "PYTHONPATH": str(root), "PATTERNWATCH_EMULATOR_PORT": str(free_port())}
    yield root, env
    subprocess.run([sys.executable, "-m", "tooling.emulator", "stop"], cwd=root, env=env, capture_output=True, timeout=60)


def test_a_deploy_killed_mid_apply_is_started_over_by_the_next_one(second_checkout):
    root, env = second_checkout
    first = subprocess.Popen(DEPLOY, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    seen = []
    for line in first.stdout:
        seen.append(line)
        if line.strip().startswith("[ 20]"):
            break
    os.killpg(first.pid, signal.SIGKILL)  # the deploy and the terraform it runs; the emulator has its own session
    first.wait(timeout=60)
    assert any("[ 20]" in line for line in seen), "".join(seen[-40:])
    assert (root / ".local" / "deploy.json").exists()

    started = time.monotonic()
    second = subprocess.Popen(DEPLOY, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    told_after = None
    output = []
    for line in second.stdout:
        output.append(line)
        if told_after is None and "did not finish" in line:
            told_after = time.monotonic() - started
    assert second.wait(timeout=900) == 0, "".join(output[-60:])
    text = "".join(output)
    assert told_after is not None and told_after < 15, text[:3000]
    assert "Starting over on a fresh emulator" in text and "emulator: started moto server" in text
    assert "Apply complete!" in text and "outputs:" in text
    assert '"status": "applied"' in (root / ".local" / "deploy.json").read_text()
    print(f"\ninterrupted deploy: the next deploy said so after {told_after:.1f} s and was green after "
          f"{time.monotonic() - started:.0f} s")
