"""The workflows really run on the emulator (moto's ASL interpreter, tasks through the local Lambda service)."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from patternwatch_shared.names import messages

from integration_helpers import (
    drain,
    drain_raw,
    entered_states,
    executions_with_symbol,
    execution_history,
    pattern_event,
    planted_bars,
    subscribe_inbox,
    wait_for_execution,
)
from patternwatch_infra.config import load_environment
from tooling import local_platform

pytestmark = pytest.mark.integration

PARALLEL_STATES = {"DetectHeadAndShoulders", "DetectDoubleTop", "DetectAscendingTriangle"}


def alerts_for(clients, deployed, symbol: str) -> list[dict]:
    """Alerts on AlertQueue for one symbol (read and removed; every test uses its own symbol)."""
    return [a for a in drain(clients, deployed["alert_queue_url"]) if a.get("symbol") == symbol]


def start(clients, deployed, detail: dict) -> dict:
    """Start the workflow by hand (not through the rule) with a PatternDetected detail as input, and wait for it."""
    arn = clients.stepfunctions.start_execution(
        stateMachineArn=deployed["analysis_state_machine_arn"], name=f"it-{detail['symbol']}-{uuid.uuid4().hex[:8]}",
        input=json.dumps(detail),
    )["executionArn"]
    return wait_for_execution(clients, arn)


def flattened(detail: dict) -> dict:
    """The same event with its bars replaced by a gently rising line: a candidate the bars do not show."""
    bars = []
    for i, bar in enumerate(detail["bars"]):
        close = 100.0 + 0.05 * i
        bars.append({**bar, "open": close - 0.02, "high": close + 0.05, "low": close - 0.05, "close": close})
    return {**detail, "bars": bars}


def test_a_planted_pattern_runs_every_step_to_succeeded_and_queues_exactly_one_alert(deployed, clients):
    detail = pattern_event("WFPLANT", planted_bars("WFPLANT"))
    execution = start(clients, deployed, detail)
    assert execution["status"] == "SUCCEEDED", execution
    assert ":express:PatternAnalysisWorkflow-local:" in execution["executionArn"]
    output = json.loads(execution["output"])
    assert output["decision"] == "ALERT" and output["symbol"] == "WFPLANT" and output["alertId"] == detail["alertId"]

    history = execution_history(clients, execution["executionArn"])
    states = entered_states(history)
    assert states[0] == "DataValidation" and states[1] == "PatternDetection"
    assert set(states[2:5]) == PARALLEL_STATES
    assert states[5:] == ["ConfidenceScoring", "AlertDecision"]
    assert [e["type"] for e in history].count("LambdaFunctionSucceeded") == 6
    assert history[-1]["type"] == "ExecutionSucceeded"
    assert "ManualReview" not in states

    (alert,) = alerts_for(clients, deployed, "WFPLANT")
    assert alert["source"] == messages.ALERT_SOURCE_WORKFLOW and alert["alertId"] == output["alertId"]
    assert alert["pattern"] == "head-and-shoulders" and alert["confidence"] == detail["confidence"]


def test_a_low_scoring_candidate_ends_without_an_alert(deployed, clients):
    """A real match under the alert threshold (the rule would not start it; started by hand here)."""
    detail = pattern_event("WFLOW", planted_bars("WFLOW", "double-top", seed=8, noise=0.003), pattern="double-top")
    assert 0.5 < detail["confidence"] < 0.9
    execution = start(clients, deployed, detail)
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["decision"] == "NO_ALERT" and "below the alert threshold 0.9" in output["reason"]
    assert output["confidence"] == detail["confidence"]  # re-detected, and still too low
    states = entered_states(execution_history(clients, execution["executionArn"]))
    assert states[-2:] == ["ConfidenceScoring", "AlertDecision"] and "ManualReview" not in states
    assert alerts_for(clients, deployed, "WFLOW") == []


def test_a_candidate_its_bars_do_not_show_ends_without_an_alert(deployed, clients):
    execution = start(clients, deployed, flattened(pattern_event("WFFLAT", planted_bars("WFFLAT"))))
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"])["reason"] == "the candidate was not re-detected in its bars"
    assert alerts_for(clients, deployed, "WFFLAT") == []


def test_a_malformed_event_goes_to_manual_review_without_retries(deployed, clients):
    ops_inbox = subscribe_inbox(clients, deployed["ops_topic_arn"], "ItOpsInbox")
    detail = {**pattern_event("WFBAD", planted_bars("WFBAD")), "alertId": "WFBAD#000000000001#head-and-shoulders"}
    execution = start(clients, deployed, detail)
    assert execution["status"] == "FAILED" and execution["error"] == "PatternAnalysisFailed", execution
    history = execution_history(clients, execution["executionArn"])
    failures = [e["lambdaFunctionFailedEventDetails"] for e in history if e["type"] == "LambdaFunctionFailed"]
    assert [f["error"] for f in failures] == [messages.WORKFLOW_ERROR_INVALID_INPUT]  # MaxAttempts 0 for bad input
    assert entered_states(history) == ["DataValidation", "ManualReview", "AnalysisFailed"]
    assert [m for m in drain_raw(clients, ops_inbox) if execution["executionArn"] in m and "alertId must be" in m]


def test_a_failing_task_is_retried_as_configured_then_goes_to_manual_review_on_the_ops_topic(deployed, runner, clients):
    """PatternDetector throttled (reserved concurrency 0): every Invoke fails with Lambda.TooManyRequestsException."""
    ops_inbox = subscribe_inbox(clients, deployed["ops_topic_arn"], "ItOpsInbox")
    function = deployed["pattern_detector_alias_arn"].split(":")[6]
    runner.drain()  # no execution started by an earlier test may run into the throttle
    reserved = load_environment("local").lambda_.reserved_concurrency["pattern_detector"]
    clients.lambda_.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)
    try:
        started = time.monotonic()
        execution = start(clients, deployed, pattern_event("WFFAIL", planted_bars("WFFAIL")))
        elapsed = time.monotonic() - started
    finally:
        # Back to what Terraform set (envs/local.json), so the platform's plan stays clean.
        clients.lambda_.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=reserved)
    assert execution["status"] == "FAILED" and execution["error"] == "PatternAnalysisFailed", execution

    history = execution_history(clients, execution["executionArn"])
    failures = [e["lambdaFunctionFailedEventDetails"] for e in history if e["type"] == "LambdaFunctionFailed"]
    assert len(failures) == 4  # the first attempt and MaxAttempts = 3 retries
    assert {f["error"] for f in failures} == {"Lambda.TooManyRequestsException"}
    assert elapsed >= 1 + 2 + 4  # IntervalSeconds 1, BackoffRate 2
    assert entered_states(history) == ["DataValidation", "ManualReview", "AnalysisFailed"]
    assert any(e["type"] == "TaskSucceeded" and e["taskSucceededEventDetails"]["resourceType"] == "sns" for e in history)

    reviews = [m for m in drain_raw(clients, ops_inbox) if execution["executionArn"] in m]
    assert len(reviews) == 1, reviews
    assert "PatternAnalysisWorkflow-local failed after retries" in reviews[0]
    assert '"Error":"Lambda.TooManyRequestsException"' in reviews[0]
    assert alerts_for(clients, deployed, "WFFAIL") == []


def test_the_rule_starts_the_workflow_from_a_pattern_detected_event(deployed, clients):
    machine = deployed["analysis_state_machine_arn"]
    detail = pattern_event("WFRULE", planted_bars("WFRULE"))
    weak = {**pattern_event("WFWEAK", planted_bars("WFWEAK")), "confidence": 0.5}
    for event_detail in (detail, weak):
        response = clients.events.put_events(Entries=[{
            "Source": messages.EVENT_SOURCE_PATTERNS, "DetailType": messages.EVENT_DETAIL_TYPE_PATTERN_DETECTED,
            "Detail": json.dumps(event_detail),
        }])
        assert response["FailedEntryCount"] == 0
    (started,) = executions_with_symbol(clients, machine, "WFRULE")
    execution = wait_for_execution(clients, started["executionArn"])
    assert execution["status"] == "SUCCEEDED", execution
    # The target's InputPath ($.detail): the workflow's input is the event's detail.
    assert json.loads(execution["input"]) == detail
    assert entered_states(execution_history(clients, execution["executionArn"]))[-1] == "AlertDecision"
    assert len(alerts_for(clients, deployed, "WFRULE")) == 1
    # Below the rule's numeric matcher (confidence >= alerts.confidence_threshold, 0.9): no execution.
    assert executions_with_symbol(clients, machine, "WFWEAK") == []


def test_execution_history_and_metrics_reach_cloudwatch(deployed, clients):
    execution = start(clients, deployed, flattened(pattern_event("WFLOGS", planted_bars("WFLOGS"))))
    group = f"/aws/vendedlogs/states/PatternAnalysisWorkflow-local"
    logged = [json.loads(e["message"]) for e in clients.logs.filter_log_events(logGroupName=group)["events"]]
    mine = [e for e in logged if e["execution_arn"] == execution["executionArn"]]
    assert mine[0]["type"] == "ExecutionStarted" and mine[-1]["type"] == "ExecutionSucceeded"
    metrics = {m["MetricName"] for m in clients.cloudwatch.list_metrics(
        Namespace="AWS/States", Dimensions=[{"Name": "StateMachineArn", "Value": deployed["analysis_state_machine_arn"]}])["Metrics"]}
    assert {"ExecutionsStarted", "ExecutionsSucceeded", "ExecutionTime"} <= metrics


@pytest.fixture()
def power_tuner(deployed):
    """The power tuner's own stack, applied beside the platform for this test and destroyed after it: the
    platform's deploy never includes it, and the platform's plan stays clean either way."""
    outputs = local_platform.deploy_tuner()
    try:
        yield outputs
    finally:
        local_platform.destroy_tuner()


def test_the_power_tuning_workflow_runs_to_the_end_on_the_emulator(deployed, power_tuner, clients):
    """Initializer publishes RAM<value> versions, the Map runs one Executor per value (INLINE), then Cleaner and
    Analyzer; every step is one of the tuner's functions running in its worker process, found by the tuner's
    stack through data sources, and `live` is where it was."""
    target = deployed["approval_processor_function_name"]
    memory_before = clients.lambda_.get_function_configuration(FunctionName=target)["MemorySize"]
    live_before = clients.lambda_.get_alias(FunctionName=target, Name="live")["FunctionVersion"]
    arn = clients.lambda_.get_function_configuration(FunctionName=target)["FunctionArn"]
    tuning_input = {"lambdaARN": arn, "powerValues": [128, 256], "num": 2, "payload": {"httpMethod": "GET", "path": "/nowhere"}}
    started = clients.stepfunctions.start_execution(stateMachineArn=power_tuner["power_tuning_state_machine_arn"], input=json.dumps(tuning_input))
    assert ":execution:PowerTuningWorkflow-local:" in started["executionArn"]  # STANDARD
    execution = wait_for_execution(clients, started["executionArn"], timeout=300)
    assert execution["status"] == "SUCCEEDED", execution
    result = json.loads(execution["output"])  # the Succeed state's OutputPath: $.analysis
    assert {r["value"] for r in result["results"]} == {128, 256} and result["power"] in (128, 256)
    history = execution_history(clients, execution["executionArn"])
    states = entered_states(history)
    assert states[:2] == ["Initializer", "ExecuteEachMemoryValue"] and states.count("Executor") == 2
    assert states[-3:] == ["Cleaner", "Analyzer", "TuningComplete"]
    assert [e["type"] for e in history].count("MapIterationSucceeded") == 2
    aliases = {a["Name"]: a["FunctionVersion"] for a in clients.lambda_.list_aliases(FunctionName=target)["Aliases"]}
    assert not any(name.startswith("RAM") for name in aliases)  # the cleaner removed them
    assert aliases["live"] == live_before
    assert clients.lambda_.get_function_configuration(FunctionName=target)["MemorySize"] == memory_before
    clean, output = local_platform.plan_is_clean()
    assert clean, f"tuning changed the platform:\n{output[-3000:]}"
