"""Every metric the deployed dashboard or an alarm references, and whether it has data in a time range.

Usage: python -m tooling.metric_references [--hours 3]   (the local deployment, up to the platform clock's now;
       prints one line a metric)

References come from what is deployed, read back from CloudWatch: the dashboard body (GetDashboard, so
every Terraform reference is resolved) and the alarms (DescribeAlarms): plain metric alarms, alarms on
an extended statistic, metric-math alarms (each MetricStat of their `Metrics`) and anomaly-detection
alarms (the metric the band is computed from; the band itself is an expression, not a metric). A
SEARCH in a widget is one reference that has data when any metric it finds has data.

Some metrics can only have data on real AWS; `NEEDS_REAL_AWS` lists them with the reason, and
`DataCheck.missing` is False for them. Everything else is expected to have data after the demo's traffic
once the local runtime publishes EMF and AWS/* metrics (tests/integration/test_dashboard_metrics.py).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .cloudwatch_metrics import Metric, MetricStat, Search, Unsupported, expand, fetch, widget_entries

DEFAULT_HOURS = 3


@dataclass(frozen=True)
class RealAwsOnly:
    namespace: str
    metric_name: str | None  # None: every metric of the namespace
    reason: str

    def covers(self, namespace: str | None, metric_name: str | None) -> bool:
        return namespace == self.namespace and (self.metric_name is None or metric_name == self.metric_name)


# The only referenced metrics that cannot have data on the local platform, whatever the traffic. Every
# other namespace the stacks reference is published by the local runtime (docs/local-platform.md).
NEEDS_REAL_AWS: tuple[RealAwsOnly, ...] = (
    RealAwsOnly("AWS/Billing", "EstimatedCharges",
                "only AWS Billing publishes it (us-east-1, a few times a day) from real charges; nothing runs up a bill locally"),
    RealAwsOnly("AWS/WAFV2", None,
                "no web ACL evaluates requests locally: the local API serves routes without WAF, and moto only stores the WAF configuration"),
)


@dataclass(frozen=True)
class Reference:
    """A metric (or a SEARCH, or an entry nobody can evaluate) and every widget and alarm that uses it."""

    target: Metric | Search | Unsupported
    referenced_by: tuple[str, ...]

    @property
    def namespace(self) -> str | None:
        return getattr(self.target, "namespace", None)

    @property
    def metric_name(self) -> str | None:
        if isinstance(self.target, Metric):
            return self.target.name
        return self.target.metric_name if isinstance(self.target, Search) else None

    def describe(self) -> str:
        return self.target.describe() if not isinstance(self.target, Unsupported) else f"{self.target.text} ({self.target.reason})"

    @property
    def needs_real_aws(self) -> str | None:
        return needs_real_aws(self.namespace, self.metric_name)


def needs_real_aws(namespace: str | None, metric_name: str | None) -> str | None:
    """Why a metric can only have data on real AWS, or None."""
    for rule in NEEDS_REAL_AWS:
        if rule.covers(namespace, metric_name):
            return rule.reason
    return None


def dashboard_references(body: dict) -> list[tuple[Metric | Search | Unsupported, str]]:
    found = []
    for widget in body.get("widgets", []):
        if widget.get("type") != "metric":
            continue
        where = f"widget {widget.get('properties', {}).get('title', '(untitled)')!r}"
        for entry in widget_entries(widget.get("properties", {})):
            found.append((entry.metric if isinstance(entry, MetricStat) else entry, where))
    return found


def alarm_references(alarms: Iterable[dict]) -> list[tuple[Metric, str]]:
    """Metric alarms as DescribeAlarms returns them; composite alarms reference alarms, not metrics."""
    found = []
    for alarm in alarms:
        where = f"alarm {alarm['AlarmName']!r}"
        if alarm.get("MetricName"):
            found.append((Metric.from_api({**alarm, "Dimensions": alarm.get("Dimensions", [])}), where))
        for query in alarm.get("Metrics", []):
            if "MetricStat" in query:
                found.append((Metric.from_api(query["MetricStat"]["Metric"]), where))
    return found


def referenced_metrics(dashboard_body: dict, alarms: Iterable[dict] = ()) -> list[Reference]:
    """Each referenced metric once (dimensions compared as a set), with everything that references it."""
    merged: dict[object, tuple[Metric | Search | Unsupported, list[str]]] = {}
    for target, where in [*dashboard_references(dashboard_body), *alarm_references(alarms)]:
        key = target.key if isinstance(target, Metric) else target
        entry = merged.setdefault(key, (target, []))
        if where not in entry[1]:
            entry[1].append(where)
    references = [Reference(target, tuple(where)) for target, where in merged.values()]
    return sorted(references, key=lambda r: (r.namespace or "", r.describe()))


# --- reading what is deployed ---------------------------------------------------------------------

def read_dashboard(cloudwatch, name: str) -> dict:
    return json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])


def read_alarms(cloudwatch, *, action_prefix: str | None = None) -> list[dict]:
    """Every metric and composite alarm (DescribeAlarms answers only metric alarms unless asked for both)."""
    request = {"AlarmTypes": ["MetricAlarm", "CompositeAlarm"], **({"ActionPrefix": action_prefix} if action_prefix else {})}
    alarms = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(**request):
        alarms += page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
    return alarms


def emulator_cloudwatch():
    """A CloudWatch client on the local emulator, or a clear error when none runs."""
    from . import emulator, local_platform

    if not emulator.is_healthy():
        raise SystemExit(f"error: no emulator answers at {emulator.endpoint()}; run `make demo` first")
    session, config = local_platform.emulator_session()
    return session.client("cloudwatch", endpoint_url=config.emulator.endpoint)


def deployed_names(dashboard: str | None = None) -> tuple[str, str | None]:
    """The dashboard's name and the ops topic every alarm notifies, from the deploy's flat outputs."""
    from .local_platform import FLAT_OUTPUTS

    outputs = json.loads(FLAT_OUTPUTS.read_text()) if FLAT_OUTPUTS.exists() else {}
    name = dashboard or outputs.get("dashboard_name")
    if not name:
        raise SystemExit(f"error: no dashboard_name in {FLAT_OUTPUTS}; deploy the local stack first (`make demo`), or pass --dashboard NAME")
    return name, outputs.get("ops_topic_arn")


# --- checking for data ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataCheck:
    reference: Reference
    samples: int  # values published in the range (SampleCount)
    found: tuple[Metric, ...] = ()  # for a SEARCH: the metrics it matched that have data
    error: str | None = None

    @property
    def has_data(self) -> bool:
        return self.samples > 0

    @property
    def missing(self) -> bool:
        """No data, and nothing but the local platform's traffic stands in the way."""
        return not self.has_data and self.reference.needs_real_aws is None

    def describe(self) -> str:
        if self.has_data:
            status = f"data ({self.samples} samples" + (f", {len(self.found)} metrics found)" if isinstance(self.reference.target, Search) else ")")
        elif self.reference.needs_real_aws:
            status = f"no data, needs real AWS: {self.reference.needs_real_aws}"
        else:
            status = f"NO DATA{': ' + self.error if self.error else ''}"
        return f"{self.reference.describe()}: {status}; used by {', '.join(self.reference.referenced_by)}"


