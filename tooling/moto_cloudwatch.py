"""CloudWatch metric reads on the emulator, answered as CloudWatch answers them.

moto 5.2.1 stores every PutMetricData value, but reading them back has three gaps that a dashboard
renderer (tooling/dashboard_render.py) and the metric checks (tooling/metric_references.py) run into.
`install()` fixes them in this process; tooling/moto_extensions.py calls it before the server starts,
and the in-process test servers call it too. One function per gap, each saying which call and why.

Still missing after these (nothing in this project depends on them): GetMetricStatistics ignores
`ExtendedStatistics` (it answers datapoints without them); metric math in GetMetricData only passes a
query's own result through (`SEARCH(...)` and arithmetic are not evaluated: the renderer expands SEARCH
itself); statistics beyond Sum/Average/Minimum/Maximum/SampleCount/pNN (trimmed means, IQM, ...); and
a GetMetricData query with dimensions ignores its namespace (harmless here: no two namespaces we graph
share a metric name with the same dimension names).
"""
from __future__ import annotations

import math
import re

INSTALLED: list[str] = []

_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the values at or below it.

    CloudWatch estimates percentiles from a sketch of the raw values; the emulator keeps every value, so
    it can answer exactly, and nearest rank always answers a value that was published.
    """
    ordered = sorted(values)
    rank = max(1, math.ceil(round(p / 100 * len(ordered), 9)))  # round: 99.9% of 1000 is 999, not 999.0000000000001
    return ordered[rank - 1]


def get_metric_data_percentiles() -> None:
    """GetMetricData with Stat `p99` (any pNN or pNN.N): moto computes no percentile, puts None into the
    values and the response serialiser fails, so the whole call answers HTTP 500. Percentiles come from
    the published single values; a period holding only statistic sets (which carry no distribution) has
    no percentile, and, as in CloudWatch, answers no datapoint instead of a null one."""
    from moto.cloudwatch import models

    original_stat = models.Statistics.get_statistics_for_type
    original_get_metric_data = models.CloudWatchBackend.get_metric_data

    def get_statistics_for_type(self, stat: str):
        match = _PERCENTILE.match(stat)
        if match is None:
            return original_stat(self, stat)
        values = self.metric_single_values_list
        return percentile(values, float(match.group(1))) if values else None

    def get_metric_data(self, *args, **kwargs):
        results = original_get_metric_data(self, *args, **kwargs)
        for result in results:
            kept = [(t, v) for t, v in zip(result["timestamps"], result["values"]) if v is not None]
            result["timestamps"] = [t for t, _ in kept]
            result["values"] = [v for _, v in kept]
        return results

    models.Statistics.get_statistics_for_type = get_statistics_for_type
    models.CloudWatchBackend.get_metric_data = get_metric_data
    INSTALLED.append("cloudwatch:GetMetricData percentile statistics")


def metric_dimension_order() -> None:
    """GetMetricData matches a query's dimensions by comparing sorted lists, and moto's Dimension sorts
    by `name < other.name and value < other.name`, which is no ordering: whether
    [ApiName=pattern-detection-api-local, Stage=v1] finds data published as [Stage=v1, ApiName=...]
    depends on the values. CloudWatch treats dimensions as a set, so order them by (name, value)."""
    from moto.cloudwatch.models import Dimension

    def less_than(self, other) -> bool:
        return (self.name or "", self.value or "") < (other.name or "", other.value or "")

    Dimension.__lt__ = less_than
    INSTALLED.append("cloudwatch:GetMetricData dimensions in any order")


def list_metrics_once_each() -> None:
    """ListMetrics: moto means to list each metric once, but its `are_dimensions_same` answers False
    for any two metrics with two or more dimensions, so a metric is listed once per datapoint (thousands
    of rows after a demo, and paging at 500). Compare dimensions as sets, as CloudWatch does."""
    from moto.cloudwatch import models

    def are_dimensions_same(metric_dimensions, dimensions) -> bool:
        return {(d.name, d.value) for d in metric_dimensions} == {(d.name, d.value) for d in dimensions}

    models.are_dimensions_same = are_dimensions_same
    INSTALLED.append("cloudwatch:ListMetrics each metric once")


def install() -> list[str]:
    """Apply every fix once (idempotent); returns what was installed."""
    if not INSTALLED:
        get_metric_data_percentiles()
        metric_dimension_order()
        list_metrics_once_each()
    return list(INSTALLED)
