"""PatternDetected events: built from a new match and the bars it was found in, put on EventBridge.

kinesis-consumer emits one event per new match at or above the alert threshold; the `pattern-detected`
rule starts PatternAnalysisWorkflow with the event's detail (models.PatternDetectedDetail) as input.
The client is injected, so tests and the benchmark use in-memory stand-ins.

Size: a detail holds DETECTION_CONTEXT_BARS bars, so its worst case is bounded. With the longest
symbol and pattern names and every number at its longest JSON spelling it is about 8.5 KB (README "The
PatternDetected event" shows the sum; a test builds that worst case), far under EventBridge's 256 KB for
an entry and for a 10-entry request. The batcher still cuts requests by size as well as by count.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from patternwatch_shared import keys
from patternwatch_shared.detection import COLUMNS, Detection
from patternwatch_shared.models import PatternDetectedDetail
from patternwatch_shared.names.messages import (
    DETECTION_CONTEXT_BARS, EVENT_DETAIL_TYPE_PATTERN_DETECTED, EVENT_SOURCE_PATTERNS,
)
from patternwatch_shared.storage import is_aws_error

logger = logging.getLogger(__name__)

PUT_EVENTS_MAX_ENTRIES = 10  # PutEvents takes at most 10 entries a call
PUT_EVENTS_MAX_BYTES = 256 * 1024  # an entry, and the entries of one call together, stay under this
PUT_EVENTS_TIME_BYTES = 14  # what EventBridge counts for an entry's Time, when one is given
# Entries EventBridge refuses one by one (throttled, internal failure) are sent again this often in all;
# what still fails is reported to the caller, whose stream records are then retried by Kinesis.
PUT_EVENTS_ATTEMPTS = 3
PUT_EVENTS_BACKOFF_SECONDS = 0.1


def pattern_detected_detail(
    symbol: str, detection: Detection, detected_at: datetime, columns: Mapping[str, Sequence[float]]
) -> PatternDetectedDetail:
    """The event for `detection`, found in `columns` (engine columns, oldest first; detection.end indexes them).

    The bars are the detection context ending at the match's end bar: what detect_latest reads when
    that bar is the newest, so re-running the engine over them reports the same match and confidence.
    """
    first = max(0, detection.end + 1 - DETECTION_CONTEXT_BARS)
    bars = [{field: columns[field][index] for field in COLUMNS} for index in range(first, detection.end + 1)]
    return PatternDetectedDetail.model_validate(
        {
            "symbol": symbol,
            "pattern": detection.pattern,
            "confidence": detection.confidence,
            "startTimestamp": detection.start_timestamp,
            "endTimestamp": detection.end_timestamp,
            "detectedAt": keys.iso_utc(detected_at),
            "alertId": keys.alert_id(symbol, keys.pattern_sort_key(detection.end_timestamp, detection.pattern)),
            "extrema": [list(point) for point in detection.extrema],
            "bars": bars,
        }
    )


def event_entry(detail: PatternDetectedDetail) -> dict[str, Any]:
    """A PutEvents entry for the default bus (no EventBusName: the consumer may only put there)."""
    return {
        "Source": EVENT_SOURCE_PATTERNS,
        "DetailType": EVENT_DETAIL_TYPE_PATTERN_DETECTED,
        "Detail": detail.model_dump_json(),
    }


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge counts it (UTF-8 bytes of Source, DetailType, Detail, Resources; 14 for Time)."""
    size = PUT_EVENTS_TIME_BYTES if entry.get("Time") is not None else 0
    for field in ("Source", "DetailType", "Detail"):
        size += len(entry.get(field, "").encode("utf-8"))
    return size + sum(len(resource.encode("utf-8")) for resource in entry.get("Resources", ()))


def batches(entries: Sequence[dict[str, Any]]) -> Iterator[list[int]]:
    """Indices of `entries` in PutEvents calls: at most 10 entries and 256 KB a call, in order."""
    batch: list[int] = []
    batch_bytes = 0
    for index, entry in enumerate(entries):
        size = entry_size(entry)
        if size >= PUT_EVENTS_MAX_BYTES:
            # The detail's length is bounded by its model; reaching this is a bug, not a bad record.
            raise ValueError(f"PatternDetected entry of {size} bytes exceeds EventBridge's {PUT_EVENTS_MAX_BYTES}")
        if batch and (len(batch) == PUT_EVENTS_MAX_ENTRIES or batch_bytes + size >= PUT_EVENTS_MAX_BYTES):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(index)
        batch_bytes += size
    if batch:
        yield batch


class PatternEvents:
    """Puts PatternDetected events on the default bus; entries that keep failing are reported, not dropped."""

    def __init__(self, events_client: Any, *, sleep: Callable[[float], None] = time.sleep):
        self._events = events_client
        self._sleep = sleep

    def put(self, details: Sequence[PatternDetectedDetail]) -> set[str]:
        """Emit one event per detail. Returns the alertIds whose event could not be put."""
        entries = [event_entry(detail) for detail in details]
        failed: set[str] = set()
        for batch in batches(entries):
            for index in self._put_with_retries(entries, batch):
                failed.add(details[index].alertId)
        return failed

    def _put_with_retries(self, entries: Sequence[dict[str, Any]], batch: list[int]) -> list[int]:
        pending = batch
        for attempt in range(PUT_EVENTS_ATTEMPTS):
            if attempt:
                self._sleep(PUT_EVENTS_BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                response = self._events.put_events(Entries=[entries[index] for index in pending])
            except Exception as error:
                if not is_aws_error(error):
                    raise
                # The client already retried throttling and 5xx answers; try the whole call again later.
                logger.warning("PutEvents failed (attempt %d): %s", attempt + 1, error)
                continue
            results = response.get("Entries", [])
            # EventBridge answers entry by entry, in order; an entry without an answer was not put.
            codes = [results[position].get("ErrorCode") if position < len(results) else "NoResult" for position in range(len(pending))]
            for code in filter(None, codes):
                logger.warning("PutEvents refused an entry (attempt %d): %s", attempt + 1, code)
            pending = [index for index, code in zip(pending, codes) if code]
            if not pending:
                return []
        return pending