def whole_range_period(start: datetime, end: datetime) -> int:
    """One period covering the range, in whole minutes (CloudWatch periods are multiples of 60 s)."""
    return max(60, math.ceil((end - start).total_seconds() / 60) * 60)


def check_data(cloudwatch, references: Sequence[Reference], start: datetime, end: datetime) -> list[DataCheck]:
    """Whether each reference has data in [start, end): SampleCount over one period spanning the range."""
    period = whole_range_period(start, end)
    checks: list[DataCheck | None] = [None] * len(references)
    plain: list[tuple[int, MetricStat]] = []
    for i, reference in enumerate(references):
        target = reference.target
        if isinstance(target, Metric):
            plain.append((i, MetricStat(target, "SampleCount", period)))
        elif isinstance(target, Search):
            lines = [MetricStat(line.metric, "SampleCount", period) for line in expand(cloudwatch, target)]
            with_data = [s for s in fetch(cloudwatch, lines, start, end) if s.has_data]
            checks[i] = DataCheck(reference, int(sum(sum(s.values) for s in with_data)), tuple(s.line.metric for s in with_data))
        else:
            checks[i] = DataCheck(reference, 0, error=target.reason)
    for (i, _), series in zip(plain, fetch(cloudwatch, [line for _, line in plain], start, end)):
        checks[i] = DataCheck(references[i], int(sum(series.values)))
    return checks


def check_deployed(cloudwatch, dashboard_name: str, *, start: datetime, end: datetime, alarm_action_prefix: str | None = None,
                   alarm_clients: Sequence = ()) -> list[DataCheck]:
    """Read the dashboard and the alarms back (from `cloudwatch` and any other region's client), then check."""
    alarms = [a for client in (cloudwatch, *alarm_clients) for a in read_alarms(client, action_prefix=alarm_action_prefix)]
    unique = list({a["AlarmArn"]: a for a in alarms}.values())
    return check_data(cloudwatch, referenced_metrics(read_dashboard(cloudwatch, dashboard_name), unique), start, end)


def platform_now(endpoint: str | None = None) -> datetime:
    """The emulator's platform clock: metrics carry its time, and the demo moves it ahead (past approval deadlines)."""
    from . import emulator
    from .local_aws import admin

    return datetime.fromtimestamp(admin.platform_clock(endpoint or emulator.endpoint())["now"], timezone.utc)


def time_range(hours: float, end: datetime | None = None) -> tuple[datetime, datetime]:
    end = end or datetime.now(timezone.utc)
    return end - timedelta(hours=hours), end


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="List every metric the deployed local dashboard and alarms reference, with or without data.")
    parser.add_argument("--hours", type=float, default=DEFAULT_HOURS, help=f"look back this many hours (default {DEFAULT_HOURS})")
    parser.add_argument("--dashboard", help="dashboard name (default: dashboard_name from cfn-outputs/flat-outputs.json)")
    args = parser.parse_args(argv)
    cloudwatch = emulator_cloudwatch()
    dashboard_name, ops_topic_arn = deployed_names(args.dashboard)
    start, end = time_range(args.hours, platform_now() + timedelta(seconds=1))
    checks = check_deployed(cloudwatch, dashboard_name, start=start, end=end, alarm_action_prefix=ops_topic_arn)
    for check in checks:
        print(check.describe())
    missing = [c for c in checks if c.missing]
    print(f"{len(checks)} referenced metrics: {sum(c.has_data for c in checks)} with data, {len(missing)} missing, "
          f"{sum(not c.has_data and not c.missing for c in checks)} need real AWS")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
