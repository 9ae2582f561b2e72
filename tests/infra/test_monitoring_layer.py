"""The monitoring layer, asserted by property value on the synthesized stacks."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from patternwatch_shared.names import metrics as metric_names
from patternwatch_shared.names.functions import KINESIS_CONSUMER, PLATFORM_FUNCTIONS
from patternwatch_shared.names.metrics import (
    DIMENSION_ACTION, DIMENSION_PATTERN_TYPE, DIMENSION_SERVICE, DIMENSION_SEVERITY, METRICS_NAMESPACE,
    METRIC_ALERT_PRIORITY, METRIC_APPROVALS_PROCESSED, METRIC_CONFIDENCE_SCORE, METRIC_EVENTS_REJECTED,
    METRIC_PATTERN_DETECTION_DURATION, METRIC_PATTERN_ITEMS_SKIPPED, METRIC_PATTERNS_EVALUATED,
    METRIC_THRESHOLD_CHECKS, PATTERN_TYPE_ALL,
)

from patternwatch_infra.config import ENVIRONMENT_NAMES, load_environment
from patternwatch_infra.monitoring import billing_alarm_region_check
from patternwatch_infra.testing import find_resource, logical_id, policy_statements, reference_to, resolve, resolve_name, resources

LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"
FUNCTIONS = tuple(spec.base_name for spec in PLATFORM_FUNCTIONS)
# The metric names the handlers emit with: every METRIC_* constant of the shared names module.
EMITTED_METRICS = {value for key, value in vars(metric_names).items() if key.startswith("METRIC_")}
ISSUE_METRICS = {
    METRIC_PATTERN_DETECTION_DURATION, METRIC_CONFIDENCE_SCORE, METRIC_ALERT_PRIORITY,
    METRIC_APPROVALS_PROCESSED, METRIC_THRESHOLD_CHECKS, METRIC_PATTERNS_EVALUATED,
}


def ops_topic(doc: dict, env: str = "dev") -> str:
    return reference_to("aws_sns_topic", logical_id(doc, "aws_sns_topic", name=f"PatternWatchOps-{env}"), "arn")


def dashboard(doc: dict, env: str = "dev") -> dict:
    board = find_resource(doc, "aws_cloudwatch_dashboard", dashboard_name=f"PatternDetectionDashboard-{env}")
    return json.loads(board["dashboard_body"])


def metric_widgets(body: dict) -> list[dict]:
    return [w for w in body["widgets"] if w["type"] == "metric"]


def metric_lines(body: dict) -> list[list]:
    """Every metric array of every widget (expressions left out)."""
    return [m for w in metric_widgets(body) for m in w["properties"]["metrics"] if isinstance(m[0], str)]


def search_expressions(body: dict) -> list[str]:
    return [m[0]["expression"] for w in metric_widgets(body) for m in w["properties"]["metrics"] if isinstance(m[0], dict)]


def alarm(doc: dict, name: str) -> dict:
    return find_resource(doc, "aws_cloudwatch_metric_alarm", alarm_name=name)


# --- Dashboard ------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_dashboard_has_at_least_fourteen_widgets_of_every_kind(stacks, env):
    body = dashboard(stacks[env], env)
    graphs = metric_widgets(body)
    assert len(graphs) >= 14
    views = {(w["properties"]["view"], w["properties"]["stacked"]) for w in graphs}
    assert {("timeSeries", False), ("timeSeries", True), ("bar", False), ("pie", False), ("singleValue", False)} <= views
    cells = set()
    for widget in body["widgets"]:
        assert 0 <= widget["x"] and widget["x"] + widget["width"] <= 24
        area = {(x, y) for x in range(widget["x"], widget["x"] + widget["width"]) for y in range(widget["y"], widget["y"] + widget["height"])}
        assert not cells & area, f"{widget['properties'].get('title')} overlaps another widget"
        cells |= area


def test_every_custom_metric_on_the_dashboard_is_a_name_the_handlers_emit(dev):
    body = dashboard(dev)
    custom = {line[1] for line in metric_lines(body) if line[0] == METRICS_NAMESPACE}
    for expression in search_expressions(body):
        assert expression.startswith(f"SEARCH('{{{METRICS_NAMESPACE},")
        custom |= set(re.findall(r'MetricName="([^"]+)"', expression))
    assert custom <= EMITTED_METRICS
    assert ISSUE_METRICS <= custom
    # ...and each is one the function code actually emits, through the same constant.
    used = {node.id for path in LAMBDA_SRC.glob("*/*.py") for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Name)}
    for metric in custom:
        constants = [key for key, value in vars(metric_names).items() if key.startswith("METRIC_") and value == metric]
        assert any(key in used for key in constants), f"no handler emits {metric}"


def test_custom_metrics_use_the_dimension_sets_the_handlers_emit(dev):
    """Powertools adds `service`; per-value metrics add one dimension; CloudWatch matches the whole set."""
    expected = {
        METRIC_PATTERN_DETECTION_DURATION: {DIMENSION_SERVICE, DIMENSION_PATTERN_TYPE},
        METRIC_ALERT_PRIORITY: {DIMENSION_SERVICE, DIMENSION_SEVERITY},
        METRIC_APPROVALS_PROCESSED: {DIMENSION_SERVICE, DIMENSION_ACTION},
        METRIC_THRESHOLD_CHECKS: {DIMENSION_SERVICE},
        METRIC_PATTERNS_EVALUATED: {DIMENSION_SERVICE},
        METRIC_PATTERN_ITEMS_SKIPPED: {DIMENSION_SERVICE},
        METRIC_EVENTS_REJECTED: {DIMENSION_SERVICE},
    }
    for line in metric_lines(dashboard(dev)):
        if line[0] == METRICS_NAMESPACE:
            pairs = [p for p in line[2:] if not isinstance(p, dict)]
            assert set(pairs[0::2]) == expected[line[1]], line
    (confidence,) = search_expressions(dashboard(dev))
    assert f"{{{METRICS_NAMESPACE},{DIMENSION_PATTERN_TYPE},{DIMENSION_SERVICE}}}" in confidence
    assert f'MetricName="{METRIC_CONFIDENCE_SCORE}"' in confidence


def test_dashboard_graphs_the_aws_metrics_of_every_part_of_the_platform(dev):
    lines = metric_lines(dashboard(dev))
    by_metric = {(line[0], line[1]) for line in lines}
    for metric in ("Errors", "Throttles", "Duration"):
        graphed = {resolve_name(dev, line[3]) for line in lines if line[:2] == ["AWS/Lambda", metric]}
        assert graphed == {f"{f}-dev" for f in FUNCTIONS}, metric
    assert {("AWS/Lambda", "IteratorAge"), ("AWS/Kinesis", "IncomingRecords"), ("AWS/Kinesis", "SubscribeToShardEvent.MillisBehindLatest"),
            ("AWS/SQS", "ApproximateAgeOfOldestMessage"), ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            ("AWS/ApiGateway", "4XXError"), ("AWS/ApiGateway", "5XXError"), ("AWS/ApiGateway", "Latency"),
            ("AWS/WAFV2", "BlockedRequests"), ("AWS/States", "ExecutionsFailed")} <= by_metric
    depth_queues = {line[3] for line in lines if line[:2] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible"]}
    for queue in ("AlertQueue-dev", "PendingApprovals-dev", "AlertQueue-DLQ-dev", "PendingApprovals-DLQ-dev", "StreamConsumerFailures-dev",
                  *DEAD_LETTER_QUEUES_OF_ASYNC_DELIVERIES):
        queue_id = logical_id(dev, "aws_sqs_queue", name=queue)
        assert reference_to("aws_sqs_queue", queue_id, "name") in depth_queues, queue
    failures = {line[3] for line in lines if line[:2] == ["AWS/States", "ExecutionsFailed"]}
    # The power tuner is tooling with a stack (and no dashboard) of its own.
    assert failures == {reference_to("aws_sfn_state_machine", logical_id(dev, "aws_sfn_state_machine", name="PatternAnalysisWorkflow-dev"), "arn")}
    (waf,) = [line for line in lines if line[:2] == ["AWS/WAFV2", "BlockedRequests"]]
    assert waf[2:8] == ["WebACL", reference_to("aws_wafv2_web_acl", logical_id(dev, "aws_wafv2_web_acl", name="PatternDetectionWAF-dev"), "name"),
                        "Region", "us-east-1", "Rule", "ALL"]


# --- Alarms ---------------------------------------------------------------------------------------

def test_detection_duration_alarms_on_its_anomaly_detection_band(dev):
    anomaly = alarm(dev, "PatternDetectionDuration-Anomaly-dev")
    assert anomaly["comparison_operator"] == "GreaterThanUpperThreshold"
    assert anomaly["threshold_metric_id"] == "band"
    queries = {q["id"]: q for q in anomaly["metric_query"]}
    assert queries["band"]["expression"] == "ANOMALY_DETECTION_BAND(duration, 2)"
    metric = queries["duration"]["metric"]
    assert (metric["namespace"], metric["metric_name"]) == (METRICS_NAMESPACE, METRIC_PATTERN_DETECTION_DURATION)
    assert metric["dimensions"] == {"service": KINESIS_CONSUMER.service_name, "PatternType": PATTERN_TYPE_ALL}


DEAD_LETTER_QUEUES_OF_ASYNC_DELIVERIES = ("ThresholdChecker-DLQ-dev", "ThresholdCheckRule-DLQ-dev", "PatternDetectedRule-DLQ-dev")


def test_dead_letter_queues_of_asynchronous_deliveries_alarm_at_the_configured_depth_and_are_on_the_dlq_widgets(dev):
    widgets = {w["properties"].get("title"): w for w in dashboard(dev)["widgets"]}
    now = {line[3] for line in widgets["Dead-letter queue depth now"]["properties"]["metrics"]}
    for queue in DEAD_LETTER_QUEUES_OF_ASYNC_DELIVERIES:
        queue_ref = reference_to("aws_sqs_queue", logical_id(dev, "aws_sqs_queue", name=queue), "name")
        depth = alarm(dev, queue.replace("-DLQ-dev", "-DLQ-Depth-dev"))
        assert (depth["metric_name"], depth["dimensions"], depth["threshold"]) == ("ApproximateNumberOfMessagesVisible", {"QueueName": queue_ref}, 1)
        assert depth["alarm_actions"] == [ops_topic(dev)]
        assert queue_ref in now


def test_queue_workflow_and_api_alarms(dev):
    for queue in ("AlertQueue-DLQ", "PendingApprovals-DLQ"):
        depth = alarm(dev, f"{queue}-Depth-dev")
        queue_ref = reference_to("aws_sqs_queue", logical_id(dev, "aws_sqs_queue", name=f"{queue}-dev"), "name")
        assert (depth["metric_name"], depth["dimensions"], depth["threshold"]) == ("ApproximateNumberOfMessagesVisible", {"QueueName": queue_ref}, 1)
    assert alarm(dev, "StreamConsumerFailures-Depth-dev")["threshold"] == 1
    failures = alarm(dev, "PatternAnalysisWorkflow-Failures-dev")
    machine = reference_to("aws_sfn_state_machine", logical_id(dev, "aws_sfn_state_machine", name="PatternAnalysisWorkflow-dev"), "arn")
    assert (failures["namespace"], failures["metric_name"], failures["dimensions"]) == ("AWS/States", "ExecutionsFailed", {"StateMachineArn": machine})
    api = alarm(dev, "PatternDetectionApi-5XXError-dev")
    assert (api["namespace"], api["metric_name"], api["threshold"]) == ("AWS/ApiGateway", "5XXError", 5)
    assert api["threshold"] == load_environment("dev").alarms.api_5xx_errors_per_minute


def test_platform_health_is_one_composite_alarm_over_every_part(dev):
    composite = find_resource(dev, "aws_cloudwatch_composite_alarm", alarm_name="PatternWatchPlatformHealth-dev")
    members = re.findall(r'ALARM\("\$\{aws_cloudwatch_metric_alarm\.([^.]+)\.alarm_name\}"\)', composite["alarm_rule"])
    assert composite["alarm_rule"] == " OR ".join(
        f'ALARM("{reference_to("aws_cloudwatch_metric_alarm", m, "alarm_name")}")' for m in members
    )
    member_names = {resolve_name(dev, resources(dev, "aws_cloudwatch_metric_alarm")[m]["alarm_name"]) for m in members}
    expected = {f"{f}-dev-{metric}" for f in FUNCTIONS for metric in ("Errors", "Throttles")} | {
        "KinesisConsumer-dev-IteratorAge", "PatternDetectionDuration-Anomaly-dev", "AlertQueue-DLQ-Depth-dev",
        "PendingApprovals-DLQ-Depth-dev", "StreamConsumerFailures-Depth-dev", "PatternAnalysisWorkflow-Failures-dev",
        "PatternDetectionApi-5XXError-dev", "ThresholdChecker-DLQ-Depth-dev", "ThresholdCheckRule-DLQ-Depth-dev",
        "PatternDetectedRule-DLQ-Depth-dev",
    }
    assert member_names == expected
    assert composite["alarm_actions"] == composite["ok_actions"] == [ops_topic(dev)]


@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_every_alarm_notifies_the_ops_topic(stacks, env):
    doc = stacks[env]
    alarms = [*resources(doc, "aws_cloudwatch_metric_alarm").values(), *resources(doc, "aws_cloudwatch_composite_alarm").values()]
    assert len(alarms) > 30
    for a in alarms:
        assert a["alarm_actions"] == [ops_topic(doc, env)], a["alarm_name"]


# --- Billing --------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_billing_alarm_watches_estimated_charges_in_us_east_1_at_the_configured_threshold(stacks, env):
    doc = stacks[env]
    billing = alarm(doc, f"PatternWatchBilling-{env}")
    assert (billing["namespace"], billing["metric_name"], billing["dimensions"]) == ("AWS/Billing", "EstimatedCharges", {"Currency": "USD"})
    assert billing["threshold"] == 100 and billing["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert billing["provider"] == "aws.billing"
    assert doc["provider"]["aws"][1]["region"] == "us-east-1" and doc["provider"]["aws"][1]["alias"] == "billing"


def test_billing_alarm_refuses_a_stack_region_without_billing_metrics():
    billing_alarm_region_check("us-east-1")
    with pytest.raises(ValueError, match="only notify a topic in the alarm's region"):
        billing_alarm_region_check("eu-west-1")


@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_monthly_budget_notifies_the_ops_topic_on_actual_and_forecast_spend(stacks, env):
    doc = stacks[env]
    budget = find_resource(doc, "aws_budgets_budget", name=f"PatternWatchMonthly-{env}")
    assert (budget["budget_type"], budget["time_unit"], budget["limit_amount"], budget["limit_unit"]) == ("COST", "MONTHLY", "100.00", "USD")
    assert budget["cost_filter"] == [{"name": "TagKeyValue", "values": [f"user:Environment${env}"]}]
    assert budget["account_id"].startswith("${data.aws_caller_identity.")
    notifications = {(n["notification_type"], n["threshold"]) for n in budget["notification"]}
    assert notifications == {("ACTUAL", 80), ("FORECASTED", 100)}
    for n in budget["notification"]:
        assert n["subscriber_sns_topic_arns"] == [ops_topic(doc, env)]
        assert (n["comparison_operator"], n["threshold_type"]) == ("GREATER_THAN", "PERCENTAGE")


def test_budgets_may_publish_to_the_encrypted_ops_topic(dev):
    topic_id = logical_id(dev, "aws_sns_topic", name="PatternWatchOps-dev")
    policy = find_resource(dev, "aws_sns_topic_policy", arn=reference_to("aws_sns_topic", topic_id, "arn"))
    publish = {s["sid"]: s for s in policy_statements(dev, policy["policy"])}["AllowServicesToPublish"]
    assert publish["principals"] == [{"type": "Service", "identifiers": ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]}]
    (key,) = resources(dev, "aws_kms_key").values()
    services = {s["sid"]: s for s in policy_statements(dev, key["policy"])}["AllowAwsServicesToUseKeyForThisAccount"]
    assert "budgets.amazonaws.com" in services["principals"][0]["identifiers"]


def test_outputs_name_the_dashboard_and_the_health_alarm(dev):
    assert dev["output"]["dashboard_name"]["value"].startswith("${aws_cloudwatch_dashboard.")
    assert resolve_name(dev, dev["output"]["platform_health_alarm_name"]["value"]) == "PatternWatchPlatformHealth-dev"
    assert dev["output"]["ops_topic_arn"]["value"] == ops_topic(dev)
