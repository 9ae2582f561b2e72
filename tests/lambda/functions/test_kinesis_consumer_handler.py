"""kinesis-consumer with real Kinesis event shapes, against moto in process (DynamoDB, EventBridge, SQS)."""
from __future__ import annotations

import json

import pytest

from kinesis_consumer import handler
from lambda_testkit import (
    FlakyClient,
    RecordingClient,
    b64,
    bar_json,
    deliver_like_kinesis,
    failed_ids,
    flat_bars,
    install_client,
    kinesis_bars_event,
    kinesis_event,
    metric_values,
    planted_bars,
    sequence_numbers,
)
from patternwatch_shared.names.messages import DETECTION_CONTEXT_BARS
from patternwatch_shared.names.metrics import (
    METRIC_CONFIDENCE_SCORE, METRIC_PATTERN_DETECTION_DURATION, METRIC_PATTERN_EVENTS_EMITTED, METRIC_RECORDS_REJECTED,
)

T0 = 1_700_000_000


def stored_bars(resources, symbol):
    return [i for i in resources.table_items() if i["PK"]["S"] == f"BAR#{symbol}"]


def stored_patterns(resources):
    return [i for i in resources.table_items() if i["PK"]["S"].startswith("PATTERN#")]


def test_valid_batch_stores_every_bar_under_its_key(aws_resources, lambda_context):
    bars = [bar_json(symbol, T0 + 60 * i, 100.0 + i) for symbol in ("AAPL", "MSFT", "BRK.B") for i in range(5)]
    response = handler.lambda_handler(kinesis_bars_event(bars), lambda_context)
    assert response == {"batchItemFailures": []}
    items = stored_bars(aws_resources, "BRK.B")
    assert sorted(i["SK"]["S"] for i in items) == [str(T0 + 60 * i).zfill(12) for i in range(5)]
    assert items[0]["close"]["N"] in {repr(100.0 + i) for i in range(5)}
    assert len(aws_resources.table_items()) == 15


def test_bad_records_fail_alone_and_no_valid_record_is_lost(aws_resources, lambda_context):
    good = [bar_json("AAPL", T0 + 60 * i, 10.0 + i) for i in range(4)]
    bad = [
        "!!!not base64!!!",
        b64("not json at all"),
        b64({k: v for k, v in bar_json("AAPL", T0, 10.0).items() if k != "close"}),
        b64(bar_json("AAPL", T0, 10.0, exchange="XNAS")),
        b64(bar_json("AAPL", T0, 10.0, open="10")),
        b64('{"symbol":"AAPL","timestamp":1700000000,"open":NaN,"high":11,"low":9,"close":10,"volume":1}'),
        b64(bar_json("AAPL", T0, -10.0, high=-9.0, low=-11.0)),
        b64(bar_json("AAPL", T0, 0.0, high=0.0, low=0.0)),
        b64(bar_json("AAPL", T0, 10.0, high=9.0, low=9.5)),
        b64(bar_json("A" * 5000, T0, 10.0)),
    ]
    # Interleave so bad records sit before, between and after the good ones.
    datas = [bad[0], b64(good[0]), *bad[1:5], b64(good[1]), b64(good[2]), *bad[5:], b64(good[3])]
    event = kinesis_event(datas)
    response = handler.lambda_handler(event, lambda_context)

    seqs = sequence_numbers(event)
    expected_failures = [seq for seq, data in zip(seqs, datas) if data in bad]
    assert failed_ids(response) == expected_failures
    assert len(stored_bars(aws_resources, "AAPL")) == 4


def test_a_batch_of_only_bad_records_is_answered_record_by_record(aws_resources, lambda_context, capsys):
    event = kinesis_event(["%%%", b64("[]"), b64("{}")])
    response = handler.lambda_handler(event, lambda_context)
    assert failed_ids(response) == sequence_numbers(event)
    assert metric_values(capsys.readouterr().out, METRIC_RECORDS_REJECTED) == [3.0]


def test_empty_batch_is_answered_without_error(aws_resources, lambda_context):
    assert handler.lambda_handler({"Records": []}, lambda_context) == {"batchItemFailures": []}


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize("event", [{}, {"Records": "nope"}, {"records": []}])
def test_an_event_that_is_not_a_kinesis_batch_is_a_clear_error(aws_resources, lambda_context, event):
    with pytest.raises(ValueError, match="Invalid event format"):
        handler.lambda_handler(event, lambda_context)


