"""The consumer with its window cache: fewer reads, the same detections, never ahead of the table.

BarIngestor runs over the real TradingPatternsTable and PatternEvents, on the in-memory DynamoDB and
EventBridge stand-ins (tooling/in_memory_aws.py), so each test can run hundreds of batches.
"""
from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lambda_testkit import FakeProvider, planted_bars
from pattern_engine.synthetic import bar_records, random_walk
from patternwatch_shared.ingest import BarIngestor
from patternwatch_shared.models import Bar
from patternwatch_shared.names.messages import DETECTION_CONTEXT_BARS
from patternwatch_shared.pattern_events import PatternEvents
from patternwatch_shared.storage import TradingPatternsTable, bar_item
from patternwatch_shared.window_cache import WindowCache

from tooling.in_memory_aws import InMemoryDynamoDB, InMemoryEvents

TABLE = "TradingPatterns-test"
DETECTED_AT = datetime(2026, 12, 1, 14, 30, tzinfo=timezone.utc)


class FlakyDynamoDB(InMemoryDynamoDB):
    """Leaves the bars of the symbols in `unwritable` unprocessed, as throttled BatchWriteItem calls do, and
    refuses the bars in `refused` ((symbol, timestamp)) as DynamoDB refuses a number it cannot store."""

    def __init__(self) -> None:
        super().__init__()
        self.unwritable: set[str] = set()
        self.refused: set[tuple[str, int]] = set()

    @staticmethod
    def _key(item) -> tuple[str, int]:
        return item["symbol"]["S"], int(item["timestamp"]["N"])

    def batch_write_item(self, RequestItems):
        (requests,) = RequestItems.values()
        if any(self._key(r["PutRequest"]["Item"]) in self.refused for r in requests):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "refused"}}, "BatchWriteItem")
        failing = [r for r in requests if r["PutRequest"]["Item"]["symbol"]["S"] in self.unwritable]
        super().batch_write_item({TABLE: [r for r in requests if r not in failing]})
        return {"UnprocessedItems": {TABLE: failing} if failing else {}}

    def put_item(self, TableName, Item, **kwargs):
        if Item["PK"]["S"].startswith("BAR#") and self._key(Item) in self.refused:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "refused"}}, "PutItem")
        return super().put_item(TableName, Item, **kwargs)


class RefusingEvents(InMemoryEvents):
    def __init__(self) -> None:
        super().__init__()
        self.refuse = False

    def put_events(self, Entries):
        if self.refuse:
            return {"FailedEntryCount": len(Entries), "Entries": [{"ErrorCode": "InternalFailure"} for _ in Entries]}
        return super().put_events(Entries)


class RecordingIngestor(BarIngestor):
    """Keeps every window handed to detection: equal windows give equal detections, and unlike the
    detections (rare on random walks) a window shows a single missing or extra bar."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.windows: list[tuple[frozenset, dict]] = []

    def _detect_ending_at(self, columns, new_timestamps):
        self.windows.append((frozenset(new_timestamps), {name: list(values) for name, values in columns.items()}))
        return super()._detect_ending_at(columns, new_timestamps)


class Consumer:
    """One execution environment's BarIngestor (with or without a window cache) over its own table, or
    over `shares`'s table and events (another environment of the same function)."""

    def __init__(self, *, cached: bool, max_symbols: int = 64, shares: Consumer | None = None):
        self.client = shares.client if shares else FlakyDynamoDB()
        self.events = shares.events if shares else RefusingEvents()
        self.cache = WindowCache(max_symbols=max_symbols, bars_per_symbol=DETECTION_CONTEXT_BARS - 1) if cached else None
        self.ingestor = RecordingIngestor(
            TradingPatternsTable(self.client, TABLE, sleep=lambda seconds: None),
            PatternEvents(self.events, sleep=lambda seconds: None),
            FakeProvider(),
            alert_threshold=0.9,
            clock=lambda: DETECTED_AT,
            window_cache=self.cache,
        )

    def ingest(self, records: list[dict]):
        self.ingestor.windows.clear()
        return self.ingestor.ingest([Bar.model_validate(record) for record in records])

    def windows(self) -> list:
        return sorted(self.ingestor.windows, key=lambda window: sorted(window[0]))

    @property
    def queries(self) -> int:
        return self.client.calls.get("query", 0)

    def patterns(self) -> dict[tuple[str, str], dict]:
        return {
            (pk, sk): item for pk, partition in self.client.partitions.items() if pk.startswith("PATTERN#")
            for sk, item in partition.items()
        }


def walk(symbol: str, count: int, seed: int) -> list[dict]:
    return bar_records(symbol, random_walk(count, seed=seed))


def outcome(result) -> tuple:
    return (
        sorted((d.pattern, d.end_timestamp, d.confidence, d.extrema) for d in result.new_detections),
        sorted(result.failed_symbols),
        result.bars_stored,
        result.events_emitted,
    )


