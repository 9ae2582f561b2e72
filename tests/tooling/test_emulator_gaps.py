"""Emulator gaps the approval page met: TLS-only bucket policies, and the emulator's own request log."""
from __future__ import annotations

import hashlib
import json

import boto3
import pytest
from botocore.exceptions import ClientError

from tooling.local_aws.server import redacted_request_line


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def bucket_with_policy(s3, name: str, *statements: dict) -> None:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


DENY_INSECURE_TRANSPORT = {
    "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
    "Resource": ["arn:aws:s3:::tls-only", "arn:aws:s3:::tls-only/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def test_objects_are_readable_and_writable_under_a_tls_only_bucket_policy(emulator_endpoint):
    s3 = s3_client(emulator_endpoint)
    bucket_with_policy(s3, "tls-only", DENY_INSECURE_TRANSPORT)
    s3.put_object(Bucket="tls-only", Key="evidence/x/chart.png", Body=b"png")
    assert s3.get_object(Bucket="tls-only", Key="evidence/x/chart.png")["Body"].read() == b"png"
    assert json.loads(s3.get_bucket_policy(Bucket="tls-only")["Policy"])["Statement"][0]["Sid"] == "DenyInsecureTransport"


def test_other_deny_statements_still_deny(emulator_endpoint):
    s3 = s3_client(emulator_endpoint)
    bucket_with_policy(s3, "locked", DENY_INSECURE_TRANSPORT | {"Resource": ["arn:aws:s3:::locked/*"]},
                       {"Sid": "DenyAll", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::locked/*"]})
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket="locked", Key="k", Body=b"x")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize(
    ("line", "logged"),
    [
        ("POST /restapis/a1b2/v1/_user_request_/approve/0123456789abcdef0123456789abcdef HTTP/1.1",
         "POST /restapis/a1b2/v1/_user_request_/… HTTP/1.1"),
        ("/restapis/a1b2/v1/_user_request_/patterns/AAPL?limit=5", "/restapis/a1b2/v1/_user_request_/…"),
        ("POST /_patternwatch/clock HTTP/1.1", "POST /_patternwatch/clock HTTP/1.1"),
        ("POST / HTTP/1.1", "POST / HTTP/1.1"),
    ],
)
def test_the_emulator_logs_no_path_below_an_api_stage(line, logged):
    assert redacted_request_line(line) == logged


def test_the_running_emulator_keeps_tokens_out_of_its_log(emulator_endpoint, tmp_path_factory):
    import urllib.error
    import urllib.request

    token = "feedfacefeedfacefeedfacefeedface"
    try:
        urllib.request.urlopen(f"{emulator_endpoint}/restapis/none/v1/_user_request_/approve/{token}", timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 403  # no such API: answered as API Gateway does
    logs = list(tmp_path_factory.getbasetemp().glob("emulator*/moto.log"))
    assert logs and all(token not in log.read_text(errors="replace") for log in logs)
    assert any("_user_request_/…" in log.read_text(errors="replace") for log in logs)


def _function_zip(body: str) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", body)
    return buffer.getvalue()


@pytest.mark.parametrize("code_in", ["zip", "s3"])
def test_a_create_function_repeated_after_a_lost_answer_gets_the_first_answer_not_a_409(emulator_endpoint, code_in):
    """The 1-in-4 fresh-deploy loop: the SDK repeats CreateFunction when the connection drops after the 201;
    moto answered 409 "Function already exist" and the provider retried that for five minutes."""
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    iam, awslambda = session.client("iam", endpoint_url=emulator_endpoint), session.client("lambda", endpoint_url=emulator_endpoint)
    s3 = session.client("s3", endpoint_url=emulator_endpoint)
    role = iam.create_role(RoleName=f"retry-safe-{code_in}", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }))["Role"]["Arn"]

    def code(body: str) -> dict:
        package = _function_zip(body)
        if code_in == "zip":
            return {"ZipFile": package}
        s3.create_bucket(Bucket="retry-safe-artifacts")
        key = f"functions/{hashlib.sha256(body.encode()).hexdigest()[:12]}.zip"
        s3.put_object(Bucket="retry-safe-artifacts", Key=key, Body=package)
        return {"S3Bucket": "retry-safe-artifacts", "S3Key": key}

    name = f"RetrySafe-{code_in}"
    spec = {"FunctionName": name, "Runtime": "python3.11", "Role": role, "Handler": "handler.handler",
            "Code": code("def handler(event, context):\n    return 1\n"), "Publish": True}
    first = awslambda.create_function(**spec)
    repeated = awslambda.create_function(**spec)
    assert first["ResponseMetadata"]["HTTPStatusCode"] == repeated["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (repeated["FunctionArn"], repeated["CodeSha256"], repeated["Version"]) == (first["FunctionArn"], first["CodeSha256"], "1")
    assert [v["Version"] for v in awslambda.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST", "1"]

    with pytest.raises(ClientError) as conflict:
        awslambda.create_function(**{**spec, "Code": code("def handler(event, context):\n    return 2\n")})
    assert conflict.value.response["Error"]["Code"] == "ResourceConflictException"
    with pytest.raises(ClientError) as other_handler:
        awslambda.create_function(**{**spec, "Handler": "handler.other"})
    assert other_handler.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_the_emulator_says_which_checkout_it_belongs_to(emulator_endpoint):
    from tooling import emulator

    found = emulator.identity(emulator_endpoint)
    assert found["projectRoot"] == str(emulator.PROJECT_ROOT) and found["pid"] > 0
    assert emulator.is_ours(found)
    assert not emulator.is_ours({**found, "projectRoot": "/elsewhere/patternwatch"})
    assert emulator.identity("http://127.0.0.1:9") is None


def test_injected_throttles_and_dropped_answers_reach_the_caller_and_are_counted(emulator_endpoint):
    from botocore.config import Config
    from botocore.exceptions import ConnectionClosedError

    from tooling.local_aws import admin

    once = Config(retries={"mode": "standard", "total_max_attempts": 1})
    dynamodb = boto3.client("dynamodb", endpoint_url=emulator_endpoint, region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test", config=once)
    dynamodb.create_table(TableName="faulty", KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    admin.set_faults(emulator_endpoint, [
        {"action": "throttle", "service": "dynamodb", "table": "faulty", "operations": ["PutItem"], "limit": 1},
        {"action": "drop-after", "service": "dynamodb", "table": "faulty", "operations": ["PutItem"], "limit": 1},
        {"action": "drop-before", "service": "dynamodb", "table": "faulty", "operations": ["DeleteItem"], "limit": 1},
    ])
    try:
        with pytest.raises(ClientError) as throttled:
            dynamodb.put_item(TableName="faulty", Item={"PK": {"S": "a"}})
        assert throttled.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
        with pytest.raises(ConnectionClosedError):  # served, then the answer was lost
            dynamodb.put_item(TableName="faulty", Item={"PK": {"S": "b"}})
        with pytest.raises(ConnectionClosedError):  # cut before it was served
            dynamodb.delete_item(TableName="faulty", Key={"PK": {"S": "b"}})
    finally:
        rules = admin.clear_faults(emulator_endpoint)
    assert [(r["action"], r["seen"], r["fired"]) for r in rules] == [("throttle", 2, 1), ("drop-after", 1, 1), ("drop-before", 1, 1)]
    assert "Item" not in dynamodb.get_item(TableName="faulty", Key={"PK": {"S": "a"}})
    assert "Item" in dynamodb.get_item(TableName="faulty", Key={"PK": {"S": "b"}})
    assert admin.set_faults(emulator_endpoint, []) == []