def details(resources) -> list[dict]:
    """The details of the PatternDetected events emitted since the last call."""
    return [event["detail"] for event in resources.pattern_events()]


def test_planted_pattern_is_detected_on_its_bar_stored_once_and_emitted_as_an_event(aws_resources, lambda_context, capsys):
    bars, end = planted_bars("HNS")
    history = kinesis_bars_event(bars[:end])
    assert handler.lambda_handler(history, lambda_context) == {"batchItemFailures": []}
    aws_resources.pattern_events()  # whatever the random-walk history produced
    before = {i["SK"]["S"] for i in stored_patterns(aws_resources)}

    recording = RecordingClient(aws_resources.dynamodb)
    install_client("dynamodb", recording)
    capsys.readouterr()
    response = handler.lambda_handler(kinesis_bars_event([bars[end]], first_sequence=1000), lambda_context)

    assert response == {"batchItemFailures": []}
    # The first batch left HNS's newest bars in the window cache, and this bar follows them: no read at all.
    assert "scan" not in recording.operations and "query" not in recording.operations
    new = [i for i in stored_patterns(aws_resources) if i["SK"]["S"] not in before]
    hns = [i for i in new if i["pattern"]["S"] == "head-and-shoulders"]
    assert len(hns) == 1
    item = hns[0]
    end_ts = bars[end]["timestamp"]
    assert item["PK"]["S"] == "PATTERN#HNS"
    assert item["SK"]["S"] == f"{str(end_ts).zfill(12)}#head-and-shoulders"
    assert item["GSI1PK"]["S"].startswith("RECENT#20")
    assert item["GSI1SK"]["S"].endswith("#HNS#head-and-shoulders")
    assert item["alertState"]["S"] == "EVENT_EMITTED"
    assert item["severity"]["S"] == "CRITICAL"
    assert float(item["confidence"]["N"]) > 0.95

    emitted = details(aws_resources)
    (detail,) = [d for d in emitted if d["pattern"] == "head-and-shoulders"]
    assert detail["alertId"] == f"HNS#{item['SK']['S']}" and detail["symbol"] == "HNS"
    assert detail["confidence"] == float(item["confidence"]["N"])
    assert detail["detectedAt"] == item["detectedAt"]["S"]
    assert (detail["startTimestamp"], detail["endTimestamp"]) == (int(item["startTimestamp"]["N"]), end_ts)
    assert detail["extrema"] == [[int(p["M"]["timestamp"]["N"]), float(p["M"]["price"]["N"])] for p in item["extrema"]["L"]]
    # The detection context, oldest first, ending at the match's bar: the stream's own bars, unchanged.
    assert [b["timestamp"] for b in detail["bars"]] == [b["timestamp"] for b in bars[end + 1 - DETECTION_CONTEXT_BARS : end + 1]]
    assert detail["bars"][-1] == {k: v for k, v in bars[end].items() if k != "symbol"}
    assert all(d["confidence"] >= 0.9 for d in emitted)
    # The consumer no longer queues alerts itself: the analysis workflow does.
    assert aws_resources.drain(aws_resources.alert_queue_url) == []

    out = capsys.readouterr().out
    assert metric_values(out, METRIC_CONFIDENCE_SCORE, PatternType="head-and-shoulders")[0] > 95
    assert len(metric_values(out, METRIC_PATTERN_DETECTION_DURATION, PatternType="all")) == 1
    assert metric_values(out, METRIC_PATTERN_EVENTS_EMITTED) == [float(len(emitted))]


def test_catch_up_batch_finds_a_pattern_that_ends_mid_batch_and_sends_its_own_context(aws_resources, lambda_context):
    bars, end = planted_bars("CATCH", seed=1)
    assert end < len(bars) - 1  # the pattern ends before the newest bar of the batch
    response = handler.lambda_handler(kinesis_bars_event(bars), lambda_context)
    assert response == {"batchItemFailures": []}
    end_ts = bars[end]["timestamp"]
    keys = {i["SK"]["S"] for i in stored_patterns(aws_resources)}
    assert f"{str(end_ts).zfill(12)}#head-and-shoulders" in keys
    (detail,) = [d for d in details(aws_resources) if d["pattern"] == "head-and-shoulders" and d["endTimestamp"] == end_ts]
    assert len(detail["bars"]) == DETECTION_CONTEXT_BARS and detail["bars"][-1]["timestamp"] == end_ts


