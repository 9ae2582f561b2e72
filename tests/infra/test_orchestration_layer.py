"""The orchestration layer, asserted by property value on the synthesized stacks (and the tuner's workflow,
which lives in its own stack, where the checks are the same).

The state machine definitions are checked three ways: structurally here (states exist and are reachable,
every transition names a state, every Resource is an alias), by the `asl-validator` npm package, and by
running the analysis definition's data flow against the real workflow actions.
"""
from __future__ import annotations

import json
import re
import subprocess
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
from patternwatch_shared import workflow
from patternwatch_shared.detection import COLUMNS, detect_in
from patternwatch_shared.names.functions import ENV_ALERT_CONFIDENCE_THRESHOLD, PLATFORM_FUNCTIONS
from patternwatch_shared.pattern_events import pattern_detected_detail
from patternwatch_shared.names.messages import (
    EVENT_DETAIL_TYPE_PATTERN_DETECTED, EVENT_FIELD_CONFIDENCE, EVENT_SOURCE_PATTERNS, PATTERN_FAMILIES,
    SEVERITY_CRITICAL, WORKFLOW_ACTION_DECIDE, WORKFLOW_ACTION_DETECT, WORKFLOW_ACTION_SCORE,
    WORKFLOW_ACTION_VALIDATE, WORKFLOW_ERROR_INVALID_INPUT,
)
from pattern_engine.synthetic import planted_bar_records

from patternwatch_infra.config import ENVIRONMENT_NAMES, load_environment
from patternwatch_infra.testing import (
    alias_arn_of, find_resource, logical_id, policy_statements, reference_to, resolve, resolve_name, resources, role_statements,
)
from patternwatch_infra.workflows import analysis, reachable_states, state_machines, task_states, transitions

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ASL_VALIDATOR = PROJECT_ROOT / "node_modules" / ".bin" / "asl-validator"
# Each workflow and the fixture of the stack it lives in.
WORKFLOWS = [("PatternAnalysisWorkflow", "dev"), ("PowerTuningWorkflow", "dev_tuner")]


def machine(doc: dict, name: str) -> dict:
    return find_resource(doc, "aws_sfn_state_machine", name=name)


def definition(doc: dict, name: str) -> dict:
    return json.loads(machine(doc, name)["definition"])


def key_arn(doc: dict) -> str:
    (key_id,) = resources(doc, "aws_kms_key")
    return reference_to("aws_kms_key", key_id, "arn")


alias_of = alias_arn_of


# --- State machines --------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
@pytest.mark.parametrize("name, kind", [("PatternAnalysisWorkflow", "EXPRESS")])
def test_state_machines_log_everything_to_an_encrypted_group_with_tracing(stacks, env, name, kind):
    doc = stacks[env]
    sm = machine(doc, f"{name}-{env}")
    assert sm["type"] == kind
    group_id = logical_id(doc, "aws_cloudwatch_log_group", name=f"/aws/vendedlogs/states/{name}-{env}")
    group = resources(doc, "aws_cloudwatch_log_group")[group_id]
    assert group["kms_key_id"] == key_arn(doc)
    assert group["retention_in_days"] == {"local": 7, "dev": 14}.get(env, group["retention_in_days"])
    assert sm["logging_configuration"] == {
        "level": "ALL",
        "include_execution_data": True,
        "log_destination": reference_to("aws_cloudwatch_log_group", group_id, "arn") + ":*",
    }
    assert sm["tracing_configuration"] == {"enabled": True}
    assert sm["encryption_configuration"] == {
        "type": "CUSTOMER_MANAGED_KMS_KEY", "kms_key_id": key_arn(doc), "kms_data_key_reuse_period_seconds": 300,
    }


