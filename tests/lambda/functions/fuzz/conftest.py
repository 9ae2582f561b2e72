"""The fuzz suite's platform fixture, and the 'events tried per handler' line at the end of the session."""
from __future__ import annotations

import logging
import warnings

import pytest
from moto import mock_aws

from fuzz_support import TALLY, FuzzPlatform
from lambda_testkit import create_resources
from patternwatch_shared import aws
from patternwatch_shared.names.functions import PLATFORM_FUNCTIONS


@pytest.fixture
def platform(monkeypatch) -> FuzzPlatform:
    # Thousands of invocations: their INFO logs and EMF metrics are not what is checked here, and
    # would bury a failure's output. Errors are still logged.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    warnings.filterwarnings("ignore", message="No application metrics to publish")  # for this test only
    loggers = {spec.service_name: logging.getLogger(spec.service_name) for spec in PLATFORM_FUNCTIONS}
    levels = {name: logger.level for name, logger in loggers.items()}
    for logger in loggers.values():
        logger.setLevel(logging.ERROR)
    aws.reset_clients()
    try:
        with mock_aws():
            fuzz_platform = FuzzPlatform.create(create_resources())
            for key, value in fuzz_platform.environment().items():
                monkeypatch.setenv(key, value)
            yield fuzz_platform
    finally:
        aws.reset_clients()
        for name, logger in loggers.items():
            logger.setLevel(levels[name])


def pytest_terminal_summary(terminalreporter) -> None:
    if not TALLY:
        return
    terminalreporter.section("fuzz: events tried per handler")
    for handler, counts in sorted(TALLY.items()):
        terminalreporter.write_line(
            f"{handler:<34} {counts.events:>6} events  {counts.records:>7} records/messages  {counts.deliveries:>6} deliveries"
        )
