"""alert-processor with real SQS event shapes: approvals for CRITICAL alerts, SNS for the rest."""
from __future__ import annotations

import hashlib
import json
import re
import time

import pytest

from alert_processor import handler
from lambda_testkit import (
    API_BASE_URL, APPROVAL_TRACKING, FlakyClient, MeetAtFirstCall, alert_body, failed_ids, handler_copies, install_client,
    metric_values, run_concurrently, sqs_event,
)
from patternwatch_shared.names.metrics import (
    METRIC_ALERT_PRIORITY, METRIC_DUPLICATE_ALERTS_SKIPPED, METRIC_RECORDS_REJECTED,
)

T0 = 1_700_000_000


def approvals(resources) -> list[dict]:
    """ApprovalTracking items that are approvals (not alert-delivery ledger entries)."""
    return [i for i in resources.table_items(APPROVAL_TRACKING) if "status" in i]




def test_non_critical_alerts_are_published_to_trading_alerts(aws_resources, lambda_context, capsys):
    event = sqs_event([json.dumps(alert_body()), json.dumps(alert_body(severity="MEDIUM", alertId="x2", confidence=0.8))])
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    published = aws_resources.published(aws_resources.trading_alerts_inbox)
    assert sorted(p["Message"]["alertId"] for p in published) == ["AAPL#001700000000#double-top", "x2"]
    assert {p["MessageAttributes"]["severity"]["Value"] for p in published} == {"HIGH", "MEDIUM"}
    assert aws_resources.published(aws_resources.approval_requests_inbox) == []
    out = capsys.readouterr().out
    assert metric_values(out, METRIC_ALERT_PRIORITY, Severity="HIGH") == [1.0]
    assert metric_values(out, METRIC_ALERT_PRIORITY, Severity="MEDIUM") == [1.0]


def test_critical_alert_starts_an_approval_storing_only_the_token_hash(aws_resources, lambda_context):
    before = int(time.time())
    event = sqs_event([json.dumps(alert_body(severity="CRITICAL", confidence=0.97))])
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}

    requests = aws_resources.published(aws_resources.approval_requests_inbox)
    assert len(requests) == 1
    link = requests[0]["Message"]["approveUrl"]
    match = re.fullmatch(re.escape(API_BASE_URL) + r"/approve/([0-9a-f]{32})", link)
    assert match, link
    token = match.group(1)

    items = approvals(aws_resources)
    assert len(items) == 1
    item = items[0]
    assert item["tokenHash"]["S"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps(item)
    assert item["status"]["S"] == "PENDING"
    assert before + 3600 <= int(item["expiresAt"]["N"]) <= int(time.time()) + 3600

    pending = aws_resources.drain(aws_resources.pending_queue_url)
    assert len(pending) == 1
    assert pending[0]["tokenHash"] == item["tokenHash"]["S"]
    assert token not in json.dumps(pending[0])
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []


def test_each_critical_alert_gets_its_own_token(aws_resources, lambda_context):
    event = sqs_event([json.dumps(alert_body(severity="CRITICAL", alertId=f"a{i}")) for i in range(3)])
    handler.lambda_handler(event, lambda_context)
    hashes = {i["tokenHash"]["S"] for i in approvals(aws_resources)}
    assert len(hashes) == 3


def test_bad_messages_fail_alone_and_valid_ones_are_delivered(aws_resources, lambda_context, capsys):
    bodies = [
        "not json",
        json.dumps(alert_body(alertId="good-1")),
        json.dumps(alert_body(severity="SEVERE")),
        json.dumps(alert_body(extra="field")),
        json.dumps(alert_body(confidence="high")),
        '{"alertId":"n","source":"stream","severity":"HIGH","detectedAt":"t","confidence":NaN,"symbol":"A","pattern":"double-top"}',
        json.dumps(alert_body(alertId="good-2", severity="CRITICAL")),
        "",
        json.dumps(alert_body(symbol="S" * 500)),
    ]
    event = sqs_event(bodies)
    response = handler.lambda_handler(event, lambda_context)
    good = {1, 6}
    assert failed_ids(response) == [r["messageId"] for i, r in enumerate(event["Records"]) if i not in good]
    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["good-1"]
    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.approval_requests_inbox)] == ["good-2"]
    assert metric_values(capsys.readouterr().out, METRIC_RECORDS_REJECTED) == [7.0]


def test_empty_batch_and_wrong_event(aws_resources, lambda_context):
    assert handler.lambda_handler({"Records": []}, lambda_context) == {"batchItemFailures": []}


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_an_event_that_is_not_an_sqs_batch_is_a_clear_error(aws_resources, lambda_context):
    with pytest.raises(ValueError, match="not a SQS batch"):
        handler.lambda_handler({"detail": {}}, lambda_context)


def test_sns_fault_fails_that_message_only_and_redelivery_succeeds(aws_resources, lambda_context):
    event = sqs_event([json.dumps(alert_body(alertId=f"m{i}")) for i in range(4)])
    install_client("sns", FlakyClient(aws_resources.sns, "publish", failing_calls={2}))
    response = handler.lambda_handler(event, lambda_context)
    assert failed_ids(response) == [event["Records"][1]["messageId"]]
    delivered = [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)]
    assert sorted(delivered) == ["m0", "m2", "m3"]

    redelivery = {"Records": [event["Records"][1]]}
    assert handler.lambda_handler(redelivery, lambda_context) == {"batchItemFailures": []}
    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["m1"]