def test_a_warm_symbol_is_detected_without_a_query():
    series = {symbol: walk(symbol, 120, seed) for seed, symbol in enumerate(("AAA", "BBB", "CCC"))}
    cached, uncached = Consumer(cached=True), Consumer(cached=False)
    for step in range(120):
        batch = [bars[step] for bars in series.values()]
        assert outcome(cached.ingest(batch)) == outcome(uncached.ingest(batch))
    assert uncached.queries == 3 * 120
    # A new symbol's first bar finds a cold cache, its second a window of one bar (no bar interval yet).
    assert cached.queries == 3 * 2
    assert cached.client.read_units == 3 * 2.0
    assert cached.cache.stats.hits == 3 * 118
    assert cached.patterns() == uncached.patterns()
    assert cached.patterns(), "the walks should give the engine something to find"


def test_the_batch_result_says_where_each_context_came_from():
    consumer = Consumer(cached=True)
    bars = walk("AAA", 50, 1)
    first = consumer.ingest(bars[:45])
    assert (first.history_queries, first.window_cache_hits) == (1, 0)
    second = consumer.ingest(bars[45:47])
    assert (second.history_queries, second.window_cache_hits) == (0, 1)
    redelivered = consumer.ingest(bars[46:49])
    assert (redelivered.history_queries, redelivered.window_cache_hits) == (1, 0)


def test_a_symbol_whose_write_failed_is_forgotten_and_queried_again():
    consumer = Consumer(cached=True)
    bars = {symbol: walk(symbol, 60, seed) for seed, symbol in enumerate(("OK", "DOWN"))}
    consumer.ingest([bar for series in bars.values() for bar in series[:50]])
    consumer.client.unwritable = {"DOWN"}
    result = consumer.ingest([bars["OK"][50], bars["DOWN"][50]])
    assert result.failed_symbols == {"DOWN"}
    assert "DOWN" not in consumer.cache._entries and "OK" in consumer.cache._entries
    # Kinesis redelivers DOWN's bar; the cache answers OK's next bar and queries for DOWN.
    consumer.client.unwritable = set()
    queries = consumer.queries
    result = consumer.ingest([bars["OK"][51], bars["DOWN"][50]])
    assert (result.window_cache_hits, result.history_queries, consumer.queries - queries) == (1, 1, 1)


def test_a_partial_batch_never_leaves_the_cache_ahead_of_the_table():
    consumer = Consumer(cached=True)
    bars = walk("PART", 60, 3)
    consumer.ingest(bars[:50])
    # Bars 50-52 arrive with 51 refused for its content: the cache holds only what the table holds.
    consumer.client.refused = {("PART", bars[51]["timestamp"])}
    result = consumer.ingest(bars[50:53])
    assert set(result.refused_bars) == {("PART", bars[51]["timestamp"])}
    stored = consumer.client.sorted_keys["BAR#PART"]
    cached = consumer.cache._entries["PART"].columns["timestamp"]
    assert [str(ts).zfill(12) for ts in cached] == stored[-len(cached):]


def test_a_failed_event_forgets_the_symbol():
    bars, end = planted_bars("PLNT")
    consumer = Consumer(cached=True)
    consumer.ingest(bars[:end])
    consumer.events.refuse = True
    result = consumer.ingest([bars[end]])
    assert result.failed_symbols == {"PLNT"} and result.events_emitted == 0
    assert "PLNT" not in consumer.cache._entries
    consumer.events.refuse = False
    retried = consumer.ingest([bars[end]])
    assert retried.events_emitted == 1 and retried.history_queries == 1


def test_an_error_out_of_ingest_forgets_every_symbol_of_the_batch(monkeypatch):
    consumer = Consumer(cached=True)
    bars = {symbol: walk(symbol, 50, seed) for seed, symbol in enumerate(("AAA", "BBB"))}
    consumer.ingest([bar for series in bars.values() for bar in series[:45]])
    assert len(consumer.cache) == 2

    def broken(**kwargs):  # not an AWS error: put_bars lets it out, and the whole batch is retried
        raise RuntimeError("bug")

    monkeypatch.setattr(consumer.client, "batch_write_item", broken)
    with pytest.raises(RuntimeError, match="bug"):
        consumer.ingest([bars["AAA"][45], bars["BBB"][45]])
    assert len(consumer.cache) == 0


def test_detection_failure_forgets_the_symbol(monkeypatch):
    consumer = Consumer(cached=True)
    bars = walk("ERR", 50, 4)
    consumer.ingest(bars[:45])

    def engine_refuses(*args, **kwargs):
        raise ValueError("engine refused the window")

    monkeypatch.setattr("patternwatch_shared.ingest.detect_in", engine_refuses)
    assert consumer.ingest([bars[45]]).failed_symbols == {"ERR"}
    assert "ERR" not in consumer.cache._entries


def test_eviction_costs_a_query_not_a_wrong_answer():
    series = {f"S{index}": walk(f"S{index}", 60, index) for index in range(4)}
    cached, uncached = Consumer(cached=True, max_symbols=2), Consumer(cached=False)
    for step in range(60):
        batch = [bars[step] for bars in series.values()]
        assert outcome(cached.ingest(batch)) == outcome(uncached.ingest(batch))
    assert cached.cache.stats.evictions > 0
    assert cached.patterns() == uncached.patterns()


# --- Property: with and without the cache, every batch gives the same result ------------------------
SYMBOLS = ("AAA", "BBB", "CCC")
HISTORY = 40
SERIES = {symbol: walk(symbol, 200, seed) for seed, symbol in enumerate(SYMBOLS)}
PLANTED, PLANTED_END = planted_bars("AAA")
SERIES["AAA"] = PLANTED[PLANTED_END - HISTORY - 20 :]  # the pattern completes 20 bars into the run

step = st.one_of(
    st.tuples(st.just("next"), st.sets(st.sampled_from(SYMBOLS), min_size=1), st.integers(1, 6)),
    st.tuples(st.just("redeliver"), st.integers(1, 3)),  # the last n batches again
    st.tuples(st.just("skip"), st.sampled_from(SYMBOLS), st.integers(1, 3)),  # a gap, filled later out of order
    st.tuples(st.just("late"), st.sampled_from(SYMBOLS), st.booleans()),  # the skipped bars, alone or after a new one
    st.tuples(st.just("shuffle"), st.sampled_from(SYMBOLS), st.integers(2, 4)),  # the next bars out of order
    st.tuples(st.just("write_fails"), st.sampled_from(SYMBOLS)),
    st.tuples(st.just("events_fail"),),
)


# The two ways another environment changes a window this one holds, spelled out (the search finds them too,
# but not in every run): it stores the next bar (a gap here), or fills a hole this one has cached.
BAR_ELSEWHERE = [(("next", {"AAA"}, 1), 0), (("next", {"AAA"}, 1), 3), (("next", {"AAA"}, 1), 0)]
HOLE_FILLED_ELSEWHERE = [
    (("next", {"AAA"}, 1), 0), (("skip", "AAA", 1), 0), (("next", {"BBB"}, 1), 0), (("next", {"AAA"}, 2), 0),
    (("late", "AAA", False), 3), (("next", {"AAA"}, 1), 0),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(BAR_ELSEWHERE, random.Random(0))
@example(HOLE_FILLED_ELSEWHERE, random.Random(0))
@given(st.lists(st.tuples(step, st.integers(0, 3)), min_size=5, max_size=40), st.randoms(use_true_random=False))
def test_detections_are_identical_with_and_without_the_cache(steps, rng):
    """Batches go to one of two execution environments of the cached consumer (mostly the first, as
    Lambda reuses a warm one), which share one table, and to a consumer without a cache over another."""
    first = Consumer(cached=True)
    environments = (first, first, first, Consumer(cached=True, shares=first))
    uncached = Consumer(cached=False)
    # Every symbol starts with a window's worth of stored bars, so that every batch runs a detection.
    for consumer in (first, uncached):
        for symbol in SYMBOLS:
            for record in SERIES[symbol][:HISTORY]:
                consumer.client.put(bar_item(Bar.model_validate(record)))
    position = {symbol: HISTORY for symbol in SYMBOLS}
    skipped: dict[str, list[dict]] = {symbol: [] for symbol in SYMBOLS}
    sent: list[list[dict]] = []

    def take(symbol: str, count: int) -> list[dict]:
        bars = SERIES[symbol][position[symbol] : position[symbol] + count]
        position[symbol] += len(bars)
        return bars

    for (action, *args), environment in steps:
        cached = environments[environment]
        unwritable: set[str] = set()
        refuse_events = False
        if action == "next":
            symbols, count = args
            batch = [bar for symbol in sorted(symbols) for bar in take(symbol, count)]
        elif action == "redeliver":
            batch = [bar for earlier in sent[-args[0]:] for bar in earlier]
        elif action == "skip":
            skipped[args[0]] += take(*args)
            batch = []
        elif action == "late":
            symbol, after_new = args
            batch = (take(symbol, 1) if after_new else []) + skipped[symbol]
            skipped[symbol] = []
        elif action == "shuffle":
            batch = take(*args)
            rng.shuffle(batch)
        elif action == "write_fails":
            unwritable = {args[0]}
            batch = sent[-1] if sent else []
        else:
            refuse_events = True
            batch = [bar for symbol in SYMBOLS for bar in take(symbol, 1)]
        if not batch:
            continue
        sent.append(batch)
        results = []
        for consumer in (cached, uncached):
            consumer.client.unwritable = unwritable
            consumer.events.refuse = refuse_events
            results.append((outcome(consumer.ingest(batch)), consumer.windows()))
        assert results[0] == results[1], (action, args)
    assert first.patterns() == uncached.patterns()
    assert first.client.partitions == uncached.client.partitions
    assert first.queries <= uncached.queries
