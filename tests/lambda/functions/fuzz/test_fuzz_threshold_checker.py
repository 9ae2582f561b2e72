"""Fuzzing threshold-checker: its own schedule's events and every other event, over generated index items.

For every generated case: the handler answers (an exception would make EventBridge retry an event
that can never succeed); a foreign event is rejected with a reason and reads nothing; the schedule's
event counts exactly the readable items of its window, skips and counts the unreadable ones, and
queues one alert exactly when at least THRESHOLD_CHECK_MIN_BREACHES of them breach; a redelivered event gives the
same summary and the same alert id (alert-processor delivers an id once).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_support import EVENTS_PER_HANDLER, count_event, fuzz, tally
from lambda_testkit import TRADING_PATTERNS, scheduled_event
from patternwatch_shared import keys
from patternwatch_shared.storage import StoredPattern
from threshold_checker import handler

HANDLER = "threshold-checker"
NOW = datetime(2026, 3, 2, 0, 2, 0, tzinfo=timezone.utc)  # the 5-minute window spans two index days
LOOKBACK = timedelta(minutes=5)
MIN_BREACHES, CONFIDENCE_THRESHOLD = 3, 0.9  # as the test environment sets them


@pytest.fixture(autouse=True)
def clock_at_now(monkeypatch):
    monkeypatch.setattr(handler, "utc_now", lambda: NOW)


@st.composite
def index_items(draw) -> tuple[dict, datetime, float | None]:
    """(a RecentPatternsIndex item, when it was detected, its confidence if it is readable, else None)."""
    detected = NOW - timedelta(seconds=draw(st.integers(-60, 900)))
    stored = StoredPattern(
        symbol=draw(st.sampled_from(("AAPL", "MSFT", "BRK.B"))), pattern=draw(st.sampled_from(("double-top", "head-and-shoulders"))),
        # What DynamoDB can store: 0 or 1e-130 and up (the engine's scores are 0 or above ~1e-18).
        confidence=draw(st.one_of(st.just(0.0), st.just(CONFIDENCE_THRESHOLD), st.floats(1e-130, 1))), start_timestamp=1_700_000_000, end_timestamp=1_700_000_000 + draw(st.integers(0, 10**6)),
        detected_at=detected, severity="HIGH", alert_state="QUEUED",
    )
    item = stored.to_item()
    broken = draw(st.sampled_from((None, None, "pattern", "confidence", "symbol", "detectedAt", "confidence as text", "extrema")))
    if broken is None:
        return item, detected, stored.confidence
    if broken == "confidence as text":
        item["confidence"] = {"S": "high"}
    elif broken == "extrema":
        item["extrema"] = {"L": [{"M": {"price": {"S": "x"}}}]}
    else:
        del item[broken]
    return item, detected, None


@st.composite
def events(draw) -> tuple[object, datetime | None]:
    """(an event, the window's end if it is the schedule's own event, else None)."""
    late = timedelta(seconds=draw(st.sampled_from((0, 1, 120, 299, 300, 3_600, 29 * 3_600))))
    own = scheduled_event(NOW - late)
    if draw(st.booleans()):
        return own, NOW - late
    foreign = draw(st.sampled_from((
        {**own, "source": "aws.s3"}, {**own, "detail-type": "Object Created"}, {**own, "resources": []},
        {**own, "resources": ["arn:aws:events:us-east-1:123456789012:rule/other"]},
        {**own, "resources": ["arn:aws:events:us-east-1:123456789012:rule/threshold-check-test/extra"]},
        {**own, "time": "0001-01-01T00:00:00Z"}, {**own, "time": "0001-01-01T00:00:00+05:00"},
        {**own, "time": "9999-12-31T23:59:59Z"}, {**own, "time": "2026-03-02T00:02:00"}, {**own, "time": "soon"},
        scheduled_event(NOW - timedelta(hours=31)), scheduled_event(NOW + timedelta(minutes=6)),
        {k: v for k, v in own.items() if k != "detail-type"}, {}, [], "tick", None, 7,
    )))
    return foreign, None


def test_only_its_schedule_runs_a_check_and_the_check_counts_what_it_can_read(platform, lambda_context):
    @fuzz()
    @given(items=st.lists(index_items(), max_size=5), request=events())
    def check(items, request):
        platform.clear(trading_patterns=True, queues=[platform.resources.alert_queue_url])
        platform.put_items(TRADING_PATTERNS, [item for item, _, _ in items])
        event, window_end = request
        counts = count_event(HANDLER, len(items))

        answers = []
        for _ in range(2):  # EventBridge and Lambda retry asynchronous events: the same answer
            answers.append(handler.lambda_handler(event, lambda_context))
            counts.deliveries += 1
        assert answers[0] == answers[1]
        summary = answers[0]
        queued = platform.messages(platform.resources.alert_queue_url)
        if window_end is None:
            assert set(summary) == {"rejected"} and summary["rejected"]
            assert queued == []
            return
        latest = {(item["PK"]["S"], item["SK"]["S"]): (detected, confidence) for item, detected, confidence in items}  # a put replaces
        in_window = [confidence for detected, confidence in latest.values() if window_end - LOOKBACK <= detected <= window_end]
        readable = [c for c in in_window if c is not None]
        breaches = [c for c in readable if c >= CONFIDENCE_THRESHOLD]
        assert (summary["evaluated"], summary["skipped"], summary["breaches"]) == (len(readable), len(in_window) - len(readable), len(breaches))
        assert summary["exceeded"] is (len(breaches) >= MIN_BREACHES)
        if summary["exceeded"]:
            assert [alert["alertId"] for alert in queued] == [f"threshold#{keys.iso_utc(window_end)}"] * 2
        else:
            assert queued == []

    check()
    assert tally(HANDLER).events >= EVENTS_PER_HANDLER
