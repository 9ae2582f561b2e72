"""The bridge to pattern_engine: bars in, matches with timestamps out, inside an X-Ray subsegment.

pattern_engine (and with it numpy) is imported on first use, so handler modules import fast and
requests rejected by validation never pay for it.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from patternwatch_shared.names.messages import (
    CRITICAL_CONFIDENCE_THRESHOLD, DETECTION_WINDOW_BARS, SEVERITY_CRITICAL, SEVERITY_HIGH, SEVERITY_LOW,
    SEVERITY_MEDIUM,
)
from patternwatch_shared.names.metrics import DIMENSION_PATTERN_TYPE, METRICS_NAMESPACE

DETECTION_SUBSEGMENT = "## pattern_detection"


@dataclass(frozen=True)
class Detection:
    pattern: str
    confidence: float
    start: int
    end: int
    start_timestamp: int
    end_timestamp: int
    extrema: tuple[tuple[int, float], ...]  # (timestamp, close)

    def as_match(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "confidence": self.confidence,
            "start": self.start,
            "end": self.end,
            "startTimestamp": self.start_timestamp,
            "endTimestamp": self.end_timestamp,
            "extrema": [list(point) for point in self.extrema],
        }


def engine():
    import pattern_engine

    return pattern_engine


def pattern_names() -> tuple[str, ...]:
    return tuple(engine().PATTERN_NAMES)


def context_bars(window: int = DETECTION_WINDOW_BARS) -> int:
    """Bars detect_latest reads: the window plus the earlier windows it uses to drop repeats."""
    return window + engine().CONFIRM_BARS + 1


def alerts(confidence: float, alert_threshold: float) -> bool:
    """The one confidence cut that decides an alert, everywhere: at or above the environment's threshold."""
    return confidence >= alert_threshold


def severity_for(confidence: float, alert_threshold: float) -> str:
    """An alerting match is CRITICAL (it waits for an approval) from the critical cut up, HIGH below it;
    a match under the alert threshold is only stored, as MEDIUM or LOW."""
    if confidence >= CRITICAL_CONFIDENCE_THRESHOLD:
        return SEVERITY_CRITICAL
    if alerts(confidence, alert_threshold):
        return SEVERITY_HIGH
    if confidence >= 0.75:
        return SEVERITY_MEDIUM
    return SEVERITY_LOW


COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


def _columns(bars: Mapping[str, Sequence[float]] | Sequence[Any]) -> Mapping[str, Sequence[float]]:
    """Columns pass through; rows (bar models or dicts, oldest first) are turned into columns."""
    if isinstance(bars, Mapping):
        return bars
    if bars and isinstance(bars[0], Mapping):
        return {field: [row[field] for row in bars] for field in COLUMNS}
    return {field: [getattr(row, field) for row in bars] for field in COLUMNS}


def detect_in(
    bars: Mapping[str, Sequence[float]] | Sequence[Any],
    *,
    latest_only: bool = False,
    patterns: Sequence[str] | None = None,
    window: int = DETECTION_WINDOW_BARS,
) -> list[Detection]:
    """Run the engine over `bars` (columns, or rows oldest first). Raises ValueError for bars the engine refuses."""
    columns = _columns(bars)
    run = engine().detect_latest if latest_only else engine().detect
    matches = run(columns, patterns=patterns, window=window)
    timestamps = columns["timestamp"]
    return [
        Detection(
            pattern=match.pattern,
            confidence=float(match.confidence),
            start=match.start,
            end=match.end,
            start_timestamp=int(timestamps[match.start]),
            end_timestamp=int(timestamps[match.end]),
            extrema=tuple((int(timestamps[index]), float(price)) for index, price in match.extrema),
        )
        for match in matches
    ]


class DetectionSpan:
    """What a detection reports into its X-Ray subsegment and metrics."""

    def __init__(self, subsegment: Any, pattern_type: str):
        self._subsegment = subsegment
        self.pattern_type = pattern_type
        self.duration_ms = 0.0

    def record(self, detections: Sequence[Detection]) -> None:
        top = max((d.confidence for d in detections), default=0.0)
        self._subsegment.put_annotation("MatchCount", len(detections))
        self._subsegment.put_annotation("TopConfidence", round(top, 4))
        self._subsegment.put_metadata(
            "matches",
            [{"pattern": d.pattern, "confidence": d.confidence, "endTimestamp": d.end_timestamp} for d in detections],
            namespace=METRICS_NAMESPACE,
        )


@contextmanager
def detection_span(provider: Any, pattern_type: str, **annotations: str | int) -> Iterator[DetectionSpan]:
    """A custom subsegment around one detection, annotated with the pattern type.

    `provider` is `tracer.provider`. On error the subsegment is annotated and the error kept as
    metadata; the X-Ray context manager also records the exception itself when it propagates.
    """
    with provider.in_subsegment(DETECTION_SUBSEGMENT) as subsegment:
        subsegment.put_annotation(DIMENSION_PATTERN_TYPE, pattern_type)
        for key, value in annotations.items():
            subsegment.put_annotation(key, value)
        span = DetectionSpan(subsegment, pattern_type)
        started = time.perf_counter()
        try:
            yield span
        except Exception as error:
            subsegment.put_annotation("DetectionFailed", True)
            subsegment.put_metadata("error", f"{type(error).__name__}: {error}", namespace=METRICS_NAMESPACE)
            raise
        finally:
            span.duration_ms = (time.perf_counter() - started) * 1000.0
