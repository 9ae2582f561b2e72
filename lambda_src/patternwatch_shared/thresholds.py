"""threshold-checker rules, pure.

A recent pattern *breaches* when its confidence is at or above the alert threshold (ALERT_CONFIDENCE_THRESHOLD,
the same cut as every other alert decision). When at least THRESHOLD_CHECK_MIN_BREACHES patterns breach
within the look-back window, one alert is queued for the window.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from patternwatch_shared import keys
from patternwatch_shared.detection import alerts
from patternwatch_shared.models import AlertMessage
from patternwatch_shared.names.messages import ALERT_SOURCE_THRESHOLD, SEVERITY_HIGH
from patternwatch_shared.names.table import KEY_SEPARATOR


@dataclass
class ThresholdResult:
    evaluated: int = 0
    breaches: list[dict[str, Any]] = field(default_factory=list)
    exceeded: bool = False


def evaluate(patterns: Iterable[dict[str, Any]], *, confidence_threshold: float, min_breaches: int) -> ThresholdResult:
    result = ThresholdResult()
    for pattern in patterns:
        result.evaluated += 1
        if alerts(pattern["confidence"], confidence_threshold):
            result.breaches.append(pattern)
    result.exceeded = len(result.breaches) >= min_breaches
    return result


def threshold_alert(
    result: ThresholdResult,
    *,
    window_start: datetime,
    window_end: datetime,
    confidence_threshold: float,
    min_breaches: int,
) -> AlertMessage:
    top = max(result.breaches, key=lambda p: p["confidence"])
    return AlertMessage(
        # One id per window: a retried scheduled run produces the same alert id.
        alertId=f"threshold{KEY_SEPARATOR}{keys.iso_utc(window_end)}",
        source=ALERT_SOURCE_THRESHOLD,
        severity=SEVERITY_HIGH,
        detectedAt=keys.iso_utc(window_end),
        confidence=top["confidence"],
        details={
            "breaches": len(result.breaches),
            "evaluated": result.evaluated,
            "minBreaches": min_breaches,
            "confidenceThreshold": confidence_threshold,
            "windowStart": keys.iso_utc(window_start),
            "windowEnd": keys.iso_utc(window_end),
            "topSymbol": top["symbol"],
            "topPattern": top["pattern"],
        },
    )
