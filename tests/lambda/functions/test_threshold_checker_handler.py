"""threshold-checker with real EventBridge scheduled events; recent patterns come from the GSI."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from lambda_testkit import RecordingClient, install_client, metric_values, scheduled_event
from patternwatch_shared.config import ConfigurationError
from patternwatch_shared.names.functions import (
    ENV_ALERT_CONFIDENCE_THRESHOLD, ENV_THRESHOLD_CHECK_MIN_BREACHES, ENV_THRESHOLD_CHECK_RULE_NAME,
    ENV_THRESHOLD_LOOKBACK_MINUTES,
)
from patternwatch_shared.names.metrics import (
    METRIC_EVENTS_REJECTED, METRIC_PATTERN_ITEMS_SKIPPED, METRIC_PATTERNS_EVALUATED, METRIC_THRESHOLD_CHECKS,
)
from patternwatch_shared.names.table import ALERT_STATE_NOT_REQUIRED
from patternwatch_shared.storage import StoredPattern, TradingPatternsTable
from threshold_checker import handler

NOW = datetime(2026, 3, 2, 0, 2, 0, tzinfo=timezone.utc)  # two minutes after midnight: spans two GSI days


def store(resources, symbol: str, pattern: str, confidence: float, detected_at: datetime, end: int = 1_700_000_000) -> None:
    table = TradingPatternsTable(resources.dynamodb, "TradingPatterns-test")
    table.put_pattern_once(
        StoredPattern(
            symbol=symbol,
            pattern=pattern,
            confidence=confidence,
            start_timestamp=end - 3000,
            end_timestamp=end,
            detected_at=detected_at,
            severity="HIGH",
            alert_state=ALERT_STATE_NOT_REQUIRED,
        )
    )


def test_exceeded_threshold_queues_one_alert_from_a_gsi_query(aws_resources, lambda_context, capsys):
    store(aws_resources, "AAPL", "double-top", 0.95, NOW - timedelta(minutes=3))  # yesterday's partition
    store(aws_resources, "MSFT", "head-and-shoulders", 0.97, NOW - timedelta(minutes=1))
    store(aws_resources, "NVDA", "ascending-triangle", 0.92, NOW)
    store(aws_resources, "AMD", "double-top", 0.50, NOW - timedelta(minutes=2))  # below the confidence threshold
    store(aws_resources, "OLD", "double-top", 0.99, NOW - timedelta(minutes=30))  # outside the window
    recording = RecordingClient(aws_resources.dynamodb)
    install_client("dynamodb", recording)

    summary = handler.lambda_handler(scheduled_event(NOW), lambda_context)

    assert "scan" not in recording.operations and recording.operations.count("query") == 2
    assert summary["evaluated"] == 4 and summary["breaches"] == 3 and summary["exceeded"] is True
    alerts = aws_resources.drain(aws_resources.alert_queue_url)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["source"] == "threshold" and alert["severity"] == "HIGH"
    assert alert["details"]["breaches"] == 3 and alert["details"]["topSymbol"] == "MSFT"
    assert alert["alertId"] == summary["alertId"] == "threshold#2026-03-02T00:02:00.000000Z"
    out = capsys.readouterr().out
    assert metric_values(out, METRIC_THRESHOLD_CHECKS) == [1.0]
    assert metric_values(out, METRIC_PATTERNS_EVALUATED) == [4.0]


def test_below_threshold_queues_nothing(aws_resources, lambda_context, capsys):
    store(aws_resources, "AAPL", "double-top", 0.95, NOW - timedelta(minutes=1))
    store(aws_resources, "MSFT", "double-top", 0.96, NOW - timedelta(minutes=1))
    summary = handler.lambda_handler(scheduled_event(NOW), lambda_context)
    assert (summary["breaches"], summary["exceeded"], summary["alertId"]) == (2, False, None)  # 2 breaches, 3 needed
    assert aws_resources.drain(aws_resources.alert_queue_url) == []
    assert metric_values(capsys.readouterr().out, METRIC_THRESHOLD_CHECKS) == [1.0]


def test_a_pattern_exactly_at_the_threshold_is_a_breach(aws_resources, lambda_context):
    """The same inclusive cut (>=) as the stream's events, the rule and the workflow's decision."""
    for i, symbol in enumerate(("AAPL", "MSFT", "NVDA")):
        store(aws_resources, symbol, "double-top", 0.9, NOW - timedelta(minutes=1), end=1_700_000_000 + i)
    summary = handler.lambda_handler(scheduled_event(NOW), lambda_context)
    assert (summary["breaches"], summary["exceeded"]) == (3, True)  # THRESHOLD_CHECK_MIN_BREACHES is 3 here
    (alert,) = aws_resources.drain(aws_resources.alert_queue_url)
    assert alert["details"]["minBreaches"] == 3 and alert["details"]["confidenceThreshold"] == 0.9


def test_many_recent_patterns_are_read_page_by_page(aws_resources, lambda_context, monkeypatch):
    for i in range(30):
        store(aws_resources, f"S{i}", "double-top", 0.99, NOW - timedelta(seconds=i), end=1_700_000_000 + i)
    real_query = aws_resources.dynamodb.query

    class SmallPages:
        def __getattr__(self, name):
            return getattr(aws_resources.dynamodb, name)

        def query(self, **request):
            return real_query(**request, Limit=7)

    install_client("dynamodb", SmallPages())
    summary = handler.lambda_handler(scheduled_event(NOW), lambda_context)
    assert summary["evaluated"] == 30


@pytest.fixture(autouse=True)
def clock_at_now(monkeypatch):
    """The handler's clock reads NOW: a scheduled event's time must be close to it."""
    monkeypatch.setattr(handler, "utc_now", lambda: NOW)


def rule_arn(name: str) -> str:
    return f"arn:aws:events:us-east-1:123456789012:rule/{name}"


FOREIGN_EVENTS = {
    "empty": ({}, "not an EventBridge event"),
    "not an object": ("a string", "not an EventBridge event"),
    "a list": ([scheduled_event(NOW)], "not an EventBridge event"),
    "half an event": ({"detail-type": "Scheduled Event", "source": "aws.events"}, "not an EventBridge event"),
    "bad time": ({**scheduled_event(NOW), "time": "not a time"}, "not an EventBridge event"),
    "an S3 event": ({**scheduled_event(NOW), "source": "aws.s3", "detail-type": "Object Created"}, "source 'aws.s3'"),
    "another detail-type": ({**scheduled_event(NOW), "detail-type": "PatternDetected"}, "detail-type 'PatternDetected'"),
    "another rule": ({**scheduled_event(NOW), "resources": [rule_arn("someone-elses-rule")]}, "not from rule threshold-check-test"),
    "a rule with our name as a suffix": ({**scheduled_event(NOW), "resources": [rule_arn("x-threshold-check-test")]}, "not from rule"),
    "no resources": ({**scheduled_event(NOW), "resources": []}, "not from rule"),
    "year 1": ({**scheduled_event(NOW), "time": "0001-01-01T00:00:00Z"}, "time 0001-01-01T00:00:00+00:00 is not within"),
    "year 9999": ({**scheduled_event(NOW), "time": "9999-12-31T23:59:59Z"}, "is not within"),
    "two days old": (scheduled_event(NOW - timedelta(days=2)), "is not within"),
    "an hour ahead": (scheduled_event(NOW + timedelta(hours=1)), "is not within"),
}


@pytest.mark.parametrize(("event", "reason"), FOREIGN_EVENTS.values(), ids=FOREIGN_EVENTS.keys())
def test_an_event_that_is_not_its_own_schedule_is_refused_with_a_logged_reason(aws_resources, lambda_context, capsys, event, reason):
    import io
    import json

    recording = RecordingClient(aws_resources.dynamodb)
    install_client("dynamodb", recording)
    stream = handler.logger.registered_handler.setStream(buffer := io.StringIO())
    try:
        answer = handler.lambda_handler(event, lambda_context)
    finally:
        handler.logger.registered_handler.setStream(stream)
    assert reason in answer["rejected"]
    assert recording.operations == []
    assert aws_resources.drain(aws_resources.alert_queue_url) == []
    logged = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [line["reason"] for line in logged if line["message"] == "event rejected"] == [answer["rejected"]]
    assert metric_values(capsys.readouterr().out, METRIC_EVENTS_REJECTED) == [1.0]


def test_its_own_schedule_is_accepted_up_to_a_day_late_as_eventbridge_retries_it(aws_resources, lambda_context):
    for late in (timedelta(0), timedelta(hours=23), timedelta(minutes=-4)):
        summary = handler.lambda_handler(scheduled_event(NOW - late), lambda_context)
        assert "rejected" not in summary and summary["windowEnd"] == (NOW - late).isoformat()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (ENV_THRESHOLD_CHECK_MIN_BREACHES, "many", "not a whole number"),
        (ENV_THRESHOLD_CHECK_MIN_BREACHES, "0", "not a whole number of at least 1"),
        (ENV_THRESHOLD_CHECK_MIN_BREACHES, "2.5", "not a whole number"),
        (ENV_ALERT_CONFIDENCE_THRESHOLD, "1.5", "above"),
        (ENV_THRESHOLD_CHECK_MIN_BREACHES, "", "not set"),
        (ENV_THRESHOLD_CHECK_RULE_NAME, "", "not set"),
        (ENV_THRESHOLD_LOOKBACK_MINUTES, "1e300", "above"),  # would overflow the window's start
    ],
)
def test_misconfiguration_is_a_clear_error(aws_resources, lambda_context, monkeypatch, key, value, message):
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError, match=message):
        handler.lambda_handler(scheduled_event(NOW), lambda_context)


def test_queue_fault_raises_so_the_scheduled_run_is_retried_with_the_same_alert_id(aws_resources, lambda_context):
    from lambda_testkit import FlakyClient

    for i in range(3):
        store(aws_resources, f"S{i}", "double-top", 0.99, NOW - timedelta(seconds=i), end=1_700_000_000 + i)
    install_client("sqs", FlakyClient(aws_resources.sqs, "send_message_batch", failing_calls={1}))
    with pytest.raises(RuntimeError, match="could not queue threshold alert"):
        handler.lambda_handler(scheduled_event(NOW), lambda_context)
    summary = handler.lambda_handler(scheduled_event(NOW), lambda_context)
    assert [a["alertId"] for a in aws_resources.drain(aws_resources.alert_queue_url)] == [summary["alertId"]]


def test_index_items_without_pattern_or_confidence_are_skipped_and_counted(aws_resources, lambda_context, capsys):
    for i in range(3):
        store(aws_resources, f"S{i}", "double-top", 0.99, NOW - timedelta(seconds=i), end=1_700_000_000 + i)
    complete = aws_resources.table_items()[0]
    broken = {
        "pattern": {k: v for k, v in complete.items() if k != "pattern"},
        "confidence": {k: v for k, v in complete.items() if k != "confidence"},
        "confidence as text": {**complete, "confidence": {"S": "high"}},
        "symbol": {k: v for k, v in complete.items() if k != "symbol"},
    }
    for index, (what, item) in enumerate(broken.items()):
        item = {**item, "SK": {"S": f"broken-{index}"}, "GSI1SK": {"S": f"{complete['GSI1SK']['S'][:27]}#BROKEN{index}#{what}"}}
        aws_resources.dynamodb.put_item(TableName="TradingPatterns-test", Item=item)

    summary = handler.lambda_handler(scheduled_event(NOW), lambda_context)

    assert (summary["evaluated"], summary["breaches"], summary["exceeded"], summary["skipped"]) == (3, 3, True, 4)
    assert len(aws_resources.drain(aws_resources.alert_queue_url)) == 1
    assert metric_values(capsys.readouterr().out, METRIC_PATTERN_ITEMS_SKIPPED) == [4.0]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"pattern": None}, "attribute 'pattern' is missing or not of type S"),
        ({"confidence": {"S": "0.9"}}, "attribute 'confidence' is missing or not of type N"),
        ({"detectedAt": "2026"}, "attribute 'detectedAt' is missing or not of type S"),
        ({"extrema": {"L": [{"M": {}}]}}, "attribute extrema"),
    ],
)
def test_an_unreadable_pattern_item_names_its_attribute(change, reason):
    from patternwatch_shared.storage import UnreadableItem, pattern_from_item

    item = StoredPattern("AAPL", "double-top", 0.9, 1_700_000_000, 1_700_003_000, NOW, "HIGH", ALERT_STATE_NOT_REQUIRED).to_item()
    item = {key: value for key, value in {**item, **change}.items() if value is not None}
    with pytest.raises(UnreadableItem, match=re.escape(reason)):
        pattern_from_item(item)
