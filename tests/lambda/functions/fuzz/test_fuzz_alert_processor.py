"""Fuzzing alert-processor: batches of valid, duplicated and malformed AlertQueue messages.

For every generated batch: nothing escapes the handler (SQS's retry signal is the item failure);
exactly the malformed messages are item failures; every valid alert id is delivered exactly once
(CRITICAL: one approval, one PendingApprovals message, one approval request per approver; otherwise one
TradingAlerts notification), whatever its duplicates in the batch, a redelivery of the batch, or
two deliveries of it at once; and everything written is valid JSON.
"""
from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from alert_processor import handler
from fuzz_support import (
    EVENTS_PER_HANDLER, FuzzPlatform, alert_messages, count_event, deliver_at_once, fuzz, invalid_alert_texts, tally,
    valid_alerts,
)
from lambda_testkit import APPROVERS, failed_ids, sqs_event

HANDLER = "alert-processor"


def expected_outcome(messages: list[tuple[str, dict | None]], event: dict) -> tuple[set[str], dict[str, dict]]:
    """The message ids that must fail, and the alert that must be delivered per alert id (the first)."""
    failing = {record["messageId"] for record, (_, alert) in zip(event["Records"], messages) if alert is None}
    delivered: dict[str, dict] = {}
    for _, alert in messages:
        if alert is not None:
            delivered.setdefault(alert["alertId"], alert)
    return failing, delivered


def deliveries(platform: FuzzPlatform) -> dict[str, list[str]]:
    """Alert ids per side effect: every approval so far, and what was sent since the last look."""
    approvals = sorted(i["alertId"]["S"] for i in platform.approval_items() if "status" in i)
    return {"approvals": approvals, **platform.delivered()}


def expected_deliveries(delivered: dict[str, dict]) -> dict[str, list[str]]:
    critical = sorted(i for i, alert in delivered.items() if alert["severity"] == "CRITICAL")
    return {
        "approvals": critical,
        "pending approvals": critical,
        "approval requests": sorted(critical * len(APPROVERS)),  # each approver gets their own link
        "trading alerts": sorted(i for i, alert in delivered.items() if alert["severity"] != "CRITICAL"),
    }


NOTHING_NEW = {"pending approvals": [], "approval requests": [], "trading alerts": []}


def test_every_valid_alert_is_delivered_once_and_every_bad_message_reported(platform, lambda_context):
    @fuzz()
    @given(messages=st.lists(alert_messages(), max_size=3))
    @example(messages=[])  # an empty batch
    def deliver(messages):
        platform.clear(approvals=True, queues=[platform.deliveries])
        event = sqs_event([body for body, _ in messages]) if messages else {"Records": []}
        count_event(HANDLER, len(messages))
        failing, delivered = expected_outcome(messages, event)

        for attempt in range(2):  # SQS redelivers a message whose visibility timeout ran out
            response = handler.lambda_handler(event, lambda_context)
            tally(HANDLER).deliveries += 1
            assert set(response) == {"batchItemFailures"}
            assert set(failed_ids(response)) == failing
            if attempt == 0:
                assert deliveries(platform) == expected_deliveries(delivered)
            elif delivered:
                # A second approval would also send a second PendingApprovals message.
                assert platform.delivered() == NOTHING_NEW

    deliver()
    assert tally(HANDLER).events >= EVENTS_PER_HANDLER


def test_two_deliveries_of_one_batch_at_once_deliver_each_alert_once(platform, lambda_context):
    @fuzz(30)
    @given(messages=st.lists(alert_messages(), min_size=1, max_size=4))
    def deliver_twice(messages):
        platform.clear(approvals=True, queues=[platform.deliveries])
        event = sqs_event([body for body, _ in messages])
        count_event(HANDLER, len(messages))
        failing, delivered = expected_outcome(messages, event)

        responses = deliver_at_once("alert_processor", HANDLER, [event, event], lambda_context)
        # A message may also fail because the other copy is delivering the same alert right now:
        # SQS then redelivers it, which is what happens next.
        retry = set().union(*(set(failed_ids(response)) for response in responses))
        assert failing <= retry
        again = {"Records": [record for record in event["Records"] if record["messageId"] in retry]}
        if again["Records"]:
            assert set(failed_ids(handler.lambda_handler(again, lambda_context))) == failing
            tally(HANDLER).deliveries += 1
        assert deliveries(platform) == expected_deliveries(delivered)

    deliver_twice()


def test_a_batch_of_10000_messages_reports_every_bad_one_and_delivers_every_good_one_once(platform, lambda_context):
    # An SQS batch can hold 10,000 messages. Here 9,980 malformed ones and 20 alerts (with repeated
    # ids); the malformed ones cost no AWS call, which keeps the case affordable on moto.
    @fuzz(1)
    @given(good=st.lists(valid_alerts(), min_size=20, max_size=20), bad=st.lists(invalid_alert_texts(), min_size=50, max_size=50))
    def deliver_huge(good, bad):
        platform.clear(approvals=True, queues=[platform.deliveries])
        messages = [(bad[i % 50][0], None) for i in range(9_980)]
        for index, alert in enumerate(good):
            messages.insert(index * 499, (json.dumps(alert), alert))
        event = sqs_event([body for body, _ in messages])
        count_event(HANDLER, len(messages))
        failing, delivered = expected_outcome(messages, event)
        assert len(failing) == 9_980
        response = handler.lambda_handler(event, lambda_context)
        tally(HANDLER).deliveries += 1
        assert set(failed_ids(response)) == failing
        assert deliveries(platform) == expected_deliveries(delivered)

    deliver_huge()
