"""A Lambda function in moto, published with a `live` alias as the platform deploys it: what the power tuner's
step tests (tests/lambda/power_tuning) and its command line's tests (tests/tooling) tune."""
from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from moto import mock_aws

REGION = "us-east-1"


@contextmanager
def live_function(monkeypatch: pytest.MonkeyPatch, name: str, files: dict[str, str], handler: str,
                  **settings) -> Iterator[tuple[object, str]]:
    """Within moto, with fake credentials in the environment: `name` at 512 MB from a zip of `files`, published as
    version 1 with a `live` alias. moto's Lambda runs no code without Docker, so `files` only need to exist.
    Yields the Lambda client and the function's unqualified ARN."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            for path, text in files.items():
                archive.writestr(path, text)
        client = boto3.client("lambda", region_name=REGION)
        fn = client.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler=handler,
            Code={"ZipFile": code.getvalue()}, MemorySize=512, Publish=True, **settings,
        )
        client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        yield client, fn["FunctionArn"].removesuffix(":$LATEST")
