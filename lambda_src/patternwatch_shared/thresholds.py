"""threshold-checker rules, pure.

A recent pattern *breaches* when its confidence is at or above the alert threshold (ALERT_CONFIDENCE_THRESHOLD,
the same cut as every other alert decision). When at least THRESHOLD_CHECK_MIN_BREACHES patterns breach
within the look-back window, one alert is queued for the window.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from patternwatch_shared import keys
from patternwatch_shared.decoding import describe_validation_error
from patternwatch_shared.detection import alerts
from patternwatch_shared.models import AlertMessage
from patternwatch_shared.names.messages import (
    ALERT_SOURCE_THRESHOLD, SCHEDULED_EVENT_DETAIL_TYPE, SCHEDULED_EVENT_SOURCE, SEVERITY_HIGH,
)
from patternwatch_shared.names.table import KEY_SEPARATOR

# How late a scheduled event may arrive: EventBridge retries delivery to a target for up to 24 hours
# and Lambda keeps an asynchronous event for up to 6 more. How early: clock skew.
MAX_SCHEDULE_DELAY = timedelta(hours=30)
MAX_CLOCK_SKEW = timedelta(minutes=5)


class EventBridgeEvent(BaseModel):
    """An EventBridge event, as Powertools' EventBridgeModel reads it (same fields, types and aliases).

    Our own copy: importing that one model loads Powertools' whole parser.models package (every
    built-in event model), tens of ms of the threshold checker's cold start.
    """

    model_config = ConfigDict(populate_by_name=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]
    replay_name: str | None = Field(None, alias="replay-name")


class ForeignEvent(ValueError):
    """An event that is not the threshold checker's own schedule; the message says why."""


def scheduled_time(event: Any, *, rule_name: str, now: datetime) -> datetime:
    """The `time` of a scheduled event from the rule `rule_name`, in UTC; ForeignEvent for any other event.

    Only that rule may start a check: an event from another source or rule (anything that can
    invoke the function) would otherwise run one, and the time bounds keep a replayed or forged
    event from evaluating a window far from now (a year-1 time made the window arithmetic overflow).
    """
    try:
        scheduled = EventBridgeEvent.model_validate(event)
    except ValidationError as error:
        raise ForeignEvent(f"not an EventBridge event: {describe_validation_error(error)}") from None
    if scheduled.source != SCHEDULED_EVENT_SOURCE:
        raise ForeignEvent(f"source {scheduled.source[:64]!r} is not {SCHEDULED_EVENT_SOURCE!r}")
    if scheduled.detail_type != SCHEDULED_EVENT_DETAIL_TYPE:
        raise ForeignEvent(f"detail-type {scheduled.detail_type[:64]!r} is not {SCHEDULED_EVENT_DETAIL_TYPE!r}")
    if not any(_is_rule(resource, rule_name) for resource in scheduled.resources):
        raise ForeignEvent(f"not from rule {rule_name} (resources name no such rule)")
    moment = scheduled.time
    if moment.tzinfo is None:
        raise ForeignEvent("time has no time zone")
    if not now - MAX_SCHEDULE_DELAY <= moment <= now + MAX_CLOCK_SKEW:
        raise ForeignEvent(
            f"time {moment.isoformat()} is not within {MAX_SCHEDULE_DELAY} before or {MAX_CLOCK_SKEW} after "
            f"the clock ({now.isoformat()})"
        )
    return moment.astimezone(timezone.utc)


def _is_rule(resource: str, rule_name: str) -> bool:
    """`arn:<partition>:events:<region>:<account>:rule/<rule_name>` (schedules live on the default bus)."""
    parts = resource.split(":", 5)
    return len(parts) == 6 and parts[0] == "arn" and parts[2] == "events" and parts[5] == f"rule/{rule_name}"


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
