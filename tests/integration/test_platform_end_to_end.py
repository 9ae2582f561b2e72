"""The platform deployed on the emulator, driven end to end. Every name comes from flat-outputs.json."""
from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from patternwatch_shared.names.functions import ENV_TRADING_PATTERNS_TABLE
from patternwatch_shared.names.metrics import METRIC_BARS_STORED, METRIC_RECORDS_PROCESSED, METRICS_NAMESPACE
from patternwatch_shared.names.messages import (
    ALERT_SOURCE_STREAM, ALERT_SOURCE_THRESHOLD, APPROVAL_STATUS_APPROVED, APPROVAL_STATUS_PENDING,
    SEVERITY_CRITICAL, SEVERITY_HIGH,
)
from patternwatch_shared.names.table import ALERT_STATE_EVENT_EMITTED
from patternwatch_shared.storage import StoredPattern

from integration_helpers import (
    as_records, drain, planted_bars, put_records, query, queue_depth, queue_in_flight, subscribe_inbox, wait_for_executions,
)
from patternwatch_infra.config import load_environment
from tooling import local_platform

pytestmark = pytest.mark.integration


def critical_alert(symbol: str) -> dict:
    now = datetime.now(timezone.utc)
    return {
        "alertId": f"{symbol}#{int(now.timestamp())}#head-and-shoulders",
        "source": ALERT_SOURCE_STREAM,
        "severity": SEVERITY_CRITICAL,
        "detectedAt": now.isoformat(),
        "confidence": 0.97,
        "symbol": symbol,
        "pattern": "head-and-shoulders",
        "startTimestamp": 1_700_000_000,
        "endTimestamp": 1_700_864_000,
    }


def open_approval(clients, runner, deployed, symbol: str, inbox: str) -> dict[str, str]:
    """Queue a CRITICAL alert, let the alert processor open an approval; each approver's token from their link."""
    clients.sqs.send_message(QueueUrl=deployed["alert_queue_url"], MessageBody=json.dumps(critical_alert(symbol)))
    runner.drain()
    requests = [r for r in drain(clients, inbox) if r["alert"]["symbol"] == symbol]
    tokens = {r["approver"]: r["approveUrl"].rsplit("/", 1)[-1] for r in requests}
    assert len(tokens) == len(requests) == 2, requests  # local names two approvers, one link each
    return tokens


def test_outputs_file_names_every_deployed_resource_the_tests_use(deployed):
    for key in ("market_data_stream_name", "trading_patterns_table_name", "approval_tracking_table_name", "alert_queue_url",
                "pending_approvals_queue_url", "stream_failure_queue_url", "trading_alerts_topic_arn",
                "approval_requests_topic_arn", "api_key_value", "rest_api_id"):
        assert deployed[key], key
    assert deployed["market_data_stream_name"] == "MarketDataStream-local"


def test_the_runner_reads_its_wiring_back_from_the_emulator(runner):
    assert [p.function.name for p in runner.streams] == ["KinesisConsumer-local"]
    assert sorted(p.function.name for p in runner.queues) == ["AlertProcessor-local", "ApprovalExpiry-local"]
    assert [(s.rule_name, s.period_seconds) for s in runner.schedules] == [("threshold-check-local", 300)]
    assert [t.split(":")[6:] for t in runner.schedules[0].targets] == [["ThresholdChecker-local", "live"]]
    assert {(r.method, r.resource) for r in runner.routes} == {
        ("POST", "/patterns"), ("GET", "/patterns/{symbol}"), ("GET", "/approve/{token}"), ("POST", "/approve/{token}")
    }
    assert {(r.method, r.resource) for r in runner.routes if not r.api_key_required} == {("GET", "/approve/{token}"), ("POST", "/approve/{token}")}
    assert runner.streams[0].function.environment[ENV_TRADING_PATTERNS_TABLE] == "TradingPatterns-local"


@pytest.fixture(scope="module")
def streamed_series(deployed, runner, clients) -> tuple[str, list[dict]]:
    """A planted series put on the stream and delivered, once for the tests that read what it stored (in any order)."""
    bars = planted_bars("ITSTORE")
    put_records(clients, deployed["market_data_stream_name"], as_records(bars), "ITSTORE")
    runner.drain()
    return "ITSTORE", bars


def test_bars_on_the_stream_become_stored_bars_and_detected_patterns(deployed, clients, streamed_series):
    symbol, bars = streamed_series
    assert len(query(clients, deployed["trading_patterns_table_name"], f"BAR#{symbol}")) == len(bars)
    patterns = {i["pattern"]["S"] for i in query(clients, deployed["trading_patterns_table_name"], f"PATTERN#{symbol}")}
    assert "head-and-shoulders" in patterns