def test_low_confidence_patterns_are_stored_but_not_emitted(aws_resources, lambda_context):
    bars, _ = planted_bars("LOWC", seed=2)
    handler.lambda_handler(kinesis_bars_event(bars), lambda_context)
    patterns = stored_patterns(aws_resources)
    emitted = {d["alertId"] for d in details(aws_resources)}
    assert emitted
    for item in patterns:
        alert_id = f"LOWC#{item['SK']['S']}"
        if float(item["confidence"]["N"]) >= 0.9:
            assert alert_id in emitted and item["alertState"]["S"] == "EVENT_EMITTED"
        else:
            assert alert_id not in emitted and item["alertState"]["S"] == "NOT_REQUIRED"
            assert item["severity"]["S"] in {"MEDIUM", "LOW"}


def test_the_threshold_comes_from_the_environment_and_is_inclusive(aws_resources, lambda_context, monkeypatch):
    bars, end = planted_bars("THRS")
    handler.lambda_handler(kinesis_bars_event(bars[:end]), lambda_context)
    aws_resources.pattern_events()
    probe = kinesis_bars_event([bars[end]], first_sequence=800)
    confidence = next(d for d in _detections_at(bars, end) if d.pattern == "head-and-shoulders").confidence
    # Exactly at the threshold alerts (>=): the same cut the EventBridge rule and the workflow apply.
    monkeypatch.setenv("ALERT_CONFIDENCE_THRESHOLD", repr(confidence))
    assert handler.lambda_handler(probe, lambda_context) == {"batchItemFailures": []}
    assert [d["pattern"] for d in details(aws_resources)] == ["head-and-shoulders"]


def test_a_threshold_above_every_match_emits_nothing(aws_resources, lambda_context, monkeypatch):
    monkeypatch.setenv("ALERT_CONFIDENCE_THRESHOLD", "1.0")
    bars, end = planted_bars("NONE")
    assert handler.lambda_handler(kinesis_bars_event(bars[: end + 1]), lambda_context) == {"batchItemFailures": []}
    assert details(aws_resources) == []
    assert {i["alertState"]["S"] for i in stored_patterns(aws_resources)} == {"NOT_REQUIRED"}


def _detections_at(bars, end):
    from patternwatch_shared.detection import detect_in

    return [d for d in detect_in(bars[: end + 1]) if d.end == end]


def test_retried_and_duplicated_batches_write_nothing_twice(aws_resources, lambda_context):
    bars, end = planted_bars("DUPE")
    event = kinesis_bars_event(bars[: end + 1])
    handler.lambda_handler(event, lambda_context)
    items_after_first = aws_resources.table_items()
    assert details(aws_resources)

    # The same batch again (a retry), then a batch that repeats its last records (a producer resend).
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    resend = kinesis_bars_event(bars[end - 5 : end + 1] * 2, first_sequence=5000)
    assert handler.lambda_handler(resend, lambda_context) == {"batchItemFailures": []}

    assert sorted(map(json.dumps, aws_resources.table_items())) == sorted(map(json.dumps, items_after_first))
    assert details(aws_resources) == []


def test_dynamodb_write_fault_fails_only_that_chunk_and_the_retry_stores_it(aws_resources, lambda_context):
    first = flat_bars("FIRST", 25)  # exactly one BatchWriteItem chunk
    second = flat_bars("SECOND", 10)
    event = kinesis_bars_event(first + second)
    install_client("dynamodb", FlakyClient(aws_resources.dynamodb, "batch_write_item", failing_calls={1}))

    response = handler.lambda_handler(event, lambda_context)

    assert failed_ids(response) == sequence_numbers(event)[:25]
    assert len(stored_bars(aws_resources, "SECOND")) == 10
    assert stored_bars(aws_resources, "FIRST") == []
    # Kinesis re-delivers from the first failed record; the retry succeeds and nothing is lost.
    retry = {"Records": event["Records"][:]}
    assert handler.lambda_handler(retry, lambda_context) == {"batchItemFailures": []}
    assert len(stored_bars(aws_resources, "FIRST")) == 25
    assert len(stored_bars(aws_resources, "SECOND")) == 10


