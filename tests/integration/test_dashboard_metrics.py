"""After the demo's traffic, every metric a dashboard widget or an alarm references has data (issue 10, section 7).

The references are read back from the emulator (GetDashboard, DescribeAlarms), so a widget or alarm
added later is checked too. The only exceptions are tooling.metric_references.NEEDS_REAL_AWS (billing,
WAF), each with its reason; docs/local-platform.md explains what the demo does for the rest.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tooling import dashboard_render, demo, metric_references
from tooling.cloudwatch_metrics import Metric, MetricStat, widget_entries
from tooling.local_aws import admin

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo_window(deployed, endpoint) -> tuple[datetime, datetime]:
    """Run `make demo`'s script; the window holds its traffic only, not the other integration tests'. It ends at
    the platform clock's now: the demo moves that clock past the approvals' deadlines, and what happens after
    carries the moved clock's time. The clock goes back to real time afterwards, for the tests that follow.
    `--again`: on an emulator that already ran the demo (`make demo` before `make test`), its series continue as new days."""
    started = datetime.now(timezone.utc)
    try:
        assert demo.main(["--again"]) == 0
        yield started, datetime.fromtimestamp(admin.platform_clock(endpoint)["now"], timezone.utc) + timedelta(seconds=1)
    finally:
        admin.reset_clock(endpoint)


@pytest.fixture(scope="module")
def cloudwatch(session, endpoint):
    return session.client("cloudwatch", endpoint_url=endpoint)


@pytest.fixture(scope="module")
def checks(cloudwatch, deployed, demo_window) -> list[metric_references.DataCheck]:
    start, end = demo_window
    return metric_references.check_deployed(cloudwatch, deployed["dashboard_name"], start=start, end=end,
                                            alarm_action_prefix=deployed["ops_topic_arn"])


def test_every_referenced_metric_has_data_after_the_demo(checks):
    missing = [c.describe() for c in checks if c.missing]
    assert not missing, f"{len(missing)} of {len(checks)} referenced metrics have no data after the demo:\n" + "\n".join(missing)


def test_the_check_covers_the_dashboard_and_every_alarm(checks, cloudwatch, deployed):
    alarms = metric_references.read_alarms(cloudwatch, action_prefix=deployed["ops_topic_arn"])
    referencing = {where for c in checks for where in c.reference.referenced_by}
    assert {f"alarm {a['AlarmName']!r}" for a in alarms if "MetricName" in a or "Metrics" in a} <= referencing
    assert any(where.startswith("widget ") for where in referencing)
    assert any(isinstance(c.reference.target, Metric) and c.reference.target.namespace == "StockPatternDetection" for c in checks)


def test_only_metrics_that_need_real_aws_are_excused(checks):
    excused = {(c.reference.namespace, c.reference.metric_name) for c in checks if not c.has_data and not c.missing}
    assert {namespace for namespace, _ in excused} <= {"AWS/Billing", "AWS/WAFV2"}
    assert ("AWS/Billing", "EstimatedCharges") in excused  # the billing alarm is deployed and checked


def test_the_demo_renders_the_dashboard_with_data_in_every_widget_that_can_have_it(cloudwatch, deployed, demo_window, tmp_path):
    start, end = demo_window
    assert dashboard_render.DEFAULT_OUTPUT.stat().st_mtime >= start.timestamp(), "the demo did not write demo-output/dashboard.png"
    report = dashboard_render.render_deployed(cloudwatch, deployed["dashboard_name"], tmp_path / "dashboard.png", start=start, end=end)
    body = metric_references.read_dashboard(cloudwatch, deployed["dashboard_name"])
    only_real_aws = {
        w["properties"]["title"] for w in body["widgets"] if w["type"] == "metric"
        and all(isinstance(e, MetricStat) and metric_references.needs_real_aws(e.metric.namespace, e.metric.name)
                for e in widget_entries(w["properties"]))
    }
    assert only_real_aws  # the WAF widget
    assert {w.title for w in report.without_data} == only_real_aws
    assert all(a.state != "NOT FOUND" for w in report.widgets for a in w.alarms)
