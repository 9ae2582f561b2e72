"""Fixtures for the Lambda function tests: moto in process, fake credentials, real event shapes."""
from __future__ import annotations

import os

# Handler modules build their Tracer and Metrics at import (during collection). Only Powertools
# switches are set process-wide, and only if unset: they cannot change what other suites do.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "StockPatternDetection")

import functools  # noqa: E402

import moto.sns.models  # noqa: E402
import pytest  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from moto import mock_aws  # noqa: E402

from kinesis_consumer import handler as kinesis_consumer  # noqa: E402
from lambda_testkit import REGION, create_resources, handler_environment  # noqa: E402
from patternwatch_shared import aws  # noqa: E402

from tooling.lambda_harness import LambdaContext  # noqa: E402


@functools.cache
def _sns_signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# moto signs every SNS envelope it delivers with a new 2048-bit RSA key per subscription (~50 ms of CPU each,
# about 80 times here). No test checks the signature, so one key per test process signs them all.
moto.sns.models.Subscription.private_key = lambda self: _sns_signing_key()


@pytest.fixture(autouse=True)
def isolated_aws_environment(monkeypatch):
    """Fake credentials and region for every test here, and never a real endpoint or profile."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    aws.reset_clients()
    # The consumer keeps bars between invocations, as an execution environment does; each test is a new one.
    kinesis_consumer.window_cache.clear()
    yield
    aws.reset_clients()
    kinesis_consumer.window_cache.clear()


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext(function_name="patternwatch-test")


@pytest.fixture
def aws_resources(monkeypatch):
    aws.reset_clients()
    with mock_aws():
        resources = create_resources()
        for key, value in handler_environment(resources).items():
            monkeypatch.setenv(key, value)
        yield resources
    aws.reset_clients()