def test_analysis_workflow_runs_validation_three_families_in_parallel_scoring_and_decision(dev):
    asl = definition(dev, "PatternAnalysisWorkflow-dev")
    states = asl["States"]
    assert asl["StartAt"] == "DataValidation"
    assert states["DataValidation"]["Next"] == "PatternDetection"
    assert states["PatternDetection"]["Type"] == "Parallel"
    assert states["PatternDetection"]["Next"] == "ConfidenceScoring"
    assert states["ConfidenceScoring"]["Next"] == "AlertDecision"
    assert states["AlertDecision"]["End"] is True
    branches = states["PatternDetection"]["Branches"]
    assert [b["States"][b["StartAt"]]["Parameters"]["family"] for b in branches] == list(PATTERN_FAMILIES)
    assert [b["StartAt"] for b in branches] == ["DetectHeadAndShoulders", "DetectDoubleTop", "DetectAscendingTriangle"]
    actions = [states[s]["Parameters"]["action"] for s in ("DataValidation", "ConfidenceScoring", "AlertDecision")]
    assert actions == [WORKFLOW_ACTION_VALIDATE, WORKFLOW_ACTION_SCORE, WORKFLOW_ACTION_DECIDE]
    # Validation gets the whole input (the event's detail), so the model, not a JSONPath, judges it.
    assert states["DataValidation"]["Parameters"]["detail.$"] == "$"
    # The family results join the state, next to the candidate that scoring looks for.
    assert states["PatternDetection"]["ResultPath"] == "$.results" and "ResultSelector" not in states["PatternDetection"]
    assert states["ConfidenceScoring"]["Parameters"]["candidate.$"] == "$.candidate"
    assert states["AlertDecision"]["Parameters"]["confirmed.$"] == "$.confirmed"
    assert {b["States"][b["StartAt"]]["Parameters"]["action"] for b in branches} == {WORKFLOW_ACTION_DETECT}


def test_every_analysis_task_retries_three_times_with_backoff_two(dev):
    for name, state in task_states(definition(dev, "PatternAnalysisWorkflow-dev")):
        catch_all = [r for r in state["Retry"] if r["ErrorEquals"] == ["States.ALL"]]
        assert catch_all == [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0}], name
        # Invalid input is not worth retrying; it goes straight to manual review.
        assert state["Retry"][0] == {"ErrorEquals": [WORKFLOW_ERROR_INVALID_INPUT], "MaxAttempts": 0}, name


def test_errors_go_to_manual_review_which_publishes_to_the_ops_topic_and_fails(dev):
    states = definition(dev, "PatternAnalysisWorkflow-dev")["States"]
    for name in ("DataValidation", "PatternDetection", "ConfidenceScoring", "AlertDecision"):
        assert states[name]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ManualReview"}], name
    review = states["ManualReview"]
    assert review["Resource"] == "arn:aws:states:::sns:publish"
    ops_id = logical_id(dev, "aws_sns_topic", name="PatternWatchOps-dev")
    assert review["Parameters"]["TopicArn"] == reference_to("aws_sns_topic", ops_id, "arn")
    assert "States.JsonToString($.error)" in review["Parameters"]["Message.$"]
    assert review["Next"] == "AnalysisFailed" and states["AnalysisFailed"]["Type"] == "Fail"


@pytest.mark.parametrize("name, stack", WORKFLOWS)
def test_every_state_is_reachable_and_every_transition_names_a_state(request, name, stack):
    for sub in state_machines(definition(request.getfixturevalue(stack), f"{name}-dev")):
        assert sub["StartAt"] in sub["States"]
        for state_name, state in sub["States"].items():
            for target in transitions(state):
                assert target in sub["States"], f"{state_name} -> {target}"
            assert state["Type"] in {"Task", "Parallel", "Map", "Choice", "Succeed", "Fail", "Pass"}
            assert state["Type"] in {"Choice", "Succeed", "Fail"} or "Next" in state or state.get("End") is True, state_name
        assert reachable_states(sub) == set(sub["States"])


def test_every_lambda_resource_is_an_alias_from_the_compute_layer(dev):
    detector = alias_of(dev, "PatternDetector-dev")
    analysis_tasks = dict(task_states(definition(dev, "PatternAnalysisWorkflow-dev")))
    assert {s["Resource"] for s in analysis_tasks.values()} == {detector, "arn:aws:states:::sns:publish"}
    assert resolve(dev, detector)["name"] == "live"
    for state in analysis_tasks.values():
        assert not re.search(r"arn:aws:lambda:", state["Resource"]), "no hard-coded function ARN"


def _as_concrete_arns(text: str) -> str:
    """Terraform references -> ARNs of the right shape, so the validator's ARN check runs on them."""
    text = re.sub(r"\$\{aws_lambda_alias\.[^}]+\.arn\}", "arn:aws:lambda:us-east-1:111111111111:function:Fn-dev:live", text)
    return re.sub(r"\$\{aws_sns_topic\.[^}]+\.arn\}", "arn:aws:sns:us-east-1:111111111111:PatternWatchOps-dev", text)


