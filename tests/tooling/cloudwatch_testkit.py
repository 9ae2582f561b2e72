"""Helpers for the CloudWatch tooling tests: publish datapoints, find widgets, read pixels."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from patternwatch_infra import dashboard
from patternwatch_shared.names.functions import KINESIS_CONSUMER, PLATFORM_FUNCTIONS
from tooling.cloudwatch_metrics import Metric, MetricStat, Search, widget_entries

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
SUFFIX = "local"


def local_dashboard_inputs() -> dashboard.DashboardInputs:
    """The names the `local` stack gives its resources, as plain strings (what GetDashboard returns there)."""
    functions = [f"{spec.base_name}-{SUFFIX}" for spec in PLATFORM_FUNCTIONS]
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:"
    alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:"
    return dashboard.DashboardInputs(
        region=REGION,
        function_names=functions,
        kinesis_consumer_function=f"{KINESIS_CONSUMER.base_name}-{SUFFIX}",
        stream_name=f"MarketDataStream-{SUFFIX}",
        fan_out_name=f"MarketDataFanOut-{SUFFIX}",
        queue_names=[f"AlertQueue-{SUFFIX}", f"PendingApprovals-{SUFFIX}", f"StreamConsumerFailures-{SUFFIX}"],
        dead_letter_queue_names=[f"AlertQueue-DLQ-{SUFFIX}", f"PendingApprovals-DLQ-{SUFFIX}", f"ThresholdChecker-DLQ-{SUFFIX}",
                                 f"ThresholdCheckRule-DLQ-{SUFFIX}", f"PatternDetectedRule-DLQ-{SUFFIX}"],
        api_name=f"pattern-detection-api-{SUFFIX}",
        api_stage="v1",
        web_acl_name=f"PatternDetectionWAF-{SUFFIX}",
        state_machine_arns=[f"{machine}PatternAnalysisWorkflow-{SUFFIX}"],
        alarm_arns=[f"{alarm}PatternDetectionDuration-Anomaly-{SUFFIX}", f"{alarm}PatternAnalysisWorkflow-Failures-{SUFFIX}"],
    )


NOW = datetime.now(timezone.utc).replace(microsecond=0)
# Inside every period bucket of the last three hours, whichever way a period is aligned.
RECENT = NOW - timedelta(minutes=30)


def put(cloudwatch, metric: Metric, values: Sequence[float], *, at: datetime = RECENT, reverse_dimensions: bool = False) -> None:
    """Publish `values` of one metric at one moment, the way an EMF line or a service would."""
    dimensions = [{"Name": k, "Value": v} for k, v in metric.dimensions]
    if reverse_dimensions:
        dimensions.reverse()
    for offset in range(0, len(values), 150):  # PutMetricData takes at most 150 values a datum
        cloudwatch.put_metric_data(Namespace=metric.namespace, MetricData=[
            {"MetricName": metric.name, "Dimensions": dimensions, "Values": [float(v) for v in values[offset : offset + 150]], "Timestamp": at}
        ])


def put_series(cloudwatch, metric: Metric, values: Sequence[float], *, every: timedelta = timedelta(minutes=15)) -> None:
    """One value every `every`, the newest at RECENT."""
    for i, value in enumerate(values):
        put(cloudwatch, metric, [value], at=RECENT - i * every)


def widgets_where(body: dict, predicate: Callable[[dict], bool]) -> list[dict]:
    return [w for w in body["widgets"] if predicate(w.get("properties", {}))]


def one_widget(body: dict, predicate: Callable[[dict], bool], *, avoid: Sequence[dict] = ()) -> dict:
    """The first widget a predicate picks that graphs no metric of the `avoid` widgets (so data published
    for one widget shows in no other); the tests choose widgets by what they exercise, not by title."""
    taken = {line.metric.key for widget in avoid for line in metric_lines(widget)}
    found = [w for w in widgets_where(body, predicate) if not taken & {line.metric.key for line in metric_lines(w)}]
    assert found, "no widget of the dashboard has this feature any more: choose another one for the test"
    return found[0]


def metric_lines(widget: dict) -> list[MetricStat]:
    return [e for e in widget_entries(widget["properties"]) if isinstance(e, MetricStat)]


def searches(widget: dict) -> list[Search]:
    return [e for e in widget_entries(widget["properties"]) if isinstance(e, Search)]


def has_percentile(properties: dict) -> bool:
    return any(isinstance(e, MetricStat) and e.stat.startswith("p") for e in widget_entries(properties))


def has_search(properties: dict) -> bool:
    return any(isinstance(e, Search) for e in widget_entries(properties))


def coloured_pixels(image, left: int, top: int, width: int, height: int) -> int:
    """Pixels in a box whose colour is clearly not grey: data drawn there (lines, areas, bars, wedges)."""
    region = image[top : top + height, left : left + width, :3]
    return int(((region.max(axis=2) - region.min(axis=2)) > 0.3).sum())
