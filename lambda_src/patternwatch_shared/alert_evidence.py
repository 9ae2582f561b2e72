"""Each alert's evidence in the data bucket: what the alert was about, as data and as a chart.

For a pattern alert: the bars window (the match's bars and the DETECTION_WINDOW_BARS before them, oldest
first, from TradingPatterns), the match with its extrema, and a chart of that window with the extrema
marked and labelled (pattern_charts). For a threshold alert: the patterns that breached in its window, and
no chart (no single pattern to draw). Keys: patternwatch_shared.evidence.

`build_evidence` is pure (the chart is drawn from its arguments); `EvidenceWriter` reads what it needs and
writes the two objects. Writes are idempotent: the same alert gives the same keys and, because nothing in
the document or the PNG depends on when it was written, the same bytes. The bucket's default encryption
(SSE-KMS with the platform key, bucket key) and lifecycle rule apply to the objects; a failed write raises,
so the alert processor fails the message and publishes nothing about it.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Final

from patternwatch_shared import keys
from patternwatch_shared.detection import detect_in
from patternwatch_shared.evidence import CHART_CONTENT_TYPE, DATA_CONTENT_TYPE, EvidenceKeys, evidence_keys
from patternwatch_shared.models import AlertMessage
from patternwatch_shared.names.messages import ALERT_SOURCE_THRESHOLD, DETECTION_WINDOW_BARS
from patternwatch_shared.storage import TradingPatternsTable

logger = logging.getLogger(__name__)

EVIDENCE_SCHEMA_VERSION: Final = 1
# Bars before the match: the trend the pattern turns, and enough for the engine's window to be re-run.
CONTEXT_BARS: Final = DETECTION_WINDOW_BARS
# Stream bars carry no adjustment flag: the chart says they are drawn as the feed sent them.
STREAM_PRICE_BASIS: Final = "as received on the market data stream"


class ExtremaSource(StrEnum):
    """Where a match's extrema came from (evidence.json's `extremaSource`), in the order they are tried."""

    ALERT = "alert"
    STORED_PATTERN = "stored-pattern"
    RE_DETECTED = "re-detected"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Evidence:
    keys: EvidenceKeys
    document: dict[str, Any]
    chart_png: bytes | None

    @property
    def data_bytes(self) -> bytes:
        return (json.dumps(self.document, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")

    def written_keys(self) -> dict[str, str]:
        """The keys of the objects this evidence consists of (no chart key when there is no chart)."""
        return {"data": self.keys.data, **({"chart": self.keys.chart} if self.chart_png is not None else {})}


def build_evidence(
    alert: AlertMessage,
    *,
    bars: list[dict[str, float]] | None = None,
    extrema: list[tuple[int, float]] | None = None,
    extrema_source: ExtremaSource = ExtremaSource.UNAVAILABLE,
    breaches: list[dict[str, Any]] | None = None,
) -> Evidence:
    """The evidence of one alert. Pattern alerts pass `bars` and `extrema`; threshold alerts `breaches`."""
    from pattern_charts.annotations import DisplaySettings  # the chart layer: only drawing functions have it

    settings = DisplaySettings()
    where = evidence_keys(alert.alertId)
    document: dict[str, Any] = {
        "schemaVersion": EVIDENCE_SCHEMA_VERSION,
        "alertId": alert.alertId,
        "alert": alert.model_dump(mode="json", exclude_none=True),
        "display": {**settings.as_dict(), "contextBars": CONTEXT_BARS},
    }
    if alert.source == ALERT_SOURCE_THRESHOLD:
        document["breaches"] = breaches or []
        document["chart"] = None
        document["chartOmitted"] = "a threshold alert covers many patterns: its evidence is the list of breaches"
        return Evidence(where, document, None)

    rows = bars or []
    points = extrema or []
    document["match"] = {
        "pattern": alert.pattern,
        "confidence": alert.confidence,
        "startTimestamp": alert.startTimestamp,
        "endTimestamp": alert.endTimestamp,
        "extrema": [{"timestamp": ts, "price": price} for ts, price in points],
        "extremaSource": extrema_source,
    }
    document["bars"] = {
        "symbol": alert.symbol,
        "priceBasis": STREAM_PRICE_BASIS,
        "columns": ["timestamp", "open", "high", "low", "close", "volume"],
        "rows": rows,
    }
    if not rows:
        document["chart"] = None
        document["chartOmitted"] = "no bars of the match window are stored in TradingPatterns"
        return Evidence(where, document, None)
    chart = _draw(alert, rows, points, settings)
    for drawn, point in zip(chart.prominent[0].labels if chart.prominent else (), document["match"]["extrema"]):
        point["label"] = drawn[0]
    document["chart"] = {"key": where.chart, **chart.metadata()}
    return Evidence(where, document, chart.png)


def _draw(alert: AlertMessage, rows: list[dict[str, float]], extrema: list[tuple[int, float]], settings: Any) -> Any:
    from pattern_charts.render import ChartMatch, render_chart

    match = ChartMatch(
        pattern=alert.pattern or "",
        confidence=alert.confidence,
        start_timestamp=alert.startTimestamp or int(rows[0]["timestamp"]),
        end_timestamp=alert.endTimestamp or int(rows[-1]["timestamp"]),
        extrema=tuple(extrema),
        alerted=True,
    )
    first, last = (_day(rows[0]["timestamp"]), _day(rows[-1]["timestamp"]))
    headline = f"{alert.pattern} alert ({alert.severity}), confidence {alert.confidence:.2f}; bars {first} to {last}"
    return render_chart(alert.symbol or "", rows, [match], headline=headline, price_basis=STREAM_PRICE_BASIS, settings=settings)


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%d")


def extrema_from_details(alert: AlertMessage) -> list[tuple[int, float]] | None:
    """Extrema an alert carries in `details.extrema` ([[timestamp, price], ...]), if it carries them."""
    raw = (alert.details or {}).get("extrema")
    if not isinstance(raw, (list, tuple)) or not raw:
        return None
    points = []
    for point in raw:
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            return None
        timestamp, price = point
        if isinstance(timestamp, bool) or not isinstance(timestamp, int) or isinstance(price, bool) or not isinstance(price, (int, float)):
            return None
        points.append((timestamp, float(price)))
    return points


def redetected_extrema(alert: AlertMessage, rows: list[dict[str, float]]) -> list[tuple[int, float]] | None:
    """The engine run again over the window: the same pattern ending on the same bar, if it finds it."""
    if len(rows) < DETECTION_WINDOW_BARS:
        return None
    try:
        detections = detect_in(rows, patterns=[alert.pattern])
    except ValueError:
        return None
    for detection in detections:
        if detection.end_timestamp == alert.endTimestamp and detection.start_timestamp == alert.startTimestamp:
            return list(detection.extrema)
    return None


class EvidenceWriter:
    """Gathers an alert's evidence from TradingPatterns and writes it to the data bucket."""

    def __init__(self, s3: Any, bucket: str, table: TradingPatternsTable):
        self._s3 = s3
        self._bucket = bucket
        self._table = table

    def gather(self, alert: AlertMessage) -> Evidence:
        if alert.source == ALERT_SOURCE_THRESHOLD:
            return build_evidence(alert, breaches=self._breaches(alert))
        if alert.startTimestamp is None or alert.endTimestamp is None:
            return build_evidence(alert)
        rows = self._table.bars_around(alert.symbol, alert.startTimestamp, alert.endTimestamp, before=CONTEXT_BARS)
        extrema, source = self._extrema(alert, rows)
        return build_evidence(alert, bars=rows, extrema=extrema, extrema_source=source)

    def write(self, alert: AlertMessage) -> Evidence:
        """Gather and write; raises (botocore errors included) if either object could not be written."""
        evidence = self.gather(alert)
        if evidence.chart_png is not None:
            self._put(evidence.keys.chart, evidence.chart_png, CHART_CONTENT_TYPE)
        self._put(evidence.keys.data, evidence.data_bytes, DATA_CONTENT_TYPE)
        return evidence

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        # No encryption headers: the bucket's default (SSE-KMS, the platform key, bucket key) applies,
        # and a header naming no key would pick the AWS-managed key instead.
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)

    def _extrema(self, alert: AlertMessage, rows: list[dict[str, float]]) -> tuple[list[tuple[int, float]], ExtremaSource]:
        carried = extrema_from_details(alert)
        if carried:
            return carried, ExtremaSource.ALERT
        stored = self._table.pattern(alert.symbol, keys.pattern_sort_key(alert.endTimestamp, alert.pattern))
        if stored and stored["extrema"] and stored["startTimestamp"] == alert.startTimestamp:
            return [(point["timestamp"], point["price"]) for point in stored["extrema"]], ExtremaSource.STORED_PATTERN
        found = redetected_extrema(alert, rows)
        if found:
            return found, ExtremaSource.RE_DETECTED
        logger.warning("no extrema found for alert %s: the chart shows the window without them", alert.alertId)
        return [], ExtremaSource.UNAVAILABLE

    def _breaches(self, alert: AlertMessage) -> list[dict[str, Any]]:
        """The patterns that breached in the threshold alert's window, read again from RecentPatternsIndex."""
        details = alert.details or {}
        try:
            since = datetime.fromisoformat(str(details["windowStart"]))
            until = datetime.fromisoformat(str(details["windowEnd"]))
            threshold = float(details["confidenceThreshold"])
        except (KeyError, ValueError):
            logger.warning("threshold alert %s has no readable window; evidence lists no breaches", alert.alertId)
            return []
        patterns = [p for p in self._table.recent_patterns(since, until) if p["confidence"] > threshold]
        return sorted(patterns, key=lambda p: (p["detectedAt"], p["symbol"], p["pattern"]))
