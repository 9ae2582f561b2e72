"""The PatternDetectionDashboard body as data: one function per widget, laid out in a 24-column grid.

Custom metrics use the names (and dimension sets) the handlers emit with, from patternwatch_shared.names:
Powertools adds the `service` dimension to every metric, and the per-value metrics (PatternType,
Severity, Action) carry one more. AWS metrics use their service's documented names and dimensions.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from patternwatch_shared.names.functions import (
    ALERT_PROCESSOR, APPROVAL_EXPIRY, APPROVAL_PROCESSOR, KINESIS_CONSUMER, PATTERN_DETECTOR, THRESHOLD_CHECKER,
)
from patternwatch_shared.names.messages import (
    ACTION_APPROVE, ACTION_AUTO_REJECT, ACTION_REJECT, ALERT_SEVERITIES, PATTERN_FAMILIES,
)
from patternwatch_shared.names.metrics import (
    DIMENSION_ACTION, DIMENSION_PATTERN_TYPE, DIMENSION_SERVICE, DIMENSION_SEVERITY, METRICS_NAMESPACE,
    METRIC_ALERT_PRIORITY, METRIC_APPROVALS_PROCESSED, METRIC_CONFIDENCE_SCORE, METRIC_EVENTS_REJECTED,
    METRIC_PATTERN_DETECTION_DURATION, METRIC_PATTERN_ITEMS_SKIPPED, METRIC_PATTERNS_EVALUATED,
    METRIC_THRESHOLD_CHECKS, PATTERN_TYPE_ALL,
)

WIDTH, HEIGHT = 12, 6
PERIOD_SECONDS = 300
DAY_SECONDS = 86_400
NS = METRICS_NAMESPACE


@dataclass(frozen=True)
class DashboardInputs:
    """Names and ARNs the widgets graph (plain strings or Terraform references)."""

    region: str
    function_names: Sequence[str]
    kinesis_consumer_function: str
    stream_name: str
    fan_out_name: str  # the stream's enhanced fan-out consumer
    queue_names: Sequence[str]
    dead_letter_queue_names: Sequence[str]
    api_name: str
    api_stage: str
    web_acl_name: str
    state_machine_arns: Sequence[str]
    alarm_arns: Sequence[str]


def custom(metric: str, *dimensions: str, **options: Any) -> list:
    """A metric of our namespace: ["StockPatternDetection", <name>, dim, value, ..., {options}]."""
    return [NS, metric, *dimensions, *([options] if options else [])]


def aws_metric(namespace: str, metric: str, *dimensions: str, **options: Any) -> list:
    return [namespace, metric, *dimensions, *([options] if options else [])]


def search(metric: str, dimension: str, stat: str) -> dict:
    """Every value of one dimension, found at view time (pattern names come from the engine)."""
    return {
        "expression": f"SEARCH('{{{NS},{dimension},{DIMENSION_SERVICE}}} MetricName=\"{metric}\"', '{stat}', {PERIOD_SECONDS})",
        "id": f"search_{metric.lower()}",
    }


def metric_widget(title: str, metrics: list, *, view: str = "timeSeries", stacked: bool = False, stat: str = "Sum",
                  period: int = PERIOD_SECONDS, region: str, **extra: Any) -> dict:
    properties = {"title": title, "view": view, "stacked": stacked, "metrics": metrics, "region": region, "stat": stat, "period": period}
    properties.update(extra)
    return {"type": "metric", "width": WIDTH, "height": HEIGHT, "properties": properties}


def widgets(inputs: DashboardInputs) -> list[dict]:
    r = inputs.region
    consumer = KINESIS_CONSUMER.service_name
    detector = PATTERN_DETECTOR.service_name
    checker = THRESHOLD_CHECKER.service_name
    service = DIMENSION_SERVICE
    lambdas = inputs.function_names
    api = ("ApiName", inputs.api_name, "Stage", inputs.api_stage)
    return [
        {
            "type": "text", "width": 24, "height": 2,
            "properties": {"markdown": "# PatternWatch\nStream ingest and detection, alerts and approvals, workflows, API and WAF, cost."},
        },
        # --- Detection (EMF metrics of the handlers) ---------------------------------------------
        metric_widget(
            "Pattern detection duration (ms)",
            [
                custom(METRIC_PATTERN_DETECTION_DURATION, service, consumer, DIMENSION_PATTERN_TYPE, PATTERN_TYPE_ALL,
                       stat="p50", label="stream p50"),
                custom(METRIC_PATTERN_DETECTION_DURATION, service, consumer, DIMENSION_PATTERN_TYPE, PATTERN_TYPE_ALL,
                       stat="p99", label="stream p99"),
                *[
                    custom(METRIC_PATTERN_DETECTION_DURATION, service, detector, DIMENSION_PATTERN_TYPE, family,
                           stat="Average", label=f"workflow {family}")
                    for family in PATTERN_FAMILIES
                ],
            ],
            stat="Average", region=r,
        ),
        metric_widget(
            "Confidence score by pattern (%)",
            [[search(METRIC_CONFIDENCE_SCORE, DIMENSION_PATTERN_TYPE, "Average")]],
            stat="Average", region=r,
        ),
        metric_widget(
            "Alerts by priority",
            [custom(METRIC_ALERT_PRIORITY, service, ALERT_PROCESSOR.service_name, DIMENSION_SEVERITY, s, label=s)
             for s in ALERT_SEVERITIES],
            view="pie", period=DAY_SECONDS, region=r,
        ),
        metric_widget(
            "Approvals processed",
            [
                *[custom(METRIC_APPROVALS_PROCESSED, service, APPROVAL_PROCESSOR.service_name, DIMENSION_ACTION, a, label=a)
                  for a in (ACTION_APPROVE, ACTION_REJECT)],
                # The expiry timer auto-rejects at the deadline; a link opened after it, before the timer ran, does too.
                custom(METRIC_APPROVALS_PROCESSED, service, APPROVAL_EXPIRY.service_name, DIMENSION_ACTION, ACTION_AUTO_REJECT,
                       label="auto-reject at the deadline"),
                custom(METRIC_APPROVALS_PROCESSED, service, APPROVAL_PROCESSOR.service_name, DIMENSION_ACTION, ACTION_AUTO_REJECT,
                       label="auto-reject on a late click"),
            ],
            view="bar", period=DAY_SECONDS, region=r,
        ),
        metric_widget(
            "Threshold checks and patterns evaluated",
            [
                custom(METRIC_THRESHOLD_CHECKS, service, checker),
                custom(METRIC_PATTERNS_EVALUATED, service, checker),
                # Both should stay at zero: unreadable index items, events that were not the schedule's.
                custom(METRIC_PATTERN_ITEMS_SKIPPED, service, checker),
                custom(METRIC_EVENTS_REJECTED, service, checker),
            ],
            stacked=True, region=r,
        ),
        metric_widget(
            "Last 24 hours",
            [
                custom(METRIC_PATTERNS_EVALUATED, service, checker, label="patterns evaluated"),
                custom(METRIC_THRESHOLD_CHECKS, service, checker, label="threshold checks"),
                custom(METRIC_APPROVALS_PROCESSED, service, APPROVAL_PROCESSOR.service_name, DIMENSION_ACTION,
                       ACTION_APPROVE, label="approved"),
            ],
            view="singleValue", period=DAY_SECONDS, region=r, setPeriodToTimeRange=True,
        ),
        # --- Lambda ---------------------------------------------------------------------------------
        metric_widget("Lambda errors", [aws_metric("AWS/Lambda", "Errors", "FunctionName", f) for f in lambdas], region=r),
        metric_widget("Lambda throttles", [aws_metric("AWS/Lambda", "Throttles", "FunctionName", f) for f in lambdas], stacked=True, region=r),
        metric_widget("Lambda duration p99 (ms)", [aws_metric("AWS/Lambda", "Duration", "FunctionName", f) for f in lambdas], stat="p99", region=r),
        # --- Kinesis --------------------------------------------------------------------------------
        metric_widget(
            "Kinesis iterator age (ms)",
            [
                aws_metric("AWS/Lambda", "IteratorAge", "FunctionName", inputs.kinesis_consumer_function, label="consumer iterator age"),
                aws_metric("AWS/Kinesis", "SubscribeToShardEvent.MillisBehindLatest", "StreamName", inputs.stream_name,
                           "ConsumerName", inputs.fan_out_name, label="enhanced fan-out behind latest"),
            ],
            stat="Maximum", region=r,
        ),
        metric_widget("Kinesis incoming records", [aws_metric("AWS/Kinesis", "IncomingRecords", "StreamName", inputs.stream_name)],
                      view="bar", region=r),
        # --- SQS --------------------------------------------------------------------------------------
        metric_widget(
            "SQS age of oldest message (s)",
            [aws_metric("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", q) for q in inputs.queue_names],
            stat="Maximum", region=r,
        ),
        metric_widget(
            "SQS depth (queues and dead-letter queues)",
            [aws_metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q) for q in (*inputs.queue_names, *inputs.dead_letter_queue_names)],
            stacked=True, stat="Maximum", region=r,
        ),
        metric_widget(
            "Dead-letter queue depth now",
            [aws_metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q) for q in inputs.dead_letter_queue_names],
            view="singleValue", stat="Maximum", region=r,
        ),
        # --- API and WAF ------------------------------------------------------------------------------
        metric_widget("API 4xx and 5xx", [aws_metric("AWS/ApiGateway", "4XXError", *api), aws_metric("AWS/ApiGateway", "5XXError", *api)],
                      view="bar", region=r),
        metric_widget(
            "API latency (ms)",
            [aws_metric("AWS/ApiGateway", "Latency", *api, stat="p50", label="p50"), aws_metric("AWS/ApiGateway", "Latency", *api, stat="p99", label="p99")],
            stat="Average", region=r,
        ),
        metric_widget(
            "WAF blocked requests",
            [aws_metric("AWS/WAFV2", "BlockedRequests", "WebACL", inputs.web_acl_name, "Region", r, "Rule", "ALL")],
            stacked=True, region=r,
        ),
        # --- Step Functions -----------------------------------------------------------------------------
        metric_widget(
            "Step Functions failures",
            [
                aws_metric("AWS/States", metric, "StateMachineArn", arn)
                for arn in inputs.state_machine_arns
                for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")
            ],
            view="bar", region=r,
        ),
        {
            "type": "alarm", "width": 24, "height": 4,
            "properties": {"title": "Platform alarms", "alarms": list(inputs.alarm_arns), "sortBy": "stateUpdatedTimestamp"},
        },
    ]


def body(inputs: DashboardInputs) -> dict:
    """Widgets flow left to right and wrap to a new row when the next one does not fit."""
    placed, x, y, row_height = [], 0, 0, 0
    for widget in widgets(inputs):
        if x + widget["width"] > 24:
            x, y, row_height = 0, y + row_height, 0
        placed.append({**widget, "x": x, "y": y})
        x += widget["width"]
        row_height = max(row_height, widget["height"])
    return {"widgets": placed}
