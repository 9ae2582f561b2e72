"""Emulators of the tooling tests' own, with no stack deployed.

- `emulator_endpoint`/`aws`: the full emulator (moto + tooling/local_aws) in a subprocess on a free port;
- `moto_endpoint`/`cloudwatch`: an in-process moto server with the emulator's CloudWatch read fixes, for the
  dashboard renderer and the metric references;
- `local_body`: the local stack's dashboard body, built from plain names.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import logging

import boto3
import pytest
from cloudwatch_testkit import REGION, local_dashboard_inputs
from emulator_clients import emulator_clients
from moto.server import ThreadedMotoServer

from patternwatch_infra import dashboard
from tooling import moto_cloudwatch

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def emulator_endpoint(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("emulator") / "moto.log"
    env = {**os.environ, "MOTO_PORT": str(port), "MOTO_HOST": "127.0.0.1", "PATTERNWATCH_EMULATOR_REGION": REGION}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "tooling.moto_extensions", "-H", "127.0.0.1", "-p", str(port)],
                                   cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test emulator did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
    yield endpoint
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def aws(emulator_endpoint):
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)

    clients = emulator_clients(session, emulator_endpoint, "lambda", "iam", "logs", "cloudwatch", "sqs", "events",
                               "stepfunctions", "apigateway")
    clients.role_arn = clients.iam.create_role(RoleName="local-lambda-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return clients


@pytest.fixture(scope="session")
def moto_endpoint():
    moto_cloudwatch.install()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def cloudwatch(moto_endpoint):
    """A CloudWatch client on an emptied in-process emulator."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()
    return boto3.client("cloudwatch", endpoint_url=moto_endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture(scope="session")
def local_body() -> dict:
    return dashboard.body(local_dashboard_inputs())
