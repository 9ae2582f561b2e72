"""The local AWS emulator (moto server) that the `local` environment deploys to.

Usage: python -m tooling.emulator start|stop|status

`start` reuses this checkout's emulator when it already answers on the configured port and otherwise
launches one in the background (log: .local/moto.log), then waits until it is healthy. It refuses at once,
saying what to do, when the port is held by anything else: another checkout's emulator (it would deploy
into that one's platform, whose names are the same) or a process that is no emulator.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from patternwatch_infra.config import load_environment

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = PROJECT_ROOT / ".local"
PID_FILE = STATE_DIR / "moto.pid"
LOG_FILE = STATE_DIR / "moto.log"
START_TIMEOUT_SECONDS = 60


def endpoint() -> str:
    emulator = load_environment("local").emulator
    return emulator.endpoint


def is_healthy(url: str | None = None) -> bool:
    try:
        # The dashboard page: cheap, and unlike /moto-api/data.json it never serialises Lambda state.
        with urllib.request.urlopen(f"{url or endpoint()}/moto-api/", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def identity(url: str | None = None) -> dict | None:
    """Who answers on the emulator's port: {"pid", "projectRoot", "startedAt"}; {} for an emulator without
    the identity endpoint (an older checkout's, or plain moto); None when nothing answers."""
    try:
        with urllib.request.urlopen(f"{url or endpoint()}/_patternwatch/identity", timeout=2) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError:
        return {}
    except (urllib.error.URLError, OSError, ValueError):
        return None


def is_ours(found: dict | None) -> bool:
    """Whether `found` (identity()) is this checkout's emulator; one without the identity endpoint counts
    when it is the process this checkout started (its pid file, its working directory)."""
    if found:
        return Path(str(found.get("projectRoot", ""))).resolve() == PROJECT_ROOT
    return found == {} and PID_FILE.exists() and process_cwd(int(PID_FILE.read_text())) == PROJECT_ROOT


def process_cwd(pid: int) -> Path | None:
    """The working directory of a live process, None when it is gone (or not ours to see)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).resolve()
    except (OSError, ValueError):
        return None


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def _port_taken(port: int, what: str) -> SystemExit:
    return SystemExit(
        f"error: port {port} is held by {what}, not by this checkout's emulator; deploying there would change "
        f"another platform. Stop it (in its checkout: `make down`), or give this checkout a port of its own: "
        f"export PATTERNWATCH_EMULATOR_PORT=<free port>"
    )


def start() -> bool:
    """Start the emulator unless this checkout's answers already; True when this call started a new (empty) one."""
    url = endpoint()
    emulator = load_environment("local").emulator
    if is_healthy(url):
        found = identity(url)
        if not is_ours(found):
            owner = f"the emulator of {found['projectRoot']} (pid {found.get('pid')})" if found else "an emulator of unknown origin"
            raise _port_taken(emulator.port, owner)
        print(f"emulator: reusing the one already running at {url}")
        return False
    if port_in_use(emulator.host, emulator.port):
        raise _port_taken(emulator.port, "a process that does not answer as an emulator")
    STATE_DIR.mkdir(exist_ok=True)
    env = dict(os.environ)
    # AWS-managed IAM policies exist on the emulator only when it loads them at start-up.
    env.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    # moto's own callers of its API (Step Functions tasks, for one) find the server through MOTO_PORT.
    env["MOTO_PORT"] = str(emulator.port)
    env["MOTO_HOST"] = emulator.host
    # The region the admin endpoints (tooling/local_aws/server.py) act in when a request names none.
    env["PATTERNWATCH_EMULATOR_REGION"] = load_environment("local").region
    with LOG_FILE.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tooling.moto_extensions", "-H", emulator.host, "-p", str(emulator.port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=PROJECT_ROOT,
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"error: the emulator exited with code {process.returncode}; see {LOG_FILE}")
        if is_healthy(url):
            # Recorded only once it answers, so a failed start never hides the pid of a running one.
            PID_FILE.write_text(str(process.pid))
            print(f"emulator: started moto server at {url} (pid {process.pid}, log {LOG_FILE})")
            return True
        time.sleep(0.3)
    raise SystemExit(f"error: the emulator did not become healthy within {START_TIMEOUT_SECONDS} s; see {LOG_FILE}")


def stop() -> None:
    if not PID_FILE.exists():
        print("emulator: none started by this project")
        return
    pid = int(PID_FILE.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
        print(f"emulator: stopped (pid {pid})")
    except ProcessLookupError:
        print("emulator: already stopped")
    PID_FILE.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start, stop or check the local AWS emulator.")
    parser.add_argument("action", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    if args.action == "start":
        start()
    elif args.action == "stop":
        stop()
    else:
        healthy = is_healthy()
        print(f"emulator at {endpoint()}: {'healthy' if healthy else 'not running'}")
        return 0 if healthy else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
