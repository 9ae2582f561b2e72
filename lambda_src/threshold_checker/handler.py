"""threshold-checker: on an EventBridge schedule, query recent patterns through RecentPatternsIndex
and queue one alert when at least THRESHOLD_CHECK_MIN_BREACHES of them reach ALERT_CONFIDENCE_THRESHOLD.

This is the checker's own path: its alert goes to AlertQueue directly, not through the analysis workflow.

The window ends at the scheduled event's `time`, not at the clock, so a retried run evaluates the
same window and produces the same alert id. Only the schedule's own events start a check (source
aws.events, detail-type "Scheduled Event", the rule THRESHOLD_CHECK_RULE_NAME in `resources`, a time
at most 30 hours old): anything else is answered {"rejected": <reason>}, logged and counted.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from patternwatch_shared import aws, thresholds
from patternwatch_shared.config import EnvReader, alert_confidence_threshold
from patternwatch_shared.messaging import AlertQueue
from patternwatch_shared.models import AlertMessage, build_validators, utc_now
from patternwatch_shared.names.functions import (
    ENV_ALERT_QUEUE_URL, ENV_THRESHOLD_CHECK_MIN_BREACHES, ENV_THRESHOLD_CHECK_RULE_NAME, ENV_THRESHOLD_LOOKBACK_MINUTES,
    ENV_TRADING_PATTERNS_TABLE, THRESHOLD_CHECKER,
)
from patternwatch_shared.names.metrics import (
    METRIC_ALERTS_QUEUED, METRIC_EVENTS_REJECTED, METRIC_PATTERN_ITEMS_SKIPPED, METRIC_PATTERNS_EVALUATED,
    METRIC_THRESHOLD_BREACHES, METRIC_THRESHOLD_CHECKS,
)
from patternwatch_shared.names.table import TABLE_PARTITION_KEY, TABLE_SORT_KEY
from patternwatch_shared.storage import TradingPatternsTable
from patternwatch_shared.telemetry import powertools_for

SPEC = THRESHOLD_CHECKER
build_validators(AlertMessage)
logger, tracer, metrics = powertools_for(SPEC)
# How far back each run looks when THRESHOLD_LOOKBACK_MINUTES is not set: the schedule's period.
DEFAULT_LOOKBACK_MINUTES = 5
MAX_LOOKBACK_MINUTES = 7 * 24 * 60  # one GSI query per day of the window


class SkippedItems:
    """Index items the check cannot read: logged with their key, counted, left out of the check."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, item: dict[str, Any], reason: str) -> None:
        self.count += 1
        key = {name: item.get(name) for name in (TABLE_PARTITION_KEY, TABLE_SORT_KEY)}
        logger.warning("index item skipped", extra={"key": key, "reason": reason})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Counted before anything can fail, so failed runs show up as checks too.
    metrics.add_metric(name=METRIC_THRESHOLD_CHECKS, unit=MetricUnit.Count, value=1)
    env = EnvReader(SPEC)
    try:
        window_end = thresholds.scheduled_time(event, rule_name=env.require(ENV_THRESHOLD_CHECK_RULE_NAME), now=utc_now())
    except thresholds.ForeignEvent as refusal:
        # Answered, not raised: a retry could never make it the schedule's event.
        logger.warning("event rejected", extra={"reason": str(refusal)})
        metrics.add_metric(name=METRIC_EVENTS_REJECTED, unit=MetricUnit.Count, value=1)
        return {"rejected": str(refusal)}
    confidence_threshold = alert_confidence_threshold(env)
    min_breaches = env.require_count(ENV_THRESHOLD_CHECK_MIN_BREACHES)
    lookback = env.optional_float(
        ENV_THRESHOLD_LOOKBACK_MINUTES, DEFAULT_LOOKBACK_MINUTES, minimum=1, maximum=MAX_LOOKBACK_MINUTES
    )
    window_start = window_end - timedelta(minutes=lookback)
    table = TradingPatternsTable(aws.client("dynamodb"), env.require(ENV_TRADING_PATTERNS_TABLE))
    skipped = SkippedItems()
    result = thresholds.evaluate(
        table.recent_patterns(window_start, window_end, skip=skipped.add),
        confidence_threshold=confidence_threshold,
        min_breaches=min_breaches,
    )
    metrics.add_metric(name=METRIC_PATTERNS_EVALUATED, unit=MetricUnit.Count, value=result.evaluated)
    metrics.add_metric(name=METRIC_PATTERN_ITEMS_SKIPPED, unit=MetricUnit.Count, value=skipped.count)
    metrics.add_metric(name=METRIC_THRESHOLD_BREACHES, unit=MetricUnit.Count, value=len(result.breaches))

    alert_id = None
    if result.exceeded:
        alert = thresholds.threshold_alert(
            result,
            window_start=window_start,
            window_end=window_end,
            confidence_threshold=confidence_threshold,
            min_breaches=min_breaches,
        )
        if AlertQueue(aws.client("sqs"), env.require(ENV_ALERT_QUEUE_URL)).send([alert]):
            # Raising makes EventBridge's async invoke retry the same window.
            raise RuntimeError(f"could not queue threshold alert {alert.alertId}")
        metrics.add_metric(name=METRIC_ALERTS_QUEUED, unit=MetricUnit.Count, value=1)
        alert_id = alert.alertId
    summary = {
        "evaluated": result.evaluated,
        "breaches": len(result.breaches),
        "exceeded": result.exceeded,
        "skipped": skipped.count,
        "alertId": alert_id,
        "windowStart": window_start.isoformat(),
        "windowEnd": window_end.isoformat(),
    }
    logger.info("threshold check", extra=summary)
    return summary