def test_unprocessed_items_are_retried_inside_the_invocation(aws_resources, lambda_context, monkeypatch):
    real = aws_resources.dynamodb
    calls = []

    class Throttling:
        def __getattr__(self, name):
            return getattr(real, name)

        def batch_write_item(self, RequestItems):
            calls.append(1)
            if len(calls) == 1:  # DynamoDB hands back part of the first batch unprocessed
                (table, requests), = RequestItems.items()
                real.batch_write_item(RequestItems={table: requests[:3]})
                return {"UnprocessedItems": {table: requests[3:]}}
            return real.batch_write_item(RequestItems=RequestItems)

    monkeypatch.setattr("patternwatch_shared.storage.UNPROCESSED_BACKOFF_SECONDS", 0)
    install_client("dynamodb", Throttling())
    event = kinesis_bars_event(flat_bars("THR", 10))
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert len(calls) == 2
    assert len(stored_bars(aws_resources, "THR")) == 10


class RefusingEvents:
    """An EventBridge client that refuses every entry of the first `refusals` PutEvents calls, then puts them."""

    def __init__(self, real, refusals: int):
        self._real = real
        self.refusals = refusals
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._real, name)

    def put_events(self, Entries):
        self.calls += 1
        if self.calls <= self.refusals:
            return {"FailedEntryCount": len(Entries),
                    "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"} for _ in Entries]}
        return self._real.put_events(Entries=Entries)


def test_refused_entries_are_retried_inside_the_invocation(aws_resources, lambda_context, monkeypatch):
    monkeypatch.setattr("patternwatch_shared.pattern_events.PUT_EVENTS_BACKOFF_SECONDS", 0)
    bars, end = planted_bars("RETRY")
    handler.lambda_handler(kinesis_bars_event(bars[:end]), lambda_context)
    aws_resources.pattern_events()
    events = RefusingEvents(aws_resources.events, refusals=2)
    install_client("events", events)
    assert handler.lambda_handler(kinesis_bars_event([bars[end]], first_sequence=600), lambda_context) == {"batchItemFailures": []}
    assert events.calls == 3
    assert [d["pattern"] for d in details(aws_resources)] == ["head-and-shoulders"]


@pytest.mark.parametrize("fault", ["refused entries", "failed call"])
def test_an_event_that_cannot_be_put_fails_the_records_and_the_retry_emits_it_once(aws_resources, lambda_context, monkeypatch, fault):
    monkeypatch.setattr("patternwatch_shared.pattern_events.PUT_EVENTS_BACKOFF_SECONDS", 0)
    bars, end = planted_bars("EVTF")
    handler.lambda_handler(kinesis_bars_event(bars[:end]), lambda_context)
    aws_resources.pattern_events()
    last = kinesis_bars_event([bars[end]], first_sequence=900)
    if fault == "refused entries":
        install_client("events", RefusingEvents(aws_resources.events, refusals=3))
    else:
        install_client("events", FlakyClient(aws_resources.events, "put_events", failing_calls={1, 2, 3}))

    response = handler.lambda_handler(last, lambda_context)
    assert failed_ids(response) == sequence_numbers(last)
    pending = [i for i in stored_patterns(aws_resources) if i["alertState"]["S"] == "PENDING"]
    assert [i["pattern"]["S"] for i in pending] == ["head-and-shoulders"]
    assert details(aws_resources) == []

    # Kinesis delivers the records again: the PENDING match is emitted now, and only now.
    assert handler.lambda_handler(last, lambda_context) == {"batchItemFailures": []}
    assert [d["pattern"] for d in details(aws_resources)] == ["head-and-shoulders"]
    assert all(i["alertState"]["S"] != "PENDING" for i in stored_patterns(aws_resources))
    assert handler.lambda_handler(last, lambda_context) == {"batchItemFailures": []}
    assert details(aws_resources) == []


def test_pattern_write_fault_fails_that_symbol_only(aws_resources, lambda_context):
    bars, end = planted_bars("PWF")
    handler.lambda_handler(kinesis_bars_event(bars[:end]), lambda_context)
    aws_resources.pattern_events()
    other = flat_bars("CALM", 3, start=bars[end]["timestamp"])
    event = kinesis_bars_event([bars[end], *other], first_sequence=700)
    install_client("dynamodb", FlakyClient(aws_resources.dynamodb, "put_item", failing_calls={1}, code="ProvisionedThroughputExceededException"))

    response = handler.lambda_handler(event, lambda_context)
    assert failed_ids(response) == sequence_numbers(event)[:1]
    assert len(stored_bars(aws_resources, "CALM")) == 3
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert [d["pattern"] for d in details(aws_resources)] == ["head-and-shoulders"]


