"""approval-expiry: PendingApprovals messages as the timer that auto-rejects unanswered approvals."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from approval_expiry import handler
from approval_testkit import ALERT_ID, approval_item, call, start_approval
from lambda_testkit import FlakyClient, install_client, metric_values
from patternwatch_shared.names.metrics import METRIC_APPROVALS_PROCESSED, METRIC_RECORDS_REJECTED
from tooling.local_runner import sqs_event

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:PendingApprovals"


def timer_event(resources, bodies: list[str]) -> dict:
    """The timer messages as Lambda delivers them: sent to PendingApprovals and received (real receipt handles)."""
    for body in bodies:
        resources.sqs.send_message(QueueUrl=resources.pending_queue_url, MessageBody=body)
    messages = resources.sqs.receive_message(QueueUrl=resources.pending_queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert len(messages) == len(bodies)
    return sqs_event(messages, QUEUE_ARN, "us-east-1")


def timer(alert_id: str = ALERT_ID) -> str:
    return json.dumps({"alertId": alert_id, "deadline": 0})


def failed(response: dict) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def in_flight(resources) -> int:
    attributes = resources.sqs.get_queue_attributes(QueueUrl=resources.pending_queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


def test_before_its_deadline_the_timer_is_re_armed_to_the_time_left(aws_resources, lambda_context):
    start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(minutes=10))
    sqs = RecordingSqs(aws_resources.sqs)
    install_client("sqs", sqs)
    event = timer_event(aws_resources, [timer()])
    response = handler.lambda_handler(event, lambda_context)
    assert failed(response) == [event["Records"][0]["messageId"]]  # kept: SQS hands it back at the deadline
    (wait,) = sqs.visibilities
    assert 50 * 60 - 5 <= wait <= 50 * 60 + 1
    assert in_flight(aws_resources) == 1
    assert approval_item(aws_resources)["status"]["S"] == "PENDING"
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []


def test_a_wait_longer_than_sqs_allows_is_re_armed_in_12_hour_steps(aws_resources, lambda_context):
    start_approval(aws_resources, expiry_seconds=20 * 3600)  # longer than config allows: the handler still copes
    sqs = RecordingSqs(aws_resources.sqs)
    install_client("sqs", sqs)
    handler.lambda_handler(timer_event(aws_resources, [timer()]), lambda_context)
    assert sqs.visibilities == [12 * 3600]


def test_at_its_deadline_a_pending_approval_is_auto_rejected_by_the_platform(aws_resources, lambda_context, capsys):
    tokens = start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(hours=1, seconds=1))
    response = handler.lambda_handler(timer_event(aws_resources, [timer()]), lambda_context)
    assert response == {"batchItemFailures": []}
    item = approval_item(aws_resources)
    assert (item["status"]["S"], item["decidedBy"]["S"], item["decidedByName"]["S"]) == ("EXPIRED", "platform", "the platform")
    (published,) = aws_resources.published(aws_resources.trading_alerts_inbox)
    assert (published["Message"]["decision"], published["Message"]["status"], published["Message"]["alertId"]) == ("auto-reject", "EXPIRED", ALERT_ID)
    assert published["MessageAttributes"]["decision"]["Value"] == "auto-reject"
    assert metric_values(capsys.readouterr().out, METRIC_APPROVALS_PROCESSED, Action="auto-reject", service="approval-expiry") == [1.0]
    # Nobody can decide it any more.
    assert call(tokens["ada"], "approve", lambda_context)[0] == 410
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []


def test_an_approval_already_decided_is_left_alone(aws_resources, lambda_context, capsys):
    tokens = start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(minutes=59))
    assert call(tokens["grace"], "reject", lambda_context)[0] == 200
    aws_resources.published(aws_resources.trading_alerts_inbox)
    before = approval_item(aws_resources)
    response = handler.lambda_handler(timer_event(aws_resources, [timer()]), lambda_context)
    assert response == {"batchItemFailures": []}  # done with: the message is deleted
    assert approval_item(aws_resources) == before
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []
    assert metric_values(capsys.readouterr().out, METRIC_APPROVALS_PROCESSED, Action="auto-reject") == []


def test_a_late_click_and_the_timer_auto_reject_once_between_them(aws_resources, lambda_context):
    tokens = start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(hours=2))
    assert call(tokens["ada"], "approve", lambda_context)[0] == 410  # the click records the auto-reject
    assert handler.lambda_handler(timer_event(aws_resources, [timer()]), lambda_context) == {"batchItemFailures": []}
    assert [p["Message"]["decision"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["auto-reject"]


def test_a_timer_whose_auto_reject_could_not_be_published_resends_it(aws_resources, lambda_context):
    start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(hours=2))
    install_client("sns", FlakyClient(aws_resources.sns, "publish", failing_calls={1}))
    assert handler.lambda_handler(timer_event(aws_resources, [timer()]), lambda_context) == {"batchItemFailures": []}
    assert aws_resources.published(aws_resources.trading_alerts_inbox) == []
    handler.lambda_handler(timer_event(aws_resources, [timer()]), lambda_context)  # a duplicate timer, or a redrive
    assert [p["Message"]["decision"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["auto-reject"]


def test_a_timer_for_an_approval_that_is_gone_is_dropped(aws_resources, lambda_context):
    assert handler.lambda_handler(timer_event(aws_resources, [timer("never-opened")]), lambda_context) == {"batchItemFailures": []}


def test_bad_timer_messages_fail_alone_for_the_dead_letter_queue(aws_resources, lambda_context, capsys):
    start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(hours=2))
    event = timer_event(aws_resources, ["not json", json.dumps({"deadline": 1}), json.dumps(["x"]), timer()])
    response = handler.lambda_handler(event, lambda_context)
    assert failed(response) == [r["messageId"] for r in event["Records"][:3]]
    assert approval_item(aws_resources)["status"]["S"] == "EXPIRED"
    assert metric_values(capsys.readouterr().out, METRIC_RECORDS_REJECTED) == [3.0]


def test_a_table_fault_fails_that_timer_only(aws_resources, lambda_context):
    start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(hours=2), alert_id="a1")
    start_approval(aws_resources, now=datetime.now(timezone.utc) - timedelta(hours=2), alert_id="a2")
    install_client("dynamodb", FlakyClient(aws_resources.dynamodb, "get_item", failing_calls={1}))
    event = timer_event(aws_resources, [timer("a1"), timer("a2")])
    response = handler.lambda_handler(event, lambda_context)
    assert failed(response) == [event["Records"][0]["messageId"]]
    assert approval_item(aws_resources, "a2")["status"]["S"] == "EXPIRED"
    assert approval_item(aws_resources, "a1")["status"]["S"] == "PENDING"


def test_a_timer_that_cannot_be_re_armed_still_stays_on_the_queue(aws_resources, lambda_context):
    start_approval(aws_resources)
    install_client("sqs", FlakyClient(aws_resources.sqs, "change_message_visibility", failing_calls={1}))
    event = timer_event(aws_resources, [timer()])
    assert failed(handler.lambda_handler(event, lambda_context)) == [event["Records"][0]["messageId"]]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_empty_and_wrong_events(aws_resources, lambda_context):
    assert handler.lambda_handler({"Records": []}, lambda_context) == {"batchItemFailures": []}
    with pytest.raises(ValueError, match="not a SQS batch"):
        handler.lambda_handler({"detail": {}}, lambda_context)


@pytest.mark.parametrize(("due_in", "visibility"), [(1, 1), (0.2, 1), (59.5, 60), (3600, 3600), (12 * 3600, 12 * 3600), (30 * 3600, 12 * 3600)])
def test_visibility_is_the_time_left_in_whole_seconds_within_sqs_limits(due_in, visibility):
    assert handler.visibility_for(due_in) == visibility


class RecordingSqs:
    """The SQS client, recording each visibility the handler sets."""

    def __init__(self, client):
        self._client = client
        self.visibilities: list[int] = []

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name != "change_message_visibility":
            return attribute

        def change(**request):
            self.visibilities.append(request["VisibilityTimeout"])
            return attribute(**request)

        return change