def test_a_planted_critical_pattern_is_queued_and_opens_an_approval(deployed, runner, clients, endpoint):
    approvals_inbox = subscribe_inbox(clients, deployed["approval_requests_topic_arn"], "ItApprovalInbox")
    pending_before = queue_in_flight(clients, deployed["pending_approvals_queue_url"])
    put_records(clients, deployed["market_data_stream_name"], as_records(planted_bars("ITALERT")), "ITALERT")
    while runner.streams[0].poll():  # the stream only, so the alert is still on AlertQueue below
        pass
    # The consumer's PatternDetected event started the analysis workflow, whose decide step queued the alert.
    (execution,) = wait_for_executions(clients, deployed["analysis_state_machine_arn"], "ITALERT", count=1)
    assert execution["status"] == "SUCCEEDED", execution
    assert queue_depth(clients, deployed["alert_queue_url"]) >= 1
    runner.drain()

    requests = [r for r in drain(clients, approvals_inbox) if r["alert"]["symbol"] == "ITALERT"]
    assert sorted(r["approver"] for r in requests) == ["ada", "grace"]  # one link per approver
    request = requests[0]
    assert request["alert"]["pattern"] == "head-and-shoulders" and request["alert"]["confidence"] > 0.9
    assert request["severity"] == SEVERITY_CRITICAL
    token = request["approveUrl"].rsplit("/", 1)[-1]
    assert request["approveUrl"].startswith(f"{endpoint}/restapis/")
    link = clients.dynamodb.get_item(
        TableName=deployed["approval_tracking_table_name"], Key={"tokenHash": {"S": hashlib.sha256(token.encode()).hexdigest()}}
    )["Item"]
    item = clients.dynamodb.get_item(
        TableName=deployed["approval_tracking_table_name"], Key={"tokenHash": {"S": f"approval#{link['alertId']['S']}"}}
    )["Item"]
    assert abs(int(item["deadline"]["N"]) - (time.time() + 3600)) < 300
    assert item["status"]["S"] == APPROVAL_STATUS_PENDING
    assert token not in json.dumps([item, link])
    # Its expiry timer is running: ApprovalExpiry received it and set it invisible until the deadline.
    assert queue_in_flight(clients, deployed["pending_approvals_queue_url"]) == pending_before + 1


def test_a_non_critical_alert_is_delivered_to_trading_alerts_subscribers(deployed, runner, clients):
    inbox = subscribe_inbox(clients, deployed["trading_alerts_topic_arn"], "ItTradingAlertsInbox")
    alert = {**critical_alert("ITHIGH"), "severity": SEVERITY_HIGH, "confidence": 0.92}
    clients.sqs.send_message(QueueUrl=deployed["alert_queue_url"], MessageBody=json.dumps(alert))
    runner.drain()
    delivered = [m for m in drain(clients, inbox) if m.get("alertId") == alert["alertId"]]
    assert len(delivered) == 1
    assert delivered[0]["severity"] == SEVERITY_HIGH


def test_approve_answers_200_then_409_and_410_once_expired(deployed, runner, clients):
    inbox = subscribe_inbox(clients, deployed["approval_requests_topic_arn"], "ItApprovalInbox")
    tokens = open_approval(clients, runner, deployed, "ITAPPROVE", inbox)
    first = runner.request("POST", f"/approve/{tokens['ada']}", body={"action": "approve"})  # the link needs no API key
    assert first["statusCode"] == 200, first
    assert json.loads(first["body"])["status"] == APPROVAL_STATUS_APPROVED
    assert runner.request("POST", f"/approve/{tokens['ada']}", body={"action": "reject"})["statusCode"] == 409
    second = runner.request("POST", f"/approve/{tokens['grace']}", body={"action": "reject"})
    assert (second["statusCode"], json.loads(second["body"])["decidedByName"]) == (409, "Ada Lovelace")

    expired = open_approval(clients, runner, deployed, "ITEXPIRE", inbox)["grace"]
    link = clients.dynamodb.get_item(TableName=deployed["approval_tracking_table_name"],
                                     Key={"tokenHash": {"S": hashlib.sha256(expired.encode()).hexdigest()}})["Item"]
    clients.dynamodb.update_item(
        TableName=deployed["approval_tracking_table_name"],
        Key={"tokenHash": {"S": f"approval#{link['alertId']['S']}"}},
        UpdateExpression="SET deadline = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 60)}},
    )
    assert runner.request("POST", f"/approve/{expired}", body={"action": "approve"})["statusCode"] == 410
    key = deployed["api_key_value"]  # the shared key changes nothing on approval routes
    assert runner.request("POST", "/approve/" + "0" * 32, body={"action": "approve"}, api_key=key)["statusCode"] == 404
    assert runner.request("POST", "/approve/not-a-token", body={"action": "approve"})["statusCode"] == 400


