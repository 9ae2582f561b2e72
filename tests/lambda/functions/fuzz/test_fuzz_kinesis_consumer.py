"""Fuzzing kinesis-consumer: mixed batches of valid bars and every kind of bad record.

For every generated batch: the handler answers (a Kinesis batch has no retry signal but its item
failures, so nothing may escape); exactly the bad records are item failures; every good record's bar
is stored with its values (the last of a repeated symbol and time); a redelivery changes nothing
and emits no PatternDetected event again; two deliveries at once store everything once.
"""
from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from fuzz_support import (
    EVENTS_PER_HANDLER, NUMBER_FIELDS, T0, FuzzPlatform, b64, bad_records, count_event, deliver_at_once, epoch_seconds,
    fuzz, stream_records, tally, valid_bars,
)
from kinesis_consumer import handler
from lambda_testkit import TRADING_PATTERNS, failed_ids, kinesis_event, sequence_numbers
from patternwatch_shared.names.messages import EVENT_FIELD_ALERT_ID

HANDLER = "kinesis-consumer"


def expected_outcome(records: list[tuple[object, dict | None]], event: dict) -> tuple[set[str], dict[tuple[str, int], dict]]:
    """The sequence numbers that must fail, and the bars that must be stored (the last one per key)."""
    failing = {seq for seq, (_, bar) in zip(sequence_numbers(event), records) if bar is None}
    stored: dict[tuple[str, int], dict] = {}
    for _, bar in records:
        if bar is not None:
            stored[(bar["symbol"], epoch_seconds(bar["timestamp"]))] = bar
    return failing, stored


def deliver_and_check(platform: FuzzPlatform, event: dict, context, failing: set[str], stored: dict) -> list[dict]:
    response = handler.lambda_handler(event, context)
    tally(HANDLER).deliveries += 1
    assert set(response) == {"batchItemFailures"}
    assert set(failed_ids(response)) == failing
    items = platform.bar_items(stored)
    assert [(i["symbol"]["S"], int(i["timestamp"]["N"])) for i in items] == sorted(stored)
    for item in items:
        bar = stored[(item["symbol"]["S"], int(item["timestamp"]["N"]))]
        assert [float(item[f]["N"]) for f in NUMBER_FIELDS] == [float(bar[f]) for f in NUMBER_FIELDS]
    return items


def test_every_valid_record_is_stored_and_every_bad_one_reported_also_on_redelivery(platform, lambda_context):
    # Batches this small never reach the engine's window, so nothing is detected here; detection,
    # pattern writes and PatternDetected events under redelivery are the next test's.
    @fuzz()
    @given(records=st.lists(stream_records(), max_size=6))
    @example(records=[])  # an empty batch
    def deliver(records):
        platform.clear(trading_patterns=True)
        event = kinesis_event([data for data, _ in records]) if records else {"Records": []}
        count_event(HANDLER, len(records))
        failing, stored = expected_outcome(records, event)

        first = deliver_and_check(platform, event, lambda_context, failing, stored)
        # Kinesis delivers a batch again after a timeout or a partial failure: nothing changes.
        assert deliver_and_check(platform, event, lambda_context, failing, stored) == first

    deliver()
    assert tally(HANDLER).events >= EVENTS_PER_HANDLER


def test_two_deliveries_of_one_batch_at_once_store_it_once(platform, lambda_context):
    # Concurrent copies of one batch (a retry overlapping a slow first attempt), each in its own
    # handler copy as in two Lambda environments. The batch completes a planted pattern whose
    # history is already stored, so that detection and the pattern writes race too.
    from lambda_testkit import planted_bars
    from patternwatch_shared.models import Bar
    from patternwatch_shared.storage import TradingPatternsTable

    history, end = planted_bars("HNS")
    history_records = [(b64(json.dumps(bar)), bar) for bar in history]

    @fuzz(15)
    @given(records=st.lists(stream_records(), max_size=6), last=st.integers(end - 2, end + 2))
    def deliver_twice(records, last):
        platform.clear(trading_patterns=True, queues=[platform.resources.pattern_events_inbox])
        TradingPatternsTable(platform.resources.dynamodb, TRADING_PATTERNS).put_bars([Bar(**bar) for bar in history[: end - 2]])
        mixed = history_records[end - 2 : last + 1] + records
        event = kinesis_event([data for data, _ in mixed])
        count_event(HANDLER, len(mixed))
        failing, stored = expected_outcome(mixed, event)

        responses = deliver_at_once("kinesis_consumer", HANDLER, [event, event], lambda_context)
        assert [set(failed_ids(response)) for response in responses] == [failing, failing]
        assert len(platform.bar_items(stored)) == len(stored)
        patterns = platform.pattern_items({symbol for symbol, _ in stored})
        assert ("HNS", "head-and-shoulders") in {(p["symbol"]["S"], p["pattern"]["S"]) for p in patterns} or last < end
        assert len({p["SK"]["S"] for p in patterns}) == len(patterns)
        # Both copies may emit a pattern's PatternDetected event (delivery is at-least-once); it
        # carries the same alert id, and alert-processor delivers an id once (test_fuzz_alert_processor).
        emitted = platform.messages(platform.resources.pattern_events_inbox)
        assert {e["detail"][EVENT_FIELD_ALERT_ID] for e in emitted} <= {f"{p['symbol']['S']}#{p['SK']['S']}" for p in patterns}
        # A later redelivery adds nothing.
        deliver_and_check(platform, event, lambda_context, failing, stored)
        assert platform.pattern_items({symbol for symbol, _ in stored}) == patterns
        assert platform.messages(platform.resources.pattern_events_inbox) == []

    deliver_twice()


def test_a_batch_of_10000_records_keeps_every_valid_one_and_reports_every_bad_one(platform, lambda_context):
    # 10,000 records: 1,000 bars (5 symbols x 200 minutes) each sent four times, as a producer
    # resending after timeouts would, and 6,000 bad records, interleaved.
    @fuzz(1)
    @given(shapes=st.lists(valid_bars(), min_size=5, max_size=5), bad=st.lists(bad_records(), min_size=40, max_size=40))
    def deliver_huge(shapes, bad):
        platform.clear(trading_patterns=True, queues=[platform.resources.pattern_events_inbox])
        bars = [dict(shapes[i % 5], symbol=f"S{i % 5}", timestamp=T0 + 60 * (i // 5)) for i in range(1_000)]
        records = [(b64(json.dumps(bar)), bar) for bar in bars] * 4
        records += [bad[i % 40] for i in range(6_000)]
        records = [records[(i * 7_919) % 10_000] for i in range(10_000)]  # interleaved: 7,919 is prime
        event = kinesis_event([data for data, _ in records])
        count_event(HANDLER, len(records))
        failing, stored = expected_outcome(records, event)
        assert (len(failing), len(stored)) == (6_000, 1_000)

        response = handler.lambda_handler(event, lambda_context)
        tally(HANDLER).deliveries += 1
        assert set(failed_ids(response)) == failing
        assert [stored_count(platform, f"S{i}") for i in range(5)] == [200] * 5
        sample = sorted(stored)[::47]
        assert [float(i["close"]["N"]) for i in platform.bar_items(sample)] == [stored[key]["close"] for key in sample]

    deliver_huge()


def stored_count(platform: FuzzPlatform, symbol: str) -> int:
    response = platform.resources.dynamodb.query(
        TableName=TRADING_PATTERNS,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"BAR#{symbol}"}},
        Select="COUNT",
    )
    assert "LastEvaluatedKey" not in response
    return response["Count"]
