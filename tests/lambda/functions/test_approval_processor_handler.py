"""approval-processor: POST /approve/{token} with real API Gateway REST event shapes."""
from __future__ import annotations

import base64
import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from approval_processor import handler
from lambda_testkit import (
    APPROVAL_TRACKING,
    API_BASE_URL,
    BAD_BASE64_BODIES,
    FlakyClient,
    LinearizableClient,
    api_event,
    install_client,
    metric_values,
)
from patternwatch_shared.approvals import ApprovalWorkflow, token_hash
from patternwatch_shared.models import AlertMessage
from patternwatch_shared.names.metrics import METRIC_APPROVALS_PROCESSED


def start_approval(resources, *, now: datetime | None = None, expiry_seconds: int = 3600) -> str:
    workflow = ApprovalWorkflow(resources.dynamodb, APPROVAL_TRACKING, sqs=resources.sqs, sns=resources.sns)
    alert = AlertMessage(
        alertId="AAPL#001700000000#head-and-shoulders",
        source="stream",
        severity="CRITICAL",
        detectedAt="2026-01-01T00:00:00.000000Z",
        confidence=0.98,
        symbol="AAPL",
        pattern="head-and-shoulders",
        startTimestamp=1_699_990_000,
        endTimestamp=1_700_000_000,
    )
    started = workflow.start(
        alert,
        now=now or datetime.now(timezone.utc),
        expiry_seconds=expiry_seconds,
        api_base_url=API_BASE_URL,
        pending_queue_url=resources.pending_queue_url,
        requests_topic_arn=resources.approval_requests_topic,
    )
    resources.published(resources.approval_requests_inbox)  # clear the request notification
    return started.token


def approve_event(token: str, body: str | None, *, base64_encoded: bool = False) -> dict:
    return api_event(
        "POST", "/approve/{token}", f"/approve/{token}", body=body, path_parameters={"token": token}, base64_encoded=base64_encoded
    )


def call(token: str, body: str | None, context) -> tuple[int, dict]:
    response = handler.lambda_handler(approve_event(token, body), context)
    return response["statusCode"], json.loads(response["body"])


def item_for(resources, token: str) -> dict:
    return resources.dynamodb.get_item(TableName=APPROVAL_TRACKING, Key={"tokenHash": {"S": token_hash(token)}})["Item"]


@pytest.mark.parametrize(
    ("body", "status"),
    [('{"action": "approve"}', "APPROVED"), ("reject", "REJECTED"), ("approve", "APPROVED"), ('"reject"', "REJECTED")],
)
def test_first_decision_is_200_and_published(aws_resources, lambda_context, capsys, body, status):
    token = start_approval(aws_resources)
    code, payload = call(token, body, lambda_context)
    assert (code, payload["status"], payload["notified"]) == (200, status, True)
    assert item_for(aws_resources, token)["status"]["S"] == status
    published = aws_resources.published(aws_resources.trading_alerts_inbox)
    assert [p["Message"]["status"] for p in published] == [status]
    action = "approve" if status == "APPROVED" else "reject"
    assert metric_values(capsys.readouterr().out, METRIC_APPROVALS_PROCESSED, Action=action) == [1.0]


def test_repeated_decision_is_409_and_changes_nothing(aws_resources, lambda_context):
    token = start_approval(aws_resources)
    assert call(token, "approve", lambda_context)[0] == 200
    assert call(token, "reject", lambda_context) == (409, {"status": "APPROVED", "message": "approval already decided"})
    assert call(token, "approve", lambda_context)[0] == 409
    assert item_for(aws_resources, token)["status"]["S"] == "APPROVED"
    assert len(aws_resources.published(aws_resources.trading_alerts_inbox)) == 1


def test_expired_approval_is_410_and_records_an_auto_reject_once(aws_resources, lambda_context, capsys):
    token = start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(hours=2))
    code, payload = call(token, "approve", lambda_context)
    assert code == 410 and payload["status"] == "EXPIRED"
    assert item_for(aws_resources, token)["status"]["S"] == "EXPIRED"
    published = aws_resources.published(aws_resources.trading_alerts_inbox)
    assert [p["Message"]["decision"] for p in published] == ["auto-reject"]
    assert metric_values(capsys.readouterr().out, METRIC_APPROVALS_PROCESSED, Action="auto-reject") == [1.0]

    assert call(token, "reject", lambda_context)[0] == 410
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []


def test_approval_one_second_before_expiry_still_counts(aws_resources, lambda_context):
    token = start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(seconds=3600 - 30))
    assert call(token, "approve", lambda_context)[0] == 200


