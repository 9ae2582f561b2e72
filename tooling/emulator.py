"""The local AWS emulator (moto server) that the `local` environment deploys to.

Usage: python -m tooling.emulator start|stop|status

`start` reuses an emulator that already answers on the configured port and otherwise launches one in
the background (log: .local/moto.log), then waits until it is healthy.
"""
from __future__ import annotations

import argparse
import os
import signal
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


def start() -> bool:
    """Start the emulator unless one answers already; True when this call started a new (empty) one."""
    url = endpoint()
    if is_healthy(url):
        print(f"emulator: reusing the one already running at {url}")
        return False
    emulator = load_environment("local").emulator
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