def test_poison_records_reach_the_failure_queue_and_no_valid_record_is_lost(deployed, runner, clients):
    drain(clients, deployed["stream_failure_queue_url"])
    bars = planted_bars("ITPOISON")[:30]
    poison = [b"not json", json.dumps({**bars[0], "open": -1.0}).encode(), json.dumps({**bars[1], "high": 1.0, "low": 2.0}).encode()]
    records = as_records(bars)
    mixed = records[:5] + [poison[0]] + records[5:15] + [poison[1]] + records[15:] + [poison[2]]
    put_records(clients, deployed["market_data_stream_name"], mixed, "ITPOISON")
    runner.drain()
    assert len(query(clients, deployed["trading_patterns_table_name"], "BAR#ITPOISON")) == len(bars)
    failures = drain(clients, deployed["stream_failure_queue_url"])
    assert len(failures) == len(poison)
    for failure in failures:
        info = failure["KinesisBatchInfo"]
        assert info["batchSize"] == 1 and info["streamArn"].endswith(":stream/MarketDataStream-local")
        assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"


def test_the_threshold_checker_queues_an_alert_when_thresholds_are_exceeded(deployed, runner, clients):
    inbox = subscribe_inbox(clients, deployed["trading_alerts_topic_arn"], "ItTradingAlertsInbox")
    # Detected a minute ago: inside the checker's 5-minute look-back that ends at the schedule's time.
    detected = datetime.now(timezone.utc) - timedelta(minutes=1)
    for i in range(6):  # alerts.threshold_check_min_breaches is 6
        pattern = StoredPattern(
            symbol=f"ITTH{i}", pattern="double-top", confidence=0.96, start_timestamp=1_700_000_000, end_timestamp=1_700_000_000 + i,
            detected_at=detected, severity=SEVERITY_CRITICAL, alert_state=ALERT_STATE_EVENT_EMITTED,
        )
        clients.dynamodb.put_item(TableName=deployed["trading_patterns_table_name"], Item=pattern.to_item())
    depth = queue_depth(clients, deployed["alert_queue_url"])
    (fired,) = runner.run_schedules(force=True)  # through the rule's target: an asynchronous invoke of ThresholdChecker:live
    assert fired["rule"] == "threshold-check-local" and fired["asyncDrained"] is True
    assert [d["target"].split(":")[6:] for d in fired["delivered"]] == [["ThresholdChecker-local", "live"]]
    assert fired["event"]["detail-type"] == "Scheduled Event" and fired["event"]["source"] == "aws.events"
    assert queue_depth(clients, deployed["alert_queue_url"]) == depth + 1
    runner.drain()
    threshold_alerts = [m for m in drain(clients, inbox) if m.get("source") == ALERT_SOURCE_THRESHOLD]
    assert len(threshold_alerts) == 1