def test_detection_error_fails_that_symbol_and_is_recorded(aws_resources, lambda_context, monkeypatch):
    def engine_refuses(columns, **kwargs):
        if columns["close"][-1] > 1000:
            raise ValueError("close contains an impossible value")
        return []

    monkeypatch.setattr("patternwatch_shared.ingest.detect_in", engine_refuses)
    odd = flat_bars("ODD", 40, price=2000.0)
    calm = flat_bars("CALM", 40)
    event = kinesis_bars_event(odd + calm)
    response = handler.lambda_handler(event, lambda_context)
    assert failed_ids(response) == sequence_numbers(event)[:40]
    assert len(stored_bars(aws_resources, "CALM")) == 40


def test_log_lines_carry_the_batch_correlation_id(aws_resources, lambda_context):
    import io

    # The Powertools handler keeps the stream it was created with; point it at a buffer.
    stream = handler.logger.registered_handler.setStream(buffer := io.StringIO())
    try:
        event = kinesis_event(["@@@", b64(bar_json("LOG", T0, 10.0))])
        handler.lambda_handler(event, lambda_context)
    finally:
        handler.logger.registered_handler.setStream(stream)
    logs = [json.loads(line) for line in buffer.getvalue().splitlines()]
    rejected = [line for line in logs if line["message"] == "record rejected"]
    assert rejected and rejected[0]["correlation_id"] == event["Records"][0]["eventID"]
    assert rejected[0]["record_id"] == event["Records"][0]["kinesis"]["sequenceNumber"]
    assert "not valid base64" in rejected[0]["reason"]
    assert rejected[0]["service"] == "kinesis-consumer"
    summary = [line for line in logs if line["message"] == "batch ingested"]
    assert summary and summary[0]["bars_stored"] == 1


def test_the_window_cache_lives_in_the_environment_and_a_new_version_reads_again(aws_resources, lambda_context):
    bars = [bar_json("WARM", T0 + 60 * i, 50.0 + (i % 7)) for i in range(46)]
    handler.lambda_handler(kinesis_bars_event(bars[:44]), lambda_context)
    recording = RecordingClient(aws_resources.dynamodb)
    install_client("dynamodb", recording)
    hits = handler.window_cache.stats.hits
    handler.lambda_handler(kinesis_bars_event(bars[44:45], first_sequence=100), lambda_context)
    assert "query" not in recording.operations and handler.window_cache.stats.hits == hits + 1
    # Another published version in the same process (as the tests run them) starts from the table.
    new_version = type(lambda_context)(function_name=lambda_context.function_name, function_version="2")
    handler.lambda_handler(kinesis_bars_event(bars[45:46], first_sequence=200), new_version)
    assert recording.operations.count("query") == 1


def test_a_record_with_a_repeated_key_is_reported_and_the_rest_stored(aws_resources, lambda_context):
    good = bar_json("DUPK", T0, 10.0)
    repeated = json.dumps(bar_json("DUPK", T0 + 60, 10.0)).replace('"close": 10.0', '"close": 10.0, "close": 10.05')
    event = kinesis_event([b64(good), b64(repeated)])
    response = handler.lambda_handler(event, lambda_context)
    assert failed_ids(response) == sequence_numbers(event)[1:]
    assert [i["SK"]["S"] for i in stored_bars(aws_resources, "DUPK")] == [str(T0).zfill(12)]


def interleaved_feed(symbols: int, bars_each: int, *, unstorable_every: int) -> tuple[list[str], list[str]]:
    """A feed in time order, symbols interleaved, with a bar of a price DynamoDB cannot store
    (1e200, of its own symbol HUGE) after every `unstorable_every` valid bars: (valid, unstorable) data."""
    valid, unstorable, feed = [], [], []
    for step in range(bars_each):
        for index in range(symbols):
            valid.append(b64(bar_json(f"S{index:02d}", T0 + 60 * step, 50.0 + index)))
            feed.append(valid[-1])
            if len(valid) % unstorable_every == 0:
                unstorable.append(b64(bar_json("HUGE", T0 + len(valid), 1e200)))
                feed.append(unstorable[-1])
    return feed, unstorable


