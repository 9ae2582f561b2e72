"""An in-process moto server (with the emulator's CloudWatch fixes) and the local stack's dashboard body."""
from __future__ import annotations

import logging
import urllib.request

import boto3
import pytest
from cloudwatch_testkit import REGION, local_dashboard_inputs
from moto.server import ThreadedMotoServer

from patternwatch_infra import dashboard
from tooling import moto_cloudwatch


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
