"""alert-processor with real SQS event shapes: approvals for CRITICAL alerts, SNS for the rest, one delivery per alert."""
from __future__ import annotations

import hashlib
import json
import re
import time

import pytest

from alert_processor import handler
from lambda_testkit import (
    API_BASE_URL, APPROVAL_TRACKING, APPROVERS, FlakyClient, MeetAtFirstCall, alert_body, failed_ids,
    handler_copies, install_client, metric_values, run_concurrently, sqs_event,
)
from patternwatch_shared.names.metrics import (
    METRIC_ALERT_PRIORITY, METRIC_DUPLICATE_ALERTS_SKIPPED, METRIC_RECORDS_REJECTED,
)
from tooling.lambda_harness import LambdaContext

T0 = 1_700_000_000
LINK = re.compile(re.escape(API_BASE_URL) + r"/approve/([0-9a-f]{32})")


def items(resources, prefix: str) -> list[dict]:
    return [i for i in resources.table_items(APPROVAL_TRACKING) if i["tokenHash"]["S"].startswith(prefix)]


def approvals(resources) -> list[dict]:
    return items(resources, "approval#")


def links(resources) -> list[dict]:
    """The per-approver link items (keyed by a 64-hex token hash)."""
    return [i for i in resources.table_items(APPROVAL_TRACKING) if re.fullmatch(r"[0-9a-f]{64}", i["tokenHash"]["S"])]


def requests_by_approver(resources) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for envelope in resources.published(resources.approval_requests_inbox):
        found.setdefault(envelope["MessageAttributes"]["approver"]["Value"], []).append(envelope)
    return found


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


def test_a_critical_alert_opens_one_approval_and_sends_each_approver_their_own_link(aws_resources, lambda_context):
    before = int(time.time())
    event = sqs_event([json.dumps(alert_body(severity="CRITICAL", confidence=0.97))])
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}

    requests = requests_by_approver(aws_resources)
    assert sorted(requests) == [a.id for a in APPROVERS]
    tokens = {}
    for approver in APPROVERS:
        (request,) = requests[approver.id]
        message = request["Message"]
        assert (message["approver"], message["approverName"]) == (approver.id, approver.name)
        assert message["alert"]["symbol"] == "AAPL" and message["severity"] == "CRITICAL"
        tokens[approver.id] = LINK.fullmatch(message["approveUrl"]).group(1)
    assert len(set(tokens.values())) == 2

    (approval,) = approvals(aws_resources)
    assert approval["status"]["S"] == "PENDING"
    assert before + 3600 <= int(approval["deadline"]["N"]) <= int(time.time()) + 3600
    assert set(approval["requested"]["SS"]) == {"ada", "grace"}
    # The record outlives the deadline: it is the audit trail of who decided.
    assert int(approval["expiresAt"]["N"]) == int(approval["deadline"]["N"]) + 90 * 86_400
    by_hash = {i["tokenHash"]["S"]: i for i in links(aws_resources)}
    for approver_id, token in tokens.items():
        link = by_hash[hashlib.sha256(token.encode()).hexdigest()]
        assert (link["approver"]["S"], link["alertId"]["S"]) == (approver_id, approval["alertId"]["S"])
    stored = json.dumps(aws_resources.table_items(APPROVAL_TRACKING))
    assert not any(token in stored for token in tokens.values())

    (timer,) = aws_resources.drain(aws_resources.pending_queue_url)
    assert timer == {"alertId": approval["alertId"]["S"], "deadline": int(approval["deadline"]["N"])}
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []


def test_the_approval_request_reads_well_as_an_email_and_stays_json_for_queues(aws_resources, lambda_context):
    from patternwatch_shared.approvals import ApprovalWorkflow

    sent = []

    class RecordingSns:
        def publish(self, **request):
            sent.append(request)

    workflow = ApprovalWorkflow(aws_resources.dynamodb, APPROVAL_TRACKING, sqs=aws_resources.sqs, sns=RecordingSns())
    from datetime import datetime, timezone

    from patternwatch_shared.models import AlertMessage

    workflow.open(
        AlertMessage(**alert_body(severity="CRITICAL")), {a.id: a for a in APPROVERS}, now=datetime.now(timezone.utc), expiry_seconds=3600,
        api_base_url=API_BASE_URL, pending_queue_url=aws_resources.pending_queue_url, requests_topic_arn="arn:aws:sns:us-east-1:123456789012:t",
    )
    assert [r["MessageAttributes"]["approver"]["StringValue"] for r in sent] == ["ada", "grace"]
    request = sent[0]
    assert request["MessageStructure"] == "json"
    bodies = json.loads(request["Message"])
    assert json.loads(bodies["default"])["approver"] == "ada"
    assert bodies["email"].startswith("Hello Ada Lovelace,")
    assert LINK.search(bodies["email"]).group(0) == json.loads(bodies["default"])["approveUrl"]
    assert "double-top on AAPL" in bodies["email"]


