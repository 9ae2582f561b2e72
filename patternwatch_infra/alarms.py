"""The one way this platform makes a CloudWatch alarm (function.py and monitoring.py both use it).

Every alarm treats missing data as not breaching (no traffic is not an incident), notifies the given
topics when it fires and, unless `notify_ok=False`, again when it recovers. It watches either one
`Metric` against a threshold, or metric-math `queries` (against a threshold or a band).

`alarm` is a function, not a construct: the alarm is created in the caller's scope under the caller's
id, so it keeps the construct path, and with it the Terraform address, it always had.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

AT_OR_ABOVE = "GreaterThanOrEqualToThreshold"
ABOVE = "GreaterThanThreshold"
ABOVE_BAND = "GreaterThanUpperThreshold"
MISSING_DATA_IS_FINE = "notBreaching"


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric and the statistic to watch: "Sum", "Maximum", ... or a percentile ("p99")."""

    namespace: str
    name: str
    stat: str
    dimensions: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_percentile(self) -> bool:
        return self.stat.startswith("p")

    def query(self, query_id: str, *, period: int, return_data: bool = False) -> CloudwatchMetricAlarmMetricQuery:
        """The metric as one query of a metric-math alarm (an input, unless `return_data`)."""
        metric = CloudwatchMetricAlarmMetricQueryMetric(
            namespace=self.namespace, metric_name=self.name, dimensions=dict(self.dimensions), period=period, stat=self.stat
        )
        return CloudwatchMetricAlarmMetricQuery(id=query_id, return_data=return_data, metric=metric)


@dataclass(frozen=True)
class Evaluation:
    """How long a breach must last: `datapoints` of the last `periods` periods of `period_seconds` each."""

    period_seconds: int | None = None  # None for metric math: each query carries its own period
    periods: int = 1
    datapoints: int | None = None  # None: all of them


# The platform's usual evaluation: 3 of the last 5 one-minute periods.
THREE_OF_FIVE_MINUTES = Evaluation(period_seconds=60, periods=5, datapoints=3)


def alarm(
    scope: Construct,
    id: str,
    *,
    name: str,
    description: str,
    actions: Sequence[str],
    evaluation: Evaluation,
    metric: Metric | None = None,
    queries: Sequence[CloudwatchMetricAlarmMetricQuery] = (),
    threshold: float | None = None,
    band_id: str | None = None,
    comparison: str = AT_OR_ABOVE,
    notify_ok: bool = True,
    provider: AwsProvider | None = None,
) -> CloudwatchMetricAlarm:
    """An alarm on `metric` against `threshold`, or on metric-math `queries` against `threshold` or the band `band_id`."""
    if (metric is None) == (not queries):
        raise ValueError(f"{name}: an alarm watches either one metric or metric-math queries")
    watched = {}
    if metric is not None:
        statistic = "extended_statistic" if metric.is_percentile else "statistic"
        watched = {"namespace": metric.namespace, "metric_name": metric.name, "dimensions": dict(metric.dimensions), statistic: metric.stat}
    return CloudwatchMetricAlarm(
        scope,
        id,
        alarm_name=name,
        alarm_description=description,
        **watched,
        metric_query=list(queries) or None,
        period=evaluation.period_seconds,
        evaluation_periods=evaluation.periods,
        datapoints_to_alarm=evaluation.datapoints,
        threshold=threshold,
        threshold_metric_id=band_id,
        comparison_operator=comparison,
        treat_missing_data=MISSING_DATA_IS_FINE,
        alarm_actions=list(actions),
        ok_actions=list(actions) if notify_ok else None,
        provider=provider,
    )