@pytest.mark.parametrize("name, stack", WORKFLOWS)
def test_definitions_pass_the_asl_validator(request, tmp_path, name, stack):
    path = tmp_path / f"{name}.json"
    path.write_text(_as_concrete_arns(machine(request.getfixturevalue(stack), f"{name}-dev")["definition"]))
    result = subprocess.run([str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def test_the_validator_rejects_a_broken_definition(tmp_path):
    broken = analysis.definition(detector_arn="arn:aws:lambda:us-east-1:111111111111:function:Fn-dev:live", review_topic_arn="x")
    broken["States"]["DataValidation"]["Next"] = "NoSuchState"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    result = subprocess.run([str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True)
    assert result.returncode != 0


# --- The analysis data flow against the real workflow actions ---------------------------------------

class _Subsegment:
    def put_annotation(self, *_):
        pass

    def put_metadata(self, *_, **__):
        pass


class _Provider:
    @contextmanager
    def in_subsegment(self, _name):
        yield _Subsegment()


def _path(data, path: str, context: dict):
    if path.startswith("$$."):
        node = context
        for part in path[3:].split("."):
            node = node[part]
        return node
    node = data
    for token in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", path[1:]):
        node = node[token[0]] if token[0] else node[int(token[1])]
    return node


def _parameters(template: dict, data, context: dict) -> dict:
    return {k.removesuffix(".$"): _path(data, v, context) if k.endswith(".$") else v for k, v in template.items()}


def _with_result(data: dict, result_path: str, result):
    """ResultPath `$.field`: the state's input with the result added under `field`."""
    assert re.fullmatch(r"\$\.[A-Za-z]+", result_path), result_path
    return {**data, result_path[2:]: result}


def _run_action(event: dict) -> dict:
    request = workflow.parse_request(json.loads(json.dumps(event)))
    if request.action == WORKFLOW_ACTION_VALIDATE:
        return workflow.validate(request)
    if request.action == WORKFLOW_ACTION_DETECT:
        return workflow.detect_family(request, _Provider())[0]
    if request.action == WORKFLOW_ACTION_SCORE:
        return workflow.score(request)
    return workflow.decide(request, alert_threshold=load_environment("dev").alerts.confidence_threshold)[0]


def _run(machine_definition: dict, data, context: dict):
    """Task, Parallel (with ResultPath) and End/Next: all the analysis workflow's happy path uses."""
    name = machine_definition["StartAt"]
    while True:
        state = machine_definition["States"][name]
        if state["Type"] == "Task":
            data = _run_action(_parameters(state["Parameters"], data, context))
        else:
            outputs = [_run(branch, data, context) for branch in state["Branches"]]
            data = _with_result(data, state["ResultPath"], outputs)
        if state.get("End"):
            return data
        name = state["Next"]


def test_the_analysis_data_flow_fits_the_strict_request_models_and_confirms_a_planted_pattern():
    bars = planted_bar_records("AAPL", seed=0, noise=0.0005)
    columns = {field: [bar[field] for bar in bars] for field in COLUMNS}
    detection = next(d for d in detect_in(columns) if d.pattern == "head-and-shoulders" and d.confidence > 0.95)
    detail = pattern_detected_detail("AAPL", detection, datetime(2026, 11, 28, tzinfo=timezone.utc), columns)
    asl = analysis.definition(detector_arn="detector", review_topic_arn="topic")
    # The execution input is the EventBridge PatternDetected detail, exactly as the consumer emits it.
    result = _run(asl, json.loads(detail.model_dump_json()), {"Execution": {"Name": "exec-1"}})
    assert result["decision"] == "ALERT" and result["alertId"] == detail.alertId
    assert result["symbol"] == "AAPL" and result["severity"] == SEVERITY_CRITICAL
    assert result["confidence"] == detection.confidence


def test_workflow_roles_invoke_only_their_aliases_and_publish_only_to_the_ops_topic(dev):
    analysis_role = role_statements(dev, "PatternAnalysisWorkflowRole-dev")
    assert analysis_role["InvokePatternDetector"]["resources"] == [alias_of(dev, "PatternDetector-dev")]
    assert analysis_role["InvokePatternDetector"]["actions"] == ["lambda:InvokeFunction"]
    ops_id = logical_id(dev, "aws_sns_topic", name="PatternWatchOps-dev")
    assert analysis_role["PublishManualReviews"] == {**analysis_role["PublishManualReviews"], "actions": ["sns:Publish"],
                                                     "resources": [reference_to("aws_sns_topic", ops_id, "arn")]}
    for statements in (analysis_role,):
        assert statements["DeliverWorkflowLogs"]["resources"] == ["*"]
        assert all(a.startswith("logs:") and "*" not in a for a in statements["DeliverWorkflowLogs"]["actions"])
        assert statements["SendWorkflowTraces"]["actions"] == [
            "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]


# --- EventBridge ----------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_threshold_check_runs_every_five_minutes_on_the_live_alias(stacks, env):
    doc = stacks[env]
    rule_id = logical_id(doc, "aws_cloudwatch_event_rule", name=f"threshold-check-{env}")
    assert resources(doc, "aws_cloudwatch_event_rule")[rule_id]["schedule_expression"] == "rate(5 minutes)"
    target = find_resource(doc, "aws_cloudwatch_event_target", rule=reference_to("aws_cloudwatch_event_rule", rule_id, "name"))
    assert target["arn"] == alias_of(doc, f"ThresholdChecker-{env}")
    permission = find_resource(doc, "aws_lambda_permission", source_arn=reference_to("aws_cloudwatch_event_rule", rule_id, "arn"))
    checker_id = logical_id(doc, "aws_lambda_function", function_name=f"ThresholdChecker-{env}")
    assert permission == {**permission, "action": "lambda:InvokeFunction", "principal": "events.amazonaws.com", "qualifier": "live",
                          "function_name": reference_to("aws_lambda_function", checker_id, "function_name")}
    # The function accepts only this rule's events, by the name it is given.
    checker = resources(doc, "aws_lambda_function")[checker_id]
    assert resolve_name(doc, checker["environment"]["variables"]["THRESHOLD_CHECK_RULE_NAME"]) == f"threshold-check-{env}"


def test_pattern_detected_events_at_or_above_the_threshold_start_the_analysis_workflow(dev):
    rule_id = logical_id(dev, "aws_cloudwatch_event_rule", name="pattern-detected-dev")
    pattern = json.loads(resources(dev, "aws_cloudwatch_event_rule")[rule_id]["event_pattern"])
    assert pattern == {
        "source": [EVENT_SOURCE_PATTERNS],
        "detail-type": [EVENT_DETAIL_TYPE_PATTERN_DETECTED],
        "detail": {EVENT_FIELD_CONFIDENCE: [{"numeric": [">=", 0.9]}]},
    }
    target = find_resource(dev, "aws_cloudwatch_event_target", rule=reference_to("aws_cloudwatch_event_rule", rule_id, "name"))
    machine_id = logical_id(dev, "aws_sfn_state_machine", name="PatternAnalysisWorkflow-dev")
    machine_arn = reference_to("aws_sfn_state_machine", machine_id, "arn")
    assert target["arn"] == machine_arn and target["input_path"] == "$.detail"
    events_role_id = logical_id(dev, "aws_iam_role", name="PatternEventsRole-dev")
    assert target["role_arn"] == reference_to("aws_iam_role", events_role_id, "arn")
    assert json.loads(resources(dev, "aws_iam_role")[events_role_id]["assume_role_policy"])["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    statements = role_statements(dev, "PatternEventsRole-dev")
    assert statements["StartAnalysisWorkflow"]["actions"] == ["states:StartExecution"]
    assert statements["StartAnalysisWorkflow"]["resources"] == [machine_arn]
    encrypt = statements["EncryptWorkflowInput"]
    assert encrypt["actions"] == ["kms:GenerateDataKey"] and encrypt["resources"] == [key_arn(dev)]
    assert encrypt["condition"] == [{"test": "StringEquals", "variable": "kms:EncryptionContext:aws:states:stateMachineArn", "values": [machine_arn]}]
    assert set(statements) == {"StartAnalysisWorkflow", "EncryptWorkflowInput"}


@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
@pytest.mark.parametrize("rule, queue", [("threshold-check", "ThresholdCheckRule-DLQ"), ("pattern-detected", "PatternDetectedRule-DLQ")])
def test_every_rule_target_retries_then_dead_letters_to_a_queue_only_that_rule_may_send_to(stacks, env, rule, queue):
    doc = stacks[env]
    rule_id = logical_id(doc, "aws_cloudwatch_event_rule", name=f"{rule}-{env}")
    target = find_resource(doc, "aws_cloudwatch_event_target", rule=reference_to("aws_cloudwatch_event_rule", rule_id, "name"))
    assert target["retry_policy"] == {"maximum_retry_attempts": 8, "maximum_event_age_in_seconds": 3600}
    queue_id = logical_id(doc, "aws_sqs_queue", name=f"{queue}-{env}")
    assert target["dead_letter_config"] == {"arn": reference_to("aws_sqs_queue", queue_id, "arn")}
    block = resources(doc, "aws_sqs_queue")[queue_id]
    assert block["kms_master_key_id"] == key_arn(doc) and block["message_retention_seconds"] == 14 * 24 * 3600
    policy = find_resource(doc, "aws_sqs_queue_policy", queue_url=reference_to("aws_sqs_queue", queue_id, "url"))
    statements = {s["sid"]: s for s in policy_statements(doc, policy["policy"])}
    assert set(statements) == {"DenyInsecureTransport", "AllowThisRuleToDeadLetter"}
    assert statements["AllowThisRuleToDeadLetter"] == {
        **statements["AllowThisRuleToDeadLetter"],
        "effect": "Allow",
        "actions": ["sqs:SendMessage"],
        "resources": [reference_to("aws_sqs_queue", queue_id, "arn")],
        "principals": [{"type": "Service", "identifiers": ["events.amazonaws.com"]}],
        "condition": [{"test": "ArnEquals", "variable": "aws:SourceArn", "values": [reference_to("aws_cloudwatch_event_rule", rule_id, "arn")]}],
    }


@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_the_rule_and_the_functions_cut_at_the_one_configured_threshold(stacks, env):
    doc = stacks[env]
    threshold = load_environment(env).alerts.confidence_threshold
    rule_id = logical_id(doc, "aws_cloudwatch_event_rule", name=f"pattern-detected-{env}")
    pattern = json.loads(resources(doc, "aws_cloudwatch_event_rule")[rule_id]["event_pattern"])
    assert pattern["detail"][EVENT_FIELD_CONFIDENCE] == [{"numeric": [">=", threshold]}]
    for function in ("KinesisConsumer", "PatternDetector", "ThresholdChecker"):
        variables = find_resource(doc, "aws_lambda_function", function_name=f"{function}-{env}")["environment"]["variables"]
        assert float(variables[ENV_ALERT_CONFIDENCE_THRESHOLD]) == threshold, function


def test_outputs_name_the_workflows_and_rules(dev):
    assert dev["output"]["analysis_state_machine_arn"]["value"].startswith("${aws_sfn_state_machine.")
    assert dev["output"]["threshold_check_rule_name"]["value"].startswith("${aws_cloudwatch_event_rule.")
    assert dev["output"]["pattern_detected_rule_name"]["value"].startswith("${aws_cloudwatch_event_rule.")
    for output in ("threshold_check_rule_dlq_url", "pattern_detected_rule_dlq_url"):
        assert dev["output"][output]["value"].startswith("${aws_sqs_queue."), output


def test_a_service_role_takes_its_one_policy_once():
    """The CodeDeploy role is granted after its functions exist; a second grant is a mistake."""
    from patternwatch_infra.blocks import ServiceRole
    from patternwatch_infra.policies import statement
    from patternwatch_infra.testing import synth_scope

    def build(scope):
        role = ServiceRole(scope, "role", role_name="R-dev", policy_name="P-dev", service="codedeploy.amazonaws.com")
        role.grant([statement(sid="One", actions=["lambda:GetAlias"], resources=["arn:aws:lambda:us-east-1:111111111111:function:F-dev"])])
        with pytest.raises(ValueError, match="already attached"):
            role.grant([])

    doc = synth_scope(build)
    assert len(resources(doc, "aws_iam_role_policy")) == 1
