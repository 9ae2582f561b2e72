"""PatternDetected events: the detail schema, its worst-case size, batching and retries (no AWS)."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from lambda_testkit import pattern_event_detail, planted_bars
from patternwatch_shared import keys
from patternwatch_shared.detection import COLUMNS, detect_in
from patternwatch_shared.models import PatternDetectedDetail
from patternwatch_shared.names.messages import (
    DETECTION_CONTEXT_BARS, EVENT_DETAIL_TYPE_PATTERN_DETECTED, EVENT_SOURCE_PATTERNS, PATTERN_DETECTED_FIELDS,
    PATTERN_FAMILIES,
)
from patternwatch_shared.pattern_events import (
    PUT_EVENTS_MAX_BYTES, PUT_EVENTS_MAX_ENTRIES, PatternEvents, batches, entry_size, event_entry,
    pattern_detected_detail,
)


def test_the_families_partition_the_engine_s_patterns_headed_by_the_seed_s_three():
    import pattern_engine

    members = [pattern for patterns in PATTERN_FAMILIES.values() for pattern in patterns]
    assert sorted(members) == sorted(pattern_engine.PATTERN_NAMES)  # all 13, none twice
    assert len(members) == len(set(members)) == 13
    assert list(PATTERN_FAMILIES) == ["head-and-shoulders", "double-top", "ascending-triangle"]
    assert all(family == patterns[0] for family, patterns in PATTERN_FAMILIES.items())
    assert all(len(patterns) > 1 for patterns in PATTERN_FAMILIES.values())


def test_the_detail_schema_is_the_documented_field_list():
    assert set(PatternDetectedDetail.model_fields) == set(PATTERN_DETECTED_FIELDS)
    detail = pattern_event_detail("SCHEMA")
    assert set(detail) == set(PATTERN_DETECTED_FIELDS)


def test_the_detail_carries_the_stream_s_match_and_its_detection_context():
    bars, end = planted_bars("CTX")
    columns = {field: [bar[field] for bar in bars] for field in COLUMNS}
    detection = next(d for d in detect_in(columns) if d.pattern == "head-and-shoulders" and d.end == end)
    moment = datetime(2026, 3, 2, 12, 30, tzinfo=timezone.utc)
    detail = pattern_detected_detail("CTX", detection, moment, columns)
    assert detail.alertId == keys.alert_id("CTX", keys.pattern_sort_key(bars[end]["timestamp"], "head-and-shoulders"))
    assert (detail.confidence, detail.startTimestamp, detail.endTimestamp) == (
        detection.confidence, detection.start_timestamp, detection.end_timestamp)
    assert detail.detectedAt == "2026-03-02T12:30:00.000000Z"
    assert [tuple(point) for point in detail.extrema] == list(detection.extrema)
    assert [bar.timestamp for bar in detail.bars] == columns["timestamp"][end + 1 - DETECTION_CONTEXT_BARS : end + 1]
    # Re-running the engine over the event's bars reports the same match, to the bit.
    again = [d for d in detect_in([bar.model_dump() for bar in detail.bars]) if d.pattern == detection.pattern]
    assert [(d.confidence, d.start_timestamp, d.end_timestamp, d.extrema) for d in again if d.end_timestamp == detail.endTimestamp] == [
        (detection.confidence, detection.start_timestamp, detection.end_timestamp, detection.extrema)]


def test_a_match_near_the_start_of_a_history_sends_the_bars_there_are():
    bars, end = planted_bars("EARLY")
    start = end + 1 - 40  # only 40 bars of history up to the match's bar
    columns = {field: [bar[field] for bar in bars[start : end + 1]] for field in COLUMNS}
    detection = next(d for d in detect_in(columns, latest_only=True) if d.pattern == "head-and-shoulders")
    detail = pattern_detected_detail("EARLY", detection, datetime(2026, 3, 2, tzinfo=timezone.utc), columns)
    assert len(detail.bars) == 40 and detail.bars[-1].timestamp == bars[end]["timestamp"]


def worst_case_detail() -> PatternDetectedDetail:
    """The largest detail the model admits: longest names, 43 bars, every number at its longest JSON spelling."""
    # 1.0000000000000003e-130: 23 characters, as long as any float gets (sys.float_info.max too), and
    # one DynamoDB can store, as the models require.
    longest = math.nextafter(1e-130, 1)
    end = 32_503_680_000  # the largest epoch seconds accepted (11 digits)
    times = [end - DETECTION_CONTEXT_BARS + 1 + i for i in range(DETECTION_CONTEXT_BARS)]
    symbol, pattern = "A" * 12, "p" + "-x" * 31 + "y"  # 12 and 64 characters, the models' limits
    return PatternDetectedDetail.model_validate({
        "symbol": symbol, "pattern": pattern, "confidence": 1.2345678901234567e-05,  # 0.000012345678901234568
        "startTimestamp": times[0], "endTimestamp": end, "detectedAt": "2026-12-01T16:05:00.206724+00:00",
        "alertId": keys.alert_id(symbol, keys.pattern_sort_key(end, pattern)),
        "extrema": [[t, longest] for t in times[:5]],
        "bars": [{"timestamp": t, "open": longest, "high": longest, "low": longest, "close": longest, "volume": longest} for t in times],
    })


def test_the_worst_case_detail_is_far_under_eventbridge_s_limits():
    size = entry_size(event_entry(worst_case_detail()))
    assert size < 9 * 1024  # about 8.5 KB (README "The PatternDetected event")
    # Ten of them, a full PutEvents call, still fit one request.
    assert PUT_EVENTS_MAX_ENTRIES * size < PUT_EVENTS_MAX_BYTES


def test_an_entry_is_for_the_default_bus_and_sized_as_eventbridge_counts_it():
    entry = event_entry(PatternDetectedDetail.model_validate(pattern_event_detail("SIZE")))
    assert entry["Source"] == EVENT_SOURCE_PATTERNS and entry["DetailType"] == EVENT_DETAIL_TYPE_PATTERN_DETECTED
    assert "EventBusName" not in entry
    assert json.loads(entry["Detail"])["symbol"] == "SIZE"
    assert entry_size(entry) == len(EVENT_SOURCE_PATTERNS) + len(EVENT_DETAIL_TYPE_PATTERN_DETECTED) + len(entry["Detail"])
    assert entry_size({"Source": "s", "DetailType": "d", "Detail": "é", "Time": "x", "Resources": ["ab"]}) == 1 + 1 + 2 + 14 + 2


def fake_entries(sizes: list[int]) -> list[dict]:
    return [{"Source": "", "DetailType": "", "Detail": "x" * size} for size in sizes]


def test_batches_hold_at_most_ten_entries_and_256_kb_in_order():
    assert list(batches(fake_entries([10] * 23))) == [list(range(10)), list(range(10, 20)), [20, 21, 22]]
    big = 100 * 1024
    assert list(batches(fake_entries([big, big, big, 10]))) == [[0, 1], [2, 3]]
    assert list(batches([])) == []
    with pytest.raises(ValueError, match="exceeds EventBridge"):
        list(batches(fake_entries([PUT_EVENTS_MAX_BYTES])))


class ScriptedEvents:
    """PutEvents answers from a script: per call, the set of entry positions to refuse, or an exception."""

    def __init__(self, script: list):
        self.script = script
        self.calls: list[list[str]] = []

    def put_events(self, Entries):
        self.calls.append([json.loads(entry["Detail"])["alertId"] for entry in Entries])
        step = self.script.pop(0) if self.script else set()
        if isinstance(step, Exception):
            raise step
        return {"FailedEntryCount": len(step), "Entries": [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"} if position in step else {"EventId": f"e{position}"}
            for position in range(len(Entries))]}


def details(count: int) -> list[PatternDetectedDetail]:
    """`count` events for the same planted match on different symbols."""
    base = pattern_event_detail("BATCH")
    sort_key = keys.pattern_sort_key(base["endTimestamp"], base["pattern"])
    return [PatternDetectedDetail.model_validate({**base, "symbol": f"S{i}", "alertId": keys.alert_id(f"S{i}", sort_key)})
            for i in range(count)]


def test_only_refused_entries_are_sent_again_and_ten_go_in_one_call():
    events = ScriptedEvents([{1}, set(), {1}])
    sent = details(12)
    assert PatternEvents(events, sleep=lambda _: None).put(sent) == set()
    ids = [d.alertId for d in sent]
    assert events.calls == [ids[:10], [ids[1]], ids[10:], [ids[11]]]


def test_entries_still_refused_after_the_attempts_are_reported():
    sleeps = []
    events = ScriptedEvents([{0}, {0}, {0}])
    sent = details(2)
    assert PatternEvents(events, sleep=sleeps.append).put(sent) == {sent[0].alertId}
    assert len(events.calls) == 3 and sleeps == [0.1, 0.2]


def test_an_aws_error_is_retried_and_then_reported_while_a_bug_is_raised():
    error = ClientError({"Error": {"Code": "InternalException", "Message": "boom"}}, "PutEvents")
    sent = details(3)
    assert PatternEvents(ScriptedEvents([error, error, error]), sleep=lambda _: None).put(sent) == {d.alertId for d in sent}
    assert PatternEvents(ScriptedEvents([error]), sleep=lambda _: None).put(sent) == set()
    with pytest.raises(TypeError):
        PatternEvents(ScriptedEvents([TypeError("a bug")]), sleep=lambda _: None).put(sent)


def test_an_entry_without_an_answer_counts_as_not_put():
    class ShortAnswer:
        def put_events(self, Entries):
            return {"FailedEntryCount": 0, "Entries": []}

    sent = details(1)
    assert PatternEvents(ShortAnswer(), sleep=lambda _: None).put(sent) == {sent[0].alertId}