def test_each_critical_alert_gets_its_own_approval(aws_resources, lambda_context):
    event = sqs_event([json.dumps(alert_body(severity="CRITICAL", alertId=f"a{i}")) for i in range(3)])
    handler.lambda_handler(event, lambda_context)
    assert sorted(i["alertId"]["S"] for i in approvals(aws_resources)) == ["a0", "a1", "a2"]
    assert len(links(aws_resources)) == 3 * len(APPROVERS)


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
    assert {p["Message"]["alertId"] for p in aws_resources.published(aws_resources.approval_requests_inbox)} == {"good-2"}
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
    # The failed delivery gave its claim back: the redelivery goes ahead at once.
    assert items(aws_resources, "delivered#m1") == []

    redelivery = {"Records": [event["Records"][1]]}
    assert handler.lambda_handler(redelivery, lambda_context) == {"batchItemFailures": []}
    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["m1"]


def test_dynamodb_fault_on_approval_fails_the_message_and_redelivery_starts_it(aws_resources, lambda_context):
    event = sqs_event([json.dumps(alert_body(severity="CRITICAL", alertId="crit"))])
    # Call 1 is the claim, call 2 the approval item.
    install_client("dynamodb", FlakyClient(aws_resources.dynamodb, "put_item", failing_calls={2}))
    assert failed_ids(handler.lambda_handler(event, lambda_context)) == [event["Records"][0]["messageId"]]
    assert aws_resources.published(aws_resources.approval_requests_inbox) == []
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert sorted(requests_by_approver(aws_resources)) == ["ada", "grace"]
    assert len(approvals(aws_resources)) == 1


def test_a_retry_after_a_half_sent_approval_sends_only_the_missing_links(aws_resources, lambda_context):
    event = sqs_event([json.dumps(alert_body(severity="CRITICAL", alertId="half"))])
    install_client("sns", FlakyClient(aws_resources.sns, "publish", failing_calls={2}))  # grace's request fails
    assert failed_ids(handler.lambda_handler(event, lambda_context)) == [event["Records"][0]["messageId"]]
    assert sorted(requests_by_approver(aws_resources)) == ["ada"]

    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert sorted(requests_by_approver(aws_resources)) == ["grace"]  # ada already has hers
    (approval,) = approvals(aws_resources)
    assert set(approval["requested"]["SS"]) == {"ada", "grace"}
    assert len(aws_resources.drain(aws_resources.pending_queue_url)) == 1  # one timer, not one per attempt
    # The first attempt recorded grace's link before its publish failed: a hash nobody ever received.
    assert sorted(i["approver"]["S"] for i in links(aws_resources)) == ["ada", "grace", "grace"]


def test_a_claim_left_by_a_crashed_delivery_is_taken_over_once_its_lease_ends(aws_resources, lambda_context, capsys):
    key = {"tokenHash": {"S": "delivered#crashed"}}
    body = json.dumps(alert_body(alertId="crashed"))
    aws_resources.dynamodb.put_item(TableName=APPROVAL_TRACKING, Item={
        **key, "deliveryState": {"S": "CLAIMED"}, "claimId": {"S": "other"}, "leaseUntil": {"N": str(int(time.time()) + 600)},
        "expiresAt": {"N": str(int(time.time()) + 86_400)},
    })
    event = sqs_event([body])
    # The holder is still within its lease: the message fails, for SQS to hand it back later.
    assert failed_ids(handler.lambda_handler(event, lambda_context)) == [event["Records"][0]["messageId"]]
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []
    assert metric_values(capsys.readouterr().out, METRIC_DUPLICATE_ALERTS_SKIPPED) == []

    aws_resources.dynamodb.update_item(TableName=APPROVAL_TRACKING, Key=key, UpdateExpression="SET leaseUntil = :past",
                                       ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}})
    assert handler.lambda_handler(sqs_event([body]), lambda_context) == {"batchItemFailures": []}
    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["crashed"]
    (claim,) = items(aws_resources, "delivered#crashed")
    assert claim["deliveryState"]["S"] == "DELIVERED" and "leaseUntil" not in claim


def test_the_claim_lease_outlasts_the_invocation_holding_it(aws_resources):
    context = LambdaContext(function_name="AlertProcessor-test", timeout_seconds=30)
    handler.lambda_handler(sqs_event([json.dumps(alert_body(alertId="lease"))]), context)
    (claim,) = items(aws_resources, "delivered#lease")
    assert claim["deliveryState"]["S"] == "DELIVERED"
    assert claim["claimedAt"]["S"] and claim["deliveredAt"]["S"]