def test_dynamodb_fault_on_approval_fails_the_message_and_redelivery_starts_it(aws_resources, lambda_context):
    event = sqs_event([json.dumps(alert_body(severity="CRITICAL", alertId="crit"))])
    # PutItem calls: the ledger claim, then the approval (which fails), then the claim's release.
    install_client("dynamodb", FlakyClient(aws_resources.dynamodb, "put_item", failing_calls={2}))
    assert failed_ids(handler.lambda_handler(event, lambda_context)) == [event["Records"][0]["messageId"]]
    assert aws_resources.published(aws_resources.approval_requests_inbox) == []
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert len(aws_resources.published(aws_resources.approval_requests_inbox)) == 1
    assert len(approvals(aws_resources)) == 1


def test_duplicated_and_redelivered_alerts_are_delivered_once(aws_resources, lambda_context, capsys):
    critical = json.dumps(alert_body(severity="CRITICAL", alertId="dup-critical"))
    high = json.dumps(alert_body(alertId="dup-high"))
    event = sqs_event([critical, high, critical, high])  # the same alerts twice in one batch
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert handler.lambda_handler(sqs_event([high, critical]), lambda_context) == {"batchItemFailures": []}  # redelivered

    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["dup-high"]
    assert len(aws_resources.published(aws_resources.approval_requests_inbox)) == 1
    assert len(aws_resources.drain(aws_resources.pending_queue_url)) == 1
    assert len(approvals(aws_resources)) == 1
    assert sum(metric_values(capsys.readouterr().out, METRIC_DUPLICATE_ALERTS_SKIPPED)) == 4


def test_ledger_write_fault_does_not_fail_a_delivered_alert(aws_resources, lambda_context):
    event = sqs_event([json.dumps(alert_body(alertId="ledger"))])
    # PutItem calls: the ledger claim, then the delivered mark (which fails).
    install_client("dynamodb", FlakyClient(aws_resources.dynamodb, "put_item", failing_calls={2}))
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["ledger"]


@pytest.mark.parametrize("severity", ["CRITICAL", "HIGH"])
@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_details_are_rejected_and_nothing_is_emitted(aws_resources, lambda_context, severity, token):
    body = json.dumps(alert_body(severity=severity, confidence=0.97, details={"ratio": 1.0})).replace("1.0", token)
    event = sqs_event([body, json.dumps(alert_body(alertId="fine"))])
    response = handler.lambda_handler(event, lambda_context)
    assert failed_ids(response) == [event["Records"][0]["messageId"]]
    assert aws_resources.drain(aws_resources.pending_queue_url) == []
    assert aws_resources.published(aws_resources.approval_requests_inbox) == []
    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["fine"]


# Two copies in one process share Powertools' metric set; one flush may empty it before the other's.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize("severity", ["CRITICAL", "HIGH"])
def test_two_deliveries_of_one_alert_at_once_deliver_it_once(aws_resources, lambda_context, severity):
    # SQS can hand one message (or a duplicate of it) to two invocations at once. Both used to read
    # the delivery ledger before either wrote it, and both delivered: two approvals, two requests.
    event = sqs_event([json.dumps(alert_body(severity=severity, alertId="raced"))])
    both_look_first = lambda client: MeetAtFirstCall(client, 2, lambda operation, request: "delivered#" in json.dumps(request))
    responses = run_concurrently(
        [lambda copy=copy: copy.lambda_handler(event, lambda_context) for copy in handler_copies("alert_processor")],
        outer=both_look_first,
    )
    # One delivers; the other finds the alert being delivered and hands the message back to SQS.
    assert sorted(len(failed_ids(response)) for response in responses) == [0, 1]
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}  # SQS redelivers it

    if severity == "CRITICAL":
        assert len(approvals(aws_resources)) == 1
        assert len(aws_resources.drain(aws_resources.pending_queue_url)) == 1
        assert len(aws_resources.published(aws_resources.approval_requests_inbox)) == 1
    else:
        assert len(aws_resources.published(aws_resources.trading_alerts_inbox)) == 1


@pytest.mark.parametrize(("lease_left", "delivered"), [(-1, True), (60, False)])
def test_a_claim_holds_while_its_invocation_can_run_and_lapses_after(aws_resources, lambda_context, lease_left, delivered):
    # A claim left by an invocation that died mid-delivery (lease over) is taken over; one whose
    # invocation may still be running makes the message fail, to be retried later.
    now = int(time.time())
    aws_resources.dynamodb.put_item(
        TableName=APPROVAL_TRACKING,
        Item={"tokenHash": {"S": "delivered#claimed"}, "deliveryState": {"S": "CLAIMED"}, "leaseUntil": {"N": str(now + lease_left)}},
    )
    event = sqs_event([json.dumps(alert_body(alertId="claimed"))])
    assert len(failed_ids(handler.lambda_handler(event, lambda_context))) == (0 if delivered else 1)
    assert len(aws_resources.published(aws_resources.trading_alerts_inbox)) == (1 if delivered else 0)


def test_a_mark_written_before_claims_existed_still_counts_as_delivered(aws_resources, lambda_context):
    aws_resources.dynamodb.put_item(TableName=APPROVAL_TRACKING, Item={"tokenHash": {"S": "delivered#old"}, "deliveredAt": {"S": "2026"}})
    assert handler.lambda_handler(sqs_event([json.dumps(alert_body(alertId="old"))]), lambda_context) == {"batchItemFailures": []}
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []
