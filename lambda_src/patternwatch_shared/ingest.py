"""The kinesis-consumer's work after decoding: store bars, detect per symbol, store matches, emit events.

Every new match at or above the alert threshold becomes a PatternDetected event on EventBridge; the
analysis workflow it starts confirms the match and queues the alert. AWS-free except through the
injected table and event publisher, so tests and the benchmark run it against in-memory stand-ins.
Failures are per symbol: the caller fails every record of a failed symbol, and the event source retries
them; stored bars and matches are idempotent and a match's event is re-emitted until it is out, so
retries are safe.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from patternwatch_shared.detection import Detection, alerts, context_bars, detect_in, detection_span, severity_for
from patternwatch_shared.models import Bar, PatternDetectedDetail, utc_now
from patternwatch_shared.names.messages import DETECTION_WINDOW_BARS
from patternwatch_shared.names.metrics import PATTERN_TYPE_ALL
from patternwatch_shared.names.table import ALERT_STATE_NOT_REQUIRED, ALERT_STATE_PENDING
from patternwatch_shared.pattern_events import PatternEvents, pattern_detected_detail
from patternwatch_shared.storage import BarKey, StoredPattern, TradingPatternsTable
from patternwatch_shared.window_cache import WindowCache

logger = logging.getLogger(__name__)

# Up to this many new bars per symbol, one detect_latest per bar beats one detect over them all.
LATEST_CALLS_MAX = 4
# The stream and the analysis workflow detect with the engine's default window: the workflow can only
# confirm what it re-detects the same way.
WINDOW = DETECTION_WINDOW_BARS


@dataclass
class IngestResult:
    bars_stored: int = 0
    failed_symbols: set[str] = field(default_factory=set)
    # Bars DynamoDB refused for their content, with the reason: only their own records fail.
    refused_bars: dict[BarKey, str] = field(default_factory=dict)
    new_detections: list[Detection] = field(default_factory=list)
    events_emitted: int = 0
    detection_ms: list[float] = field(default_factory=list)
    # Symbols whose detection context came from the window cache, and from a history Query.
    window_cache_hits: int = 0
    history_queries: int = 0


class BarIngestor:
    def __init__(
        self,
        table: TradingPatternsTable,
        events: PatternEvents,
        tracer_provider: Any,
        *,
        alert_threshold: float,
        clock: Callable[[], datetime] = utc_now,
        window_cache: WindowCache | None = None,
    ):
        self._table = table
        self._cache = window_cache
        self._events = events
        self._provider = tracer_provider
        self._alert_threshold = alert_threshold
        self._clock = clock

    def ingest(self, bars: Sequence[Bar]) -> IngestResult:
        try:
            result = self._ingest(bars)
        except BaseException:
            self._forget({bar.symbol for bar in bars})
            raise
        # A failed symbol's records come back; its entry may hold bars whose patterns or events are not out.
        self._forget(result.failed_symbols)
        return result

    def _forget(self, symbols: set[str]) -> None:
        if self._cache is not None:
            for symbol in symbols:
                self._cache.forget(symbol)

    def _ingest(self, bars: Sequence[Bar]) -> IngestResult:
        result = IngestResult()
        # A retried or duplicated record carries the same (symbol, timestamp): keep the last one.
        unique = list({(bar.symbol, bar.timestamp): bar for bar in bars}.values())
        writes = self._table.put_bars(unique)
        result.failed_symbols, result.refused_bars = writes.failed_symbols, writes.refused
        by_symbol: dict[str, list[Bar]] = defaultdict(list)
        for bar in unique:
            if (bar.symbol, bar.timestamp) not in writes.refused:
                by_symbol[bar.symbol].append(bar)
        result.bars_stored = sum(len(group) for symbol, group in by_symbol.items() if symbol not in result.failed_symbols)

        to_emit: list[tuple[PatternDetectedDetail, StoredPattern]] = []
        for symbol, group in by_symbol.items():
            if symbol in result.failed_symbols:
                continue
            try:
                to_emit.extend(self._detect_and_store(symbol, group, result))
            except Exception:
                # One symbol's failure (AWS error, engine ValueError on stored data, a bug) must not
                # hold back the others; its records are reported and retried.
                logger.exception("detection failed for %s", symbol)
                result.failed_symbols.add(symbol)

        not_emitted = self._events.put([detail for detail, _ in to_emit]) if to_emit else set()
        for detail, stored in to_emit:
            if detail.alertId in not_emitted:
                # The pattern stays PENDING, so the retried record re-emits this event.
                result.failed_symbols.add(stored.symbol)
                continue
            result.events_emitted += 1
            try:
                self._table.mark_event_emitted(stored.symbol, stored.sort_key)
            except Exception:
                # The event is out; failing the record now would only emit it twice.
                logger.warning("event for %s emitted but not marked", detail.alertId, exc_info=True)
        return result

    def _detect_ending_at(self, columns: dict[str, list[float]], new_timestamps: set[int]) -> list[Detection]:
        """Matches the engine first reports at one of the new bars.

        detect_latest on the prefix ending at each new bar gives exactly detect's matches for that
        bar, at about a sixth of the CPU of one detect call for a handful of bars (the usual case:
        one or two bars per symbol per batch). A catch-up batch with many bars per symbol uses one
        detect pass and keeps the matches ending on new bars.
        """
        timestamps = columns["timestamp"]
        positions = [index for index, ts in enumerate(timestamps) if ts in new_timestamps]
        if len(positions) > LATEST_CALLS_MAX:
            return [d for d in detect_in(columns, window=WINDOW) if d.end_timestamp in new_timestamps]
        detections: list[Detection] = []
        for position in positions:
            if position + 1 < WINDOW:
                continue
            prefix = columns if position == len(timestamps) - 1 else {f: v[: position + 1] for f, v in columns.items()}
            detections.extend(detect_in(prefix, latest_only=True, window=WINDOW))
        return detections

    def _recent_bars(self, symbol: str, new_bars: list[Bar], result: IngestResult) -> dict[str, list[float]]:
        """The symbol's newest bars up to the new ones: from the window cache when it can prove it holds
        them, else with one Query (whose result the cache keeps for the next batch)."""
        limit = context_bars(WINDOW) + len(new_bars) - 1
        columns = self._cache.window(symbol, new_bars, limit) if self._cache is not None else None
        if columns is not None:
            result.window_cache_hits += 1
            return columns
        result.history_queries += 1
        columns = self._table.recent_bars(symbol, limit=limit)
        if self._cache is not None:
            self._cache.remember(symbol, columns, limit=limit)
        return columns

    def _detect_and_store(
        self, symbol: str, new_bars: list[Bar], result: IngestResult
    ) -> list[tuple[PatternDetectedDetail, StoredPattern]]:
        """Store the new matches; return the events of those that alert (new, or stored but never emitted)."""
        new_timestamps = {bar.timestamp for bar in new_bars}
        columns = self._recent_bars(symbol, new_bars, result)
        if len(columns["timestamp"]) < WINDOW:
            return []
        with detection_span(self._provider, PATTERN_TYPE_ALL, Symbol=symbol) as span:
            detections = self._detect_ending_at(columns, new_timestamps)
            span.record(detections)
        result.detection_ms.append(span.duration_ms)

        detected_at = self._clock()
        to_emit = []
        for detection in detections:
            alerting = alerts(detection.confidence, self._alert_threshold)
            stored = StoredPattern(
                symbol=symbol,
                pattern=detection.pattern,
                confidence=detection.confidence,
                start_timestamp=detection.start_timestamp,
                end_timestamp=detection.end_timestamp,
                detected_at=detected_at,
                severity=severity_for(detection.confidence, self._alert_threshold),
                alert_state=ALERT_STATE_PENDING if alerting else ALERT_STATE_NOT_REQUIRED,
                extrema=detection.extrema,
            )
            if not self._table.put_pattern_once(stored):
                continue
            result.new_detections.append(detection)
            if alerting:
                to_emit.append((pattern_detected_detail(symbol, detection, detected_at, columns), stored))
        return to_emit
