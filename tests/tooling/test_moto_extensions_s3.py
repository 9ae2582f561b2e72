"""The emulator's S3 under our TLS-only bucket policy: moto ignores the policy's condition and denies every
object request; the extension leaves out only the statements that never match over TLS."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.s3.models import FakeBucket

from tooling import moto_extensions

BUCKET = "patternwatch-data-test"


def tls_only(bucket: str) -> dict:
    """The statement SecureBucket puts on every bucket (blocks.deny_insecure_transport)."""
    return {
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setattr(FakeBucket, "get_permission", FakeBucket.get_permission)  # put back after the test
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _policy(client, *statements: dict) -> None:
    client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def test_moto_alone_denies_every_object_request_under_the_tls_only_policy(s3):
    _policy(s3, tls_only(BUCKET))
    with pytest.raises(ClientError, match="403"):
        s3.put_object(Bucket=BUCKET, Key="evidence/a/evidence.json", Body=b"{}")


def test_with_the_extension_objects_are_written_and_read_under_the_tls_only_policy(s3):
    moto_extensions.s3_bucket_policy_over_tls()
    _policy(s3, tls_only(BUCKET))
    s3.put_object(Bucket=BUCKET, Key="evidence/a/evidence.json", Body=b"{}")
    assert s3.get_object(Bucket=BUCKET, Key="evidence/a/evidence.json")["Body"].read() == b"{}"


def test_other_deny_statements_still_deny(s3):
    moto_extensions.s3_bucket_policy_over_tls()
    deny_writes = {"Sid": "NoWrites", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    _policy(s3, tls_only(BUCKET), deny_writes)
    with pytest.raises(ClientError, match="403"):
        s3.put_object(Bucket=BUCKET, Key="evidence/a/evidence.json", Body=b"{}")
    # A condition other than aws:SecureTransport=false is still left to moto (which ignores conditions).
    _policy(s3, {**tls_only(BUCKET), "Condition": {"Bool": {"aws:SecureTransport": "true"}}})
    with pytest.raises(ClientError, match="403"):
        s3.put_object(Bucket=BUCKET, Key="evidence/b/evidence.json", Body=b"{}")