def test_a_threshold_check_that_fails_every_retry_lands_in_the_checker_s_dead_letter_queue(deployed, runner, clients):
    """The failure path of an asynchronous invocation, end to end: the schedule's rule invokes ThresholdChecker:live
    asynchronously, every attempt fails (its reserved concurrency is taken to 0, so Lambda throttles it), the
    `live` alias's 2 retries run, and the scheduled event lands in ThresholdChecker-DLQ with why."""
    checker = deployed["threshold_checker_function_name"]
    reserved = load_environment("local").lambda_.reserved_concurrency["threshold_checker"]
    assert clients.lambda_.get_function_concurrency(FunctionName=checker)["ReservedConcurrentExecutions"] == reserved
    drain(clients, deployed["threshold_checker_dlq_url"])
    clients.lambda_.put_function_concurrency(FunctionName=checker, ReservedConcurrentExecutions=0)
    try:
        (fired,) = runner.run_schedules(force=True)
        assert fired["asyncDrained"] is True and fired["delivered"][0]["id"]  # EventBridge's delivery itself succeeded
    finally:
        # Back to what Terraform set, so the plan stays clean.
        clients.lambda_.put_function_concurrency(FunctionName=checker, ReservedConcurrentExecutions=reserved)
    messages = clients.sqs.receive_message(QueueUrl=deployed["threshold_checker_dlq_url"], MaxNumberOfMessages=10,
                                           MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    (message,) = messages
    assert json.loads(message["Body"])["id"] == fired["event"]["id"]  # the very event the schedule delivered
    assert message["MessageAttributes"]["ErrorMessage"]["StringValue"] == "Rate Exceeded."
    throttles = [m for m in clients.cloudwatch.list_metrics(Namespace="AWS/Lambda", MetricName="Throttles")["Metrics"]
                 if {"Name": "FunctionName", "Value": checker} in m["Dimensions"]]
    assert throttles


def test_the_api_serves_detection_and_stored_patterns(deployed, runner, streamed_series):
    key = deployed["api_key_value"]
    bars = [{k: v for k, v in b.items() if k != "symbol"} for b in planted_bars("ITAPI")]
    detected = runner.request("POST", "/patterns", body={"symbol": "ITAPI", "bars": bars}, api_key=key)
    assert detected["statusCode"] == 200, detected
    assert "head-and-shoulders" in {m["pattern"] for m in json.loads(detected["body"])["matches"]}
    symbol, _ = streamed_series
    stored = runner.request("GET", f"/patterns/{symbol}", api_key=key, query={"limit": "5"})
    assert stored["statusCode"] == 200
    assert {i["pattern"] for i in json.loads(stored["body"])["items"]} >= {"head-and-shoulders"}


def test_a_second_plan_after_apply_shows_no_changes(deployed):
    clean, output = local_platform.plan_is_clean()
    assert clean, output[-3000:]


def test_the_express_analysis_workflow_round_trips_from_the_emulator(deployed, clients):
    """Its definition survives intact (test_workflows.py runs it)."""
    machine = clients.stepfunctions.describe_state_machine(stateMachineArn=deployed["analysis_state_machine_arn"])
    assert machine["name"] == "PatternAnalysisWorkflow-local"
    assert machine["type"] == "EXPRESS"
    definition = json.loads(machine["definition"])
    assert definition["StartAt"] == "DataValidation"
    assert {"DataValidation", "ConfidenceScoring", "AlertDecision", "ManualReview"} <= set(definition["States"])
    branches = [b["StartAt"] for b in next(s for s in definition["States"].values() if s["Type"] == "Parallel")["Branches"]]
    assert len(branches) == 3
    resources = json.dumps(definition)
    assert deployed["pattern_detector_alias_arn"] in resources


def test_functions_run_in_workers_and_log_to_their_log_groups(deployed, runner, clients):
    put_records(clients, deployed["market_data_stream_name"], as_records(planted_bars("ITLOGS")[:5]), "ITLOGS")
    runner.drain()
    group = "/aws/lambda/KinesisConsumer-local"
    messages = [e["message"] for e in clients.logs.filter_log_events(logGroupName=group)["events"]]
    assert any(m.startswith("START RequestId:") for m in messages)
    assert any(m.startswith("REPORT RequestId:") and "Max Memory Used" in m for m in messages)
    assert any('"service":"kinesis-consumer"' in m.replace(" ", "") for m in messages)
    # The EMF lines became metrics in the handlers' namespace, and Lambda's own metrics exist.
    emitted = {m["MetricName"] for m in clients.cloudwatch.list_metrics(Namespace=METRICS_NAMESPACE)["Metrics"]}
    assert {METRIC_RECORDS_PROCESSED, METRIC_BARS_STORED} <= emitted
    lambda_metrics = clients.cloudwatch.list_metrics(Namespace="AWS/Lambda", Dimensions=[{"Name": "FunctionName", "Value": "KinesisConsumer-local"}])
    assert {"Invocations", "Duration", "IteratorAge"} <= {m["MetricName"] for m in lambda_metrics["Metrics"]}


def test_the_api_access_log_names_the_resource_path_never_the_token(deployed, runner, clients):
    token = "ab" * 16
    response = runner.request("POST", f"/approve/{token}", body={"action": "approve"}, api_key=deployed["api_key_value"])
    assert response["statusCode"] == 404
    group = next(g["logGroupName"] for g in clients.logs.describe_log_groups(logGroupNamePrefix="/aws/apigateway/")["logGroups"]
                 if "pattern-detection-api-local" in g["logGroupName"])
    lines = [json.loads(e["message"]) for e in clients.logs.filter_log_events(logGroupName=group)["events"]]
    assert any(line["resourcePath"] == "/approve/{token}" and line["status"] == "404" and line["httpMethod"] == "POST" for line in lines)
    assert not any(token in json.dumps(line) for line in lines)
    api = clients.cloudwatch.list_metrics(Namespace="AWS/ApiGateway", Dimensions=[{"Name": "ApiName", "Value": "pattern-detection-api-local"}])
    assert {"Count", "4XXError", "5XXError", "Latency", "IntegrationLatency"} <= {m["MetricName"] for m in api["Metrics"]}