def test_unknown_token_is_404(aws_resources, lambda_context):
    assert call("0" * 32, "approve", lambda_context) == (404, {"message": "unknown approval token"})


@pytest.mark.parametrize(
    ("token", "body"),
    [
        ("abc", "approve"),
        ("G" * 32, "approve"),
        ("A" * 32, "approve"),  # upper case is not what we issue
        ("0" * 33, "approve"),
        ("0" * 4096, "approve"),
        ("0" * 32, None),
        ("0" * 32, ""),
        ("0" * 32, "maybe"),
        ("0" * 32, '{"action": "escalate"}'),
        ("0" * 32, '{"action": "approve", "extra": 1}'),
        ("0" * 32, '{"action": 1}'),
        ("0" * 32, '{"decision": "approve"}'),
        ("0" * 32, "[\"approve\"]"),
        ("0" * 32, "{not json"),
        ("0" * 32, "approve" * 100),
        ("0" * 32, '"escalate"'),
        ("0" * 32, '"approve'),
        ("0" * 32, '"approve" "reject"'),
    ],
)
def test_malformed_token_or_body_is_400(aws_resources, lambda_context, token, body):
    code, payload = call(token, body, lambda_context)
    assert code == 400
    assert payload["message"]


@pytest.mark.parametrize(
    "body",
    ['{"action":"reject","action":"approve"}', '{"action":"approve","action":"approve"}', '{"action":"approve","action":"reject"}'],
)
def test_a_body_with_a_repeated_key_is_400_and_decides_nothing(aws_resources, lambda_context, body):
    token = start_approval(aws_resources)
    code, payload = call(token, body, lambda_context)
    assert code == 400 and "duplicate key 'action'" in payload["message"]
    assert item_for(aws_resources, token)["status"]["S"] == "PENDING"


@pytest.mark.parametrize("body", BAD_BASE64_BODIES)
def test_a_base64_flagged_body_that_does_not_decode_is_400_and_decides_nothing(aws_resources, lambda_context, body):
    token = start_approval(aws_resources)
    response = handler.lambda_handler(approve_event(token, body, base64_encoded=True), lambda_context)
    assert response["statusCode"] == 400
    assert "base64" in json.loads(response["body"])["message"]
    assert item_for(aws_resources, token)["status"]["S"] == "PENDING"


def test_a_base64_encoded_decision_is_read_like_a_plain_one(aws_resources, lambda_context):
    token = start_approval(aws_resources)
    body = base64.b64encode(b'{"action": "reject"}').decode()
    response = handler.lambda_handler(approve_event(token, body, base64_encoded=True), lambda_context)
    assert response["statusCode"] == 200
    assert item_for(aws_resources, token)["status"]["S"] == "REJECTED"


def test_unknown_route_and_method_are_not_served(aws_resources, lambda_context):
    response = handler.lambda_handler(api_event("GET", "/approve/{token}", "/approve/" + "0" * 32), lambda_context)
    assert response["statusCode"] == 404


# Twenty invocations share one process here (Lambda would use twenty containers), so one thread's
# metrics flush can empty the shared metric set before another's: harmless for this test.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_twenty_concurrent_decisions_exactly_one_wins(aws_resources, lambda_context):
    token = start_approval(aws_resources)
    # DynamoDB's per-request atomicity, which moto in process lacks (see LinearizableClient). The
    # handler itself takes no lock: only its conditional write decides the winner.
    install_client("dynamodb", LinearizableClient(aws_resources.dynamodb))
    barrier = threading.Barrier(20)
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def decide(index: int) -> None:
        try:
            barrier.wait()
            code, _ = call(token, "approve" if index % 2 else "reject", lambda_context)
            with lock:
                results.append(code)
        except BaseException as error:  # surfaced below: a crashed thread must fail the test
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(results) == [200] + [409] * 19
    assert item_for(aws_resources, token)["status"]["S"] in {"APPROVED", "REJECTED"}
    assert len(aws_resources.published(aws_resources.trading_alerts_inbox)) == 1


def test_sns_fault_after_decision_is_502_and_a_repeat_resends_it(aws_resources, lambda_context):
    token = start_approval(aws_resources)
    install_client("sns", FlakyClient(aws_resources.sns, "publish", failing_calls={1}))
    code, payload = call(token, "approve", lambda_context)
    assert (code, payload["status"], payload["notified"]) == (502, "APPROVED", False)
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []

    assert call(token, "approve", lambda_context)[0] == 409
    published = aws_resources.published(aws_resources.trading_alerts_inbox)
    assert [p["Message"]["status"] for p in published] == ["APPROVED"]
    assert call(token, "approve", lambda_context)[0] == 409
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []
