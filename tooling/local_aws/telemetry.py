"""What CloudWatch does with a function's output and with the services' own metrics, on the emulator.

- Log lines go to a log group and stream, written straight into the emulator's CloudWatch Logs.
- Embedded Metric Format: every log line that is a JSON object with `_aws.CloudWatchMetrics` becomes
  metric data, as CloudWatch extracts it: for each directive, its namespace, each metric in it, for
  every dimension set (one datum per set), with the unit, the `_aws.Timestamp` and every value when
  the member holds a list.
- Service metrics (AWS/Lambda, AWS/States, AWS/ApiGateway, AWS/SQS, AWS/Kinesis) are put the same way.

Timestamps are on the platform clock (clock.py).
"""
from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterable
from typing import Any

from . import clock

# EMF allows at most 30 dimensions in a dimension set.
_MAX_EMF_DIMENSIONS = 30


def _logs(account: str, region: str):
    from moto.logs.models import logs_backends

    return logs_backends[account][region]


def _cloudwatch(account: str, region: str):
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[account][region]


_stream_lock = threading.Lock()


def write_log_events(account: str, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
    """Append (timestamp ms, message) events; creates the group (as Lambda would) and the stream when missing."""
    if not events:
        return
    backend = _logs(account, region)
    with _stream_lock:
        if group not in backend.groups:
            backend.ensure_log_group(group)
        if stream not in backend.groups[group].streams:
            backend.create_log_stream(group, stream)
    ordered = sorted(events, key=lambda e: e[0])
    backend.put_log_events(group, stream, [{"timestamp": ts, "message": message} for ts, message in ordered])


def to_datetime(timestamp_ms: float | None) -> dt.datetime:
    """moto's CloudWatch compares naive UTC datetimes."""
    seconds = clock.now() if timestamp_ms is None else timestamp_ms / 1000.0
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).replace(tzinfo=None)


def put_metrics(account: str, region: str, namespace: str, data: Iterable[dict[str, Any]]) -> None:
    data = list(data)
    if data:
        _cloudwatch(account, region).put_metric_data(namespace, data)


def metric(name: str, value: float, unit: str, dimensions: dict[str, str], timestamp_ms: float | None = None) -> dict[str, Any]:
    return {
        "MetricName": name,
        "Value": float(value),
        "Unit": unit,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        "Timestamp": to_datetime(timestamp_ms),
    }


class EmfError(ValueError):
    """A line that claims to be EMF (has _aws.CloudWatchMetrics) but breaks the specification."""


def emf_metric_data(line: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """(namespace, MetricData) pairs CloudWatch would extract from one log line; [] for a plain line."""
    text = line.strip()
    if not text.startswith("{") or "CloudWatchMetrics" not in text:
        return []
    try:
        document = json.loads(text)
    except ValueError:
        return []
    meta = document.get("_aws") if isinstance(document, dict) else None
    if not isinstance(meta, dict) or "CloudWatchMetrics" not in meta:
        return []
    timestamp = meta.get("Timestamp")
    if not isinstance(timestamp, (int, float)):
        raise EmfError("_aws.Timestamp must be a number of milliseconds")
    extracted = []
    for directive in meta["CloudWatchMetrics"]:
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str) or not namespace:
            raise EmfError("a CloudWatchMetrics directive needs a Namespace")
        dimension_sets = directive.get("Dimensions") or [[]]
        data = []
        for definition in directive.get("Metrics", []):
            name = definition.get("Name")
            if name not in document:
                continue  # CloudWatch skips a metric whose member is missing
            values = document[name] if isinstance(document[name], list) else [document[name]]
            values = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if not values:
                continue
            for dimension_set in dimension_sets:
                if len(dimension_set) > _MAX_EMF_DIMENSIONS or any(key not in document for key in dimension_set):
                    raise EmfError(f"dimension set {dimension_set} names a member the document does not have")
                datum = {
                    "MetricName": name,
                    "Dimensions": [{"Name": key, "Value": str(document[key])} for key in dimension_set],
                    "Timestamp": to_datetime(timestamp),
                    **({"Unit": definition["Unit"]} if definition.get("Unit") else {}),
                }
                datum.update({"Values": values} if len(values) > 1 else {"Value": values[0]})
                data.append(datum)
        if data:
            extracted.append((namespace, data))
    return extracted


def publish_emf(account: str, region: str, lines: Iterable[str]) -> int:
    """Put every EMF line's metrics; returns how many data points were put. Broken EMF is skipped, as CloudWatch does."""
    points = 0
    for line in lines:
        try:
            extracted = emf_metric_data(line)
        except (EmfError, TypeError, ValueError):
            continue
        for namespace, data in extracted:
            put_metrics(account, region, namespace, data)
            points += sum(len(d.get("Values", [0])) for d in data)
    return points


_exact = threading.local()


def install_exact_statistics() -> list[str]:
    """GetMetricStatistics: CloudWatch matches the dimensions exactly; moto also counts every metric that
    has more dimensions than asked for (so a [service] query would add up [service, PatternType] data too)."""
    from moto.cloudwatch.models import CloudWatchBackend, Dimension, MetricDatumBase

    original_filter = MetricDatumBase.filter
    original_statistics = CloudWatchBackend.get_metric_statistics

    def filter(self, namespace, name, dimensions, already_present_metrics=None):
        if getattr(_exact, "on", False) and dimensions:
            wanted = sorted(Dimension(d["Name"], d.get("Value")) for d in dimensions)
            if sorted(self.dimensions) != wanted:
                return False
        return original_filter(self, namespace, name, dimensions, already_present_metrics)

    def get_metric_statistics(self, *args, **kwargs):
        _exact.on = True
        try:
            return original_statistics(self, *args, **kwargs)
        finally:
            _exact.on = False

    MetricDatumBase.filter = filter
    CloudWatchBackend.get_metric_statistics = get_metric_statistics
    return ["cloudwatch: GetMetricStatistics matches dimensions exactly, as CloudWatch does"]