def test_one_unstorable_price_sends_no_valid_record_to_the_failure_destination(aws_resources, lambda_context):
    # Issue 12: one bar with a finite price outside DynamoDB's range failed its 25-item BatchWriteItem
    # chunk; the other symbols' bars in the chunk failed on every retry and 902 valid records ended at
    # the on-failure destination. Here: 300 valid bars of 30 symbols and 3 such bars, batches of 100
    # (before the fix, 164 of the valid bars ended there).
    feed, unstorable = interleaved_feed(30, 10, unstorable_every=100)
    destination = deliver_like_kinesis(handler.lambda_handler, feed, lambda_context)
    assert sorted(destination) == sorted(unstorable)
    stored = [i for i in aws_resources.table_items() if i["PK"]["S"].startswith("BAR#")]
    assert len(stored) == 300 and {i["symbol"]["S"] for i in stored} == {f"S{i:02d}" for i in range(30)}


class RefusingItems:
    """DynamoDB that refuses every item of one symbol with a ValidationException, as it refuses an
    item it cannot store: in BatchWriteItem the whole request fails, in PutItem that item."""

    def __init__(self, client, symbol: str):
        self._client = client
        self._symbol = symbol

    def __getattr__(self, name):
        return getattr(self._client, name)

    def _refuse(self, items, operation):
        from botocore.exceptions import ClientError

        if any(item.get("symbol", {}).get("S") == self._symbol for item in items):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "Item size has exceeded the maximum allowed size"}}, operation)

    def batch_write_item(self, RequestItems):
        self._refuse([r["PutRequest"]["Item"] for requests in RequestItems.values() for r in requests], "BatchWriteItem")
        return self._client.batch_write_item(RequestItems=RequestItems)

    def put_item(self, **request):
        self._refuse([request["Item"]], "PutItem")
        return self._client.put_item(**request)


def test_an_item_dynamodb_refuses_fails_alone_and_its_reason_is_logged(aws_resources, lambda_context, capsys):
    import io

    bars = [bar_json(f"OK{i}", T0, 10.0 + i) for i in range(12)] + [bar_json("BIG", T0, 10.0)] + [bar_json("OK0", T0 + 60, 11.0)]
    event = kinesis_bars_event(bars)
    install_client("dynamodb", RefusingItems(aws_resources.dynamodb, "BIG"))
    stream = handler.logger.registered_handler.setStream(buffer := io.StringIO())
    try:
        response = handler.lambda_handler(event, lambda_context)
    finally:
        handler.logger.registered_handler.setStream(stream)
    assert failed_ids(response) == sequence_numbers(event)[12:13]
    assert len([i for i in aws_resources.table_items() if i["PK"]["S"].startswith("BAR#OK")]) == 13
    logs = [json.loads(line) for line in buffer.getvalue().splitlines()]
    refused = [line for line in logs if line["message"] == "record rejected"]
    assert [line["record_id"] for line in refused] == sequence_numbers(event)[12:13]
    assert "Item size has exceeded" in refused[0]["reason"]
    assert metric_values(capsys.readouterr().out, METRIC_RECORDS_REJECTED) == [1.0]


def test_a_chunk_dynamodb_refuses_is_written_item_by_item_and_only_the_refused_bar_is_reported(aws_resources):
    from patternwatch_shared.models import Bar
    from patternwatch_shared.storage import TradingPatternsTable

    # model_construct skips validation, as a bar that got past it would: moto refuses 1e200 like DynamoDB.
    unstorable = Bar.model_construct(symbol="HUGE", timestamp=T0, open=1e200, high=1e200, low=1e200, close=1e200, volume=1.0)
    bars = [Bar(**bar_json(f"S{i:02d}", T0, 10.0)) for i in range(12)] + [unstorable] + [Bar(**bar_json(f"S{i:02d}", T0, 10.0)) for i in range(12, 24)]
    writes = TradingPatternsTable(aws_resources.dynamodb, "TradingPatterns-test").put_bars(bars)
    assert writes.failed_symbols == set()
    assert list(writes.refused) == [("HUGE", T0)] and "Number overflow" in writes.refused[("HUGE", T0)]
    assert len(aws_resources.table_items()) == 24
