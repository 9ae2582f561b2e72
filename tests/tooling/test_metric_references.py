"""Which metrics the local dashboard and the alarms reference, and which have data (in-process emulator)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from cloudwatch_testkit import NOW, local_dashboard_inputs, put

from tooling import metric_references
from tooling.cloudwatch_metrics import Metric, Search, Unsupported
from tooling.metric_references import NEEDS_REAL_AWS, check_data, check_deployed, read_alarms, referenced_metrics

START, END = NOW - timedelta(hours=3), NOW + timedelta(seconds=1)
INPUTS = local_dashboard_inputs()
CONSUMER = INPUTS.kinesis_consumer_function
OPS_TOPIC = "arn:aws:sns:us-east-1:123456789012:PatternWatchOps-local"
DURATION = Metric("StockPatternDetection", "PatternDetectionDuration", (("service", "kinesis-consumer"), ("PatternType", "all")))


def lambda_metric(name: str, function: str, **extra: str) -> Metric:
    return Metric("AWS/Lambda", name, (("FunctionName", function), *extra.items()))


@pytest.fixture
def alarms(cloudwatch):
    """One alarm of each shape the stacks deploy, as the stacks configure them (patternwatch_infra)."""
    def alarm(name: str, **config):
        cloudwatch.put_metric_alarm(AlarmName=name, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                                    AlarmActions=[OPS_TOPIC], **config)

    def stat(metric: Metric, statistic: str) -> dict:
        return {"Metric": metric.as_api(), "Period": 60, "Stat": statistic}

    alarm(f"{CONSUMER}-Errors", Namespace="AWS/Lambda", MetricName="Errors", Dimensions=[{"Name": "FunctionName", "Value": CONSUMER}],
          Statistic="Sum", Period=60)
    alarm(f"{CONSUMER}-Duration", Namespace="AWS/Lambda", MetricName="Duration", Dimensions=[{"Name": "FunctionName", "Value": CONSUMER}],
          ExtendedStatistic="p99", Period=60)
    alias = {"Resource": f"{CONSUMER}:live"}
    alarm(f"{CONSUMER}-CanaryErrorRate", Metrics=[
        {"Id": "errors", "MetricStat": stat(lambda_metric("Errors", CONSUMER, **alias), "Sum"), "ReturnData": False},
        {"Id": "invocations", "MetricStat": stat(lambda_metric("Invocations", CONSUMER, **alias), "Sum"), "ReturnData": False},
        {"Id": "error_rate", "Expression": "100 * errors / MAX([invocations, 1])", "ReturnData": True},
    ])
    alarm("PatternDetectionDuration-Anomaly-local", ThresholdMetricId="band", Metrics=[
        {"Id": "duration", "MetricStat": stat(DURATION, "Average"), "ReturnData": True},
        {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(duration, 2)", "ReturnData": True},
    ])
    alarm("PatternWatchBilling-local", Namespace="AWS/Billing", MetricName="EstimatedCharges", Dimensions=[{"Name": "Currency", "Value": "USD"}],
          Statistic="Maximum", Period=21600)
    cloudwatch.put_metric_alarm(AlarmName="SomebodyElses", Namespace="AWS/EC2", MetricName="CPUUtilization", Statistic="Average", Period=60,
                                EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold", AlarmActions=["arn:other"])
    return read_alarms(cloudwatch, action_prefix=OPS_TOPIC)


def by_target(references) -> dict:
    return {(r.target.key if isinstance(r.target, Metric) else r.target): r for r in references}


def test_every_widget_metric_is_referenced_once_with_its_widgets(local_body):
    references = by_target(referenced_metrics(local_body))
    assert len(references) == len(referenced_metrics(local_body))
    for function in INPUTS.function_names:
        for name, title in (("Errors", "Lambda errors"), ("Throttles", "Lambda throttles"), ("Duration", "Lambda duration p99 (ms)")):
            assert references[lambda_metric(name, function).key].referenced_by == (f"widget {title!r}",)
    for arn in INPUTS.state_machine_arns:
        for name in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
            assert Metric("AWS/States", name, (("StateMachineArn", arn),)).key in references
    dead_letter = Metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", INPUTS.dead_letter_queue_names[0]),))
    assert len(references[dead_letter.key].referenced_by) == 2  # the depth graph and the single value
    (search,) = [r.target for r in references.values() if isinstance(r.target, Search)]
    assert (search.namespace, search.dimension_names, search.metric_name) == ("StockPatternDetection", {"PatternType", "service"}, "ConfidenceScore")
    assert not [r for r in references.values() if isinstance(r.target, Unsupported)]


def test_alarms_add_their_metrics_including_math_and_anomaly_detection_queries(local_body, alarms):
    assert "SomebodyElses" not in {a["AlarmName"] for a in alarms}
    references = by_target(referenced_metrics(local_body, alarms))
    assert references[lambda_metric("Errors", CONSUMER).key].referenced_by == ("widget 'Lambda errors'", f"alarm '{CONSUMER}-Errors'")
    assert f"alarm '{CONSUMER}-Duration'" in references[lambda_metric("Duration", CONSUMER).key].referenced_by
    for name in ("Errors", "Invocations"):
        assert references[lambda_metric(name, CONSUMER, Resource=f"{CONSUMER}:live").key].referenced_by == (f"alarm '{CONSUMER}-CanaryErrorRate'",)
    assert references[DURATION.key].referenced_by == ("widget 'Pattern detection duration (ms)'", "alarm 'PatternDetectionDuration-Anomaly-local'")
    billing = references[Metric("AWS/Billing", "EstimatedCharges", (("Currency", "USD"),)).key]
    assert billing.needs_real_aws and "Billing" in billing.needs_real_aws
    # Expressions (the error rate, the band) are not metrics and add no reference of their own.
    assert len(references) == len(referenced_metrics(local_body)) + 3


def test_only_billing_and_waf_need_real_aws(local_body, alarms):
    excepted = {(r.namespace, r.metric_name) for r in referenced_metrics(local_body, alarms) if r.needs_real_aws}
    assert excepted == {("AWS/Billing", "EstimatedCharges"), ("AWS/WAFV2", "BlockedRequests")}
    assert all(rule.reason for rule in NEEDS_REAL_AWS)


def test_check_data_tells_metrics_with_data_from_missing_ones(cloudwatch, local_body, alarms):
    put(cloudwatch, lambda_metric("Errors", CONSUMER), [0, 0, 1])
    put(cloudwatch, DURATION, [120.0, 80.0])
    put(cloudwatch, Metric("StockPatternDetection", "ConfidenceScore", (("PatternType", "double-top"), ("service", "kinesis-consumer"))), [91])
    put(cloudwatch, Metric("StockPatternDetection", "ConfidenceScore", (("PatternType", "cup"), ("service", "x"), ("extra", "y"))), [50])
    put(cloudwatch, lambda_metric("Throttles", CONSUMER), [0], at=START - timedelta(minutes=5))  # before the range
    checks = {(c.reference.target.key if isinstance(c.reference.target, Metric) else "search"): c
              for c in check_data(cloudwatch, referenced_metrics(local_body, alarms), START, END)}
    assert checks[lambda_metric("Errors", CONSUMER).key].samples == 3
    assert checks[DURATION.key].samples == 2
    search = checks["search"]
    assert search.has_data and [m.dimensions for m in search.found] == [(("PatternType", "double-top"), ("service", "kinesis-consumer"))]
    throttles = checks[lambda_metric("Throttles", CONSUMER).key]
    assert not throttles.has_data and throttles.missing and "NO DATA" in throttles.describe()
    billing = checks[Metric("AWS/Billing", "EstimatedCharges", (("Currency", "USD"),)).key]
    assert not billing.has_data and not billing.missing and "needs real AWS" in billing.describe()
    with_data = {key for key, c in checks.items() if c.has_data}
    assert with_data == {lambda_metric("Errors", CONSUMER).key, DURATION.key, "search"}


def test_check_deployed_reads_the_dashboard_and_alarms_back(cloudwatch, local_body, alarms):
    cloudwatch.put_dashboard(DashboardName="PatternDetectionDashboard-local", DashboardBody=json.dumps(local_body))
    put(cloudwatch, lambda_metric("Invocations", CONSUMER, Resource=f"{CONSUMER}:live"), [1, 1])
    checks = check_deployed(cloudwatch, "PatternDetectionDashboard-local", start=START, end=END, alarm_action_prefix=OPS_TOPIC)
    assert len(checks) == len(referenced_metrics(local_body, alarms))
    (invocations,) = [c for c in checks if c.has_data]
    assert invocations.reference.referenced_by == (f"alarm '{CONSUMER}-CanaryErrorRate'",)
    assert sum(c.missing for c in checks) == len(checks) - 1 - len([c for c in checks if c.reference.needs_real_aws])


def test_an_entry_nobody_can_evaluate_is_reported_as_missing(cloudwatch):
    body = {"widgets": [{"type": "metric", "properties": {"title": "math", "metrics": [[{"expression": "m1 * 2"}]]}}]}
    (check,) = check_data(cloudwatch, referenced_metrics(body), START, END)
    assert check.missing and "not evaluated" in check.describe()


def test_whole_range_period_is_whole_minutes():
    assert metric_references.whole_range_period(START, START + timedelta(hours=3)) == 10_800
    assert metric_references.whole_range_period(START, START + timedelta(hours=3, seconds=1)) == 10_860
    assert metric_references.whole_range_period(START, START + timedelta(seconds=5)) == 60


def test_the_command_line_lists_every_reference_and_fails_while_any_is_missing(cloudwatch, local_body, alarms, monkeypatch, capsys):
    cloudwatch.put_dashboard(DashboardName="PatternDetectionDashboard-local", DashboardBody=json.dumps(local_body))
    monkeypatch.setattr(metric_references, "emulator_cloudwatch", lambda: cloudwatch)
    monkeypatch.setattr(metric_references, "deployed_names", lambda name: (name or "PatternDetectionDashboard-local", OPS_TOPIC))
    # This moto server has no platform clock (that is the emulator's); its "now" is the real one.
    monkeypatch.setattr(metric_references, "platform_now", lambda: datetime.now(timezone.utc))
    assert metric_references.main(["--hours", "1"]) == 1
    lines = capsys.readouterr().out.splitlines()
    total = len(referenced_metrics(local_body, alarms))
    assert len(lines) == total + 1
    assert lines[-1] == f"{total} referenced metrics: 0 with data, {total - 2} missing, 2 need real AWS"
