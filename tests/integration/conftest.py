"""Deploy `local` to the emulator once per session; tests read every name from cfn-outputs/flat-outputs.json."""
from __future__ import annotations

import json

import pytest

from emulator_clients import emulator_clients
from tooling import emulator, local_platform
from tooling.local_runner import LocalRunner


@pytest.fixture(scope="session")
def deployed():
    """The deployed platform's outputs, read back from the flat outputs file the deploy writes."""
    started_here = not emulator.is_healthy()
    local_platform.deploy()
    yield json.loads(local_platform.FLAT_OUTPUTS.read_text())
    if started_here:
        emulator.stop()


@pytest.fixture(scope="session")
def session(deployed):
    session, _ = local_platform.emulator_session()
    return session


@pytest.fixture(scope="session")
def endpoint(deployed) -> str:
    return emulator.endpoint()


@pytest.fixture(scope="session")
def runner(session, endpoint) -> LocalRunner:
    """The event source mappings and schedules, wired from what Terraform created; invokes through the emulator."""
    return LocalRunner(session, endpoint, suffix="local")


@pytest.fixture(scope="session")
def clients(session, endpoint):
    return emulator_clients(session, endpoint, "dynamodb", "sqs", "sns", "kinesis", "stepfunctions", "events", "logs",
                            "cloudwatch", "lambda")