def test_duplicated_and_redelivered_alerts_are_delivered_once(aws_resources, lambda_context, capsys):
    critical = json.dumps(alert_body(severity="CRITICAL", alertId="dup-critical"))
    high = json.dumps(alert_body(alertId="dup-high"))
    event = sqs_event([critical, high, critical, high])  # the same alerts twice in one batch
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert handler.lambda_handler(sqs_event([high, critical]), lambda_context) == {"batchItemFailures": []}  # redelivered

    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["dup-high"]
    assert {k: len(v) for k, v in requests_by_approver(aws_resources).items()} == {"ada": 1, "grace": 1}
    assert len(aws_resources.drain(aws_resources.pending_queue_url)) == 1
    assert len(approvals(aws_resources)) == 1
    assert sum(metric_values(capsys.readouterr().out, METRIC_DUPLICATE_ALERTS_SKIPPED)) == 4


def test_a_ledger_entry_from_before_claims_still_counts_as_delivered(aws_resources, lambda_context):
    aws_resources.dynamodb.put_item(TableName=APPROVAL_TRACKING, Item={
        "tokenHash": {"S": "delivered#old"}, "deliveredAt": {"S": "2026-01-01T00:00:00.000000Z"}, "expiresAt": {"N": str(int(time.time()) + 600)},
    })
    assert handler.lambda_handler(sqs_event([json.dumps(alert_body(alertId="old"))]), lambda_context) == {"batchItemFailures": []}
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []


def test_marking_the_claim_delivered_may_fail_without_failing_a_delivered_alert(aws_resources, lambda_context):
    event = sqs_event([json.dumps(alert_body(alertId="ledger"))])
    install_client("dynamodb", FlakyClient(aws_resources.dynamodb, "update_item", failing_calls={1}))
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["ledger"]


def test_a_claim_that_cannot_be_released_is_freed_by_its_lease(aws_resources, lambda_context):
    event = sqs_event([json.dumps(alert_body(alertId="stuck"))])
    install_client("sns", FlakyClient(aws_resources.sns, "publish", failing_calls={1}))
    install_client("dynamodb", FlakyClient(aws_resources.dynamodb, "delete_item", failing_calls={1}))
    assert failed_ids(handler.lambda_handler(event, lambda_context)) == [event["Records"][0]["messageId"]]
    (claim,) = items(aws_resources, "delivered#stuck")
    assert claim["deliveryState"]["S"] == "CLAIMED"
    assert int(claim["leaseUntil"]["N"]) <= int(time.time()) + 30 + 10 + 1  # the invocation's time left + margin


# Twenty copies of the handler share Powertools' metric set in one process; a flush may empty it early.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize("severity", ["CRITICAL", "HIGH"])
def test_twenty_concurrent_deliveries_of_one_alert_act_once(aws_resources, severity):
    """Before the claim, 20 of 20 concurrent deliveries opened two approvals or more."""
    # Twenty execution environments (handler copies: no shared batch processor); DynamoDB atomic per
    # request (run_concurrently). The handler takes no lock: only its conditional claim decides who delivers.
    body = json.dumps(alert_body(severity=severity, alertId=f"race-{severity}"))
    context = LambdaContext(function_name="AlertProcessor-test")
    responses = run_concurrently(
        [lambda copy=copy: copy.lambda_handler(sqs_event([body]), context) for copy in handler_copies("alert_processor", 20)]
    )
    # One delivers. The others find it delivered (skipped) or being delivered: those fail, and SQS hands
    # them back later, when the alert is delivered and they are skipped.
    retried = [r for r in responses if r != {"batchItemFailures": []}]
    assert len(responses) == 20 and len(retried) < 20 and all(len(failed_ids(r)) == 1 for r in retried)
    for _ in retried:
        assert handler.lambda_handler(sqs_event([body]), context) == {"batchItemFailures": []}
    if severity == "CRITICAL":
        assert len(approvals(aws_resources)) == 1
        assert {k: len(v) for k, v in requests_by_approver(aws_resources).items()} == {"ada": 1, "grace": 1}
        assert len(links(aws_resources)) == 2
        assert len(aws_resources.drain(aws_resources.pending_queue_url)) == 1
        assert aws_resources.published(aws_resources.trading_alerts_inbox) == []
    else:
        assert len(aws_resources.published(aws_resources.trading_alerts_inbox)) == 1
        assert approvals(aws_resources) == []


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
        assert {k: len(v) for k, v in requests_by_approver(aws_resources).items()} == {"ada": 1, "grace": 1}
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

