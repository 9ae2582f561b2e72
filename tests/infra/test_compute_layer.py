"""The compute layer, by property value: functions, alarms, canary deployment groups, event sources."""
from __future__ import annotations

import json

import pytest
from patternwatch_shared.approvers import parse_approvers
from patternwatch_shared.names.functions import (
    ALERT_PROCESSOR, APPROVAL_EXPIRY, APPROVAL_PROCESSOR, ENV_ALERT_CONFIDENCE_THRESHOLD, ENV_ALERT_QUEUE_URL,
    ENV_APPROVAL_API_BASE_URL, ENV_APPROVAL_EXPIRY_SECONDS, ENV_APPROVERS, ENV_DATA_BUCKET, ENV_PENDING_APPROVALS_QUEUE_URL,
    ENV_POWERTOOLS_METRICS_NAMESPACE, ENV_POWERTOOLS_SERVICE_NAME, ENV_THRESHOLD_CHECK_MIN_BREACHES,
    ENV_TRADING_PATTERNS_TABLE, KINESIS_CONSUMER, PATTERN_DETECTOR, THRESHOLD_CHECKER,
)
from patternwatch_shared.names.metrics import METRICS_NAMESPACE

from patternwatch_infra.config import ENVIRONMENT_NAMES, load_environment
from patternwatch_infra.testing import find_resource, logical_id, reference_to, resolve, resolve_name, resources

FUNCTIONS = {
    "KinesisConsumer-dev": KINESIS_CONSUMER,
    "PatternDetector-dev": PATTERN_DETECTOR,
    "AlertProcessor-dev": ALERT_PROCESSOR,
    "ThresholdChecker-dev": THRESHOLD_CHECKER,
    "ApprovalProcessor-dev": APPROVAL_PROCESSOR,
    "ApprovalExpiry-dev": APPROVAL_EXPIRY,
}
DEV = load_environment("dev")


def function_id(doc: dict, name: str) -> str:
    return logical_id(doc, "aws_lambda_function", function_name=name)


def alias_of(doc: dict, name: str) -> tuple[str, dict]:
    fn_ref = reference_to("aws_lambda_function", function_id(doc, name), "function_name")
    alias_id = logical_id(doc, "aws_lambda_alias", function_name=fn_ref)
    return alias_id, resources(doc, "aws_lambda_alias")[alias_id]


def test_the_six_functions_exist_with_their_names(dev):
    assert {resolve_name(dev, f["function_name"]) for f in resources(dev, "aws_lambda_function").values()} >= set(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_is_arm64_traced_published_and_sized_from_config(dev, name):
    fn = find_resource(dev, "aws_lambda_function", function_name=name)
    spec = FUNCTIONS[name]
    assert fn["architectures"] == ["arm64"]
    assert fn["runtime"] == "python3.12"
    assert fn["tracing_config"] == {"mode": "Active"}
    assert fn["publish"] is True
    assert fn["memory_size"] == DEV.lambda_.memory_mb
    assert fn["timeout"] == DEV.lambda_.timeout_seconds
    assert fn["handler"] == spec.handler == f"{spec.package}.handler.lambda_handler"
    (key_id,) = resources(dev, "aws_kms_key")
    assert fn["kms_key_arn"] == reference_to("aws_kms_key", key_id, "arn")
    shared = reference_to("aws_lambda_layer_version", logical_id(dev, "aws_lambda_layer_version", layer_name="shared-dependencies-dev"), "arn")
    chart = reference_to("aws_lambda_layer_version", logical_id(dev, "aws_lambda_layer_version", layer_name="chart-dependencies-dev"), "arn")
    # Only the function that draws (each alert's evidence chart) carries the chart layer, above the shared one.
    assert fn["layers"] == ([shared, chart] if name == "AlertProcessor-dev" else [shared])
    # The code comes from the artifact bucket, signed (test_code_signing.py has the rest).
    assert fn["s3_key"].startswith("${aws_signer_signing_job.") and fn["s3_key"].endswith(".signed_object[0].s3[0].key}")
    assert "filename" not in fn and "source_code_hash" not in fn


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_environment_holds_every_variable_its_handler_reads(dev, name):
    spec = FUNCTIONS[name]
    variables = find_resource(dev, "aws_lambda_function", function_name=name)["environment"]["variables"]
    assert set(spec.env_keys) <= set(variables), set(spec.env_keys) - set(variables)
    assert variables[ENV_POWERTOOLS_SERVICE_NAME] == spec.service_name
    assert variables[ENV_POWERTOOLS_METRICS_NAMESPACE] == METRICS_NAMESPACE
    assert set(variables) <= {*spec.env_keys, *spec.optional_env_keys, ENV_POWERTOOLS_SERVICE_NAME, ENV_POWERTOOLS_METRICS_NAMESPACE}


def test_environment_values_point_at_the_data_layer(dev, local):
    consumer = find_resource(dev, "aws_lambda_function", function_name="KinesisConsumer-dev")["environment"]["variables"]
    assert consumer[ENV_TRADING_PATTERNS_TABLE] == reference_to(
        "aws_dynamodb_table", logical_id(dev, "aws_dynamodb_table", name="TradingPatterns-dev"), "name"
    )
    assert ENV_ALERT_QUEUE_URL not in consumer  # the consumer emits events; the workflow queues alerts
    detector = find_resource(dev, "aws_lambda_function", function_name="PatternDetector-dev")["environment"]["variables"]
    assert detector[ENV_ALERT_QUEUE_URL] == reference_to("aws_sqs_queue", logical_id(dev, "aws_sqs_queue", name="AlertQueue-dev"), "url")
    checker = find_resource(dev, "aws_lambda_function", function_name="ThresholdChecker-dev")["environment"]["variables"]
    assert checker[ENV_THRESHOLD_CHECK_MIN_BREACHES] == str(DEV.alerts.threshold_check_min_breaches) == "6"
    # One setting, one value, in every function that decides an alert.
    for variables in (consumer, detector, checker):
        assert variables[ENV_ALERT_CONFIDENCE_THRESHOLD] == str(DEV.alerts.confidence_threshold) == "0.9"
    alerts = find_resource(dev, "aws_lambda_function", function_name="AlertProcessor-dev")["environment"]["variables"]
    assert alerts[ENV_APPROVAL_EXPIRY_SECONDS] == "3600"
    rest_api_id = reference_to("aws_api_gateway_rest_api", logical_id(dev, "aws_api_gateway_rest_api", name="pattern-detection-api-dev"), "id")
    assert alerts[ENV_APPROVAL_API_BASE_URL] == f"https://{rest_api_id}.execute-api.us-east-1.amazonaws.com/v1"
    queue = reference_to("aws_sqs_queue", logical_id(dev, "aws_sqs_queue", name="PendingApprovals-dev"), "url")
    assert alerts[ENV_PENDING_APPROVALS_QUEUE_URL] == queue
    expiry = find_resource(dev, "aws_lambda_function", function_name="ApprovalExpiry-dev")["environment"]["variables"]
    assert expiry[ENV_PENDING_APPROVALS_QUEUE_URL] == queue
    page = find_resource(dev, "aws_lambda_function", function_name="ApprovalProcessor-dev")["environment"]["variables"]
    assert page[ENV_DATA_BUCKET] == reference_to("aws_s3_bucket", logical_id(dev, "aws_s3_bucket", bucket="patternwatch-data-111111111111-dev"), "bucket")
    local_alerts = find_resource(local, "aws_lambda_function", function_name="AlertProcessor-local")["environment"]["variables"]
    local_api = reference_to("aws_api_gateway_rest_api", logical_id(local, "aws_api_gateway_rest_api", name="pattern-detection-api-local"), "id")
    emulator = load_environment("local").emulator.endpoint
    assert local_alerts[ENV_APPROVAL_API_BASE_URL] == f"{emulator}/restapis/{local_api}/v1/_user_request_"


@pytest.mark.parametrize("env", ["local", "dev", "prod"])
def test_both_approval_functions_know_the_configured_approvers_without_their_addresses(stacks, env):
    config = load_environment(env)
    for name in ("AlertProcessor", "ApprovalProcessor"):
        variables = find_resource(stacks[env], "aws_lambda_function", function_name=f"{name}-{env}")["environment"]["variables"]
        approvers = parse_approvers(variables[ENV_APPROVERS])
        assert [(a.id, a.name) for a in approvers.values()] == [(a.id, a.name) for a in config.approvers]
        assert "@" not in variables[ENV_APPROVERS]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_logs_to_its_own_encrypted_group_with_the_configured_retention(dev, name):
    group = find_resource(dev, "aws_cloudwatch_log_group", name=f"/aws/lambda/{name}")
    assert group["retention_in_days"] == DEV.lambda_.log_retention_days
    (key_id,) = resources(dev, "aws_kms_key")
    assert group["kms_key_id"] == reference_to("aws_kms_key", key_id, "arn")
    fn = find_resource(dev, "aws_lambda_function", function_name=name)
    group_id = logical_id(dev, "aws_cloudwatch_log_group", name=f"/aws/lambda/{name}")
    assert f"aws_cloudwatch_log_group.{group_id}" in fn["depends_on"]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_has_a_live_alias_that_codedeploy_owns(dev, name):
    _, alias = alias_of(dev, name)
    assert alias["name"] == "live"
    assert alias["function_version"] == reference_to("aws_lambda_function", function_id(dev, name), "version")
    assert alias["lifecycle"] == {"ignore_changes": ["function_version", "routing_config"]}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_alarms_on_errors_throttles_and_p99_duration(dev, name):
    ops_topic = reference_to("aws_sns_topic", logical_id(dev, "aws_sns_topic", name="PatternWatchOps-dev"), "arn")
    errors = find_resource(dev, "aws_cloudwatch_metric_alarm", alarm_name=f"{name}-Errors")
    assert (errors["namespace"], errors["metric_name"], errors["statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert errors["threshold"] == DEV.alarms.lambda_errors_per_minute
    assert resolve_name(dev, errors["dimensions"]) == {"FunctionName": name}
    throttles = find_resource(dev, "aws_cloudwatch_metric_alarm", alarm_name=f"{name}-Throttles")
    assert (throttles["metric_name"], throttles["threshold"]) == ("Throttles", 1)
    duration = find_resource(dev, "aws_cloudwatch_metric_alarm", alarm_name=f"{name}-Duration")
    assert duration["extended_statistic"] == "p99"
    assert "statistic" not in duration
    assert duration["threshold"] == int(0.8 * 30 * 1000)
    for alarm in (errors, throttles, duration):
        assert alarm["alarm_actions"] == [ops_topic]
        assert alarm["comparison_operator"] == "GreaterThanOrEqualToThreshold"


def test_only_the_kinesis_consumer_alarms_on_iterator_age(dev):
    ages = [a for a in resources(dev, "aws_cloudwatch_metric_alarm").values() if a.get("metric_name") == "IteratorAge"]
    assert len(ages) == 1
    (age,) = ages
    assert resolve_name(dev, age["alarm_name"]) == "KinesisConsumer-dev-IteratorAge"
    assert (age["statistic"], age["threshold"]) == ("Maximum", DEV.alarms.iterator_age_ms)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_canary_error_rate_alarm_watches_the_alias_at_two_percent(dev, name):
    alarm = find_resource(dev, "aws_cloudwatch_metric_alarm", alarm_name=f"{name}-CanaryErrorRate")
    assert alarm["threshold"] == 2
    assert alarm["comparison_operator"] == "GreaterThanThreshold"
    queries = {q["id"]: q for q in alarm["metric_query"]}
    assert queries["error_rate"]["expression"] == "100 * errors / MAX([invocations, 1])"
    assert queries["error_rate"]["return_data"] is True
    for metric in ("errors", "invocations"):
        assert resolve_name(dev, queries[metric]["metric"]["dimensions"]) == {"FunctionName": name, "Resource": f"{name}:live"}


def test_codedeploy_application_is_for_lambda(dev):
    app = find_resource(dev, "aws_codedeploy_app", name="patternwatch-functions-dev")
    assert app["compute_platform"] == "Lambda"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_has_a_canary_deployment_group_that_rolls_back(dev, name):
    group = find_resource(dev, "aws_codedeploy_deployment_group", deployment_group_name=name)
    app_id = logical_id(dev, "aws_codedeploy_app", name="patternwatch-functions-dev")
    assert group["app_name"] == reference_to("aws_codedeploy_app", app_id, "name")
    assert group["deployment_config_name"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
    assert group["deployment_style"] == {"deployment_option": "WITH_TRAFFIC_CONTROL", "deployment_type": "BLUE_GREEN"}
    assert group["auto_rollback_configuration"] == {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]}
    canary_id = logical_id(dev, "aws_cloudwatch_metric_alarm", alarm_name=f"{name}-CanaryErrorRate")
    assert group["alarm_configuration"]["enabled"] is True
    assert reference_to("aws_cloudwatch_metric_alarm", canary_id, "alarm_name") in group["alarm_configuration"]["alarms"]
    role = resolve(dev, group["service_role_arn"].replace(".arn}", ".name}"))
    assert resolve_name(dev, role["name"]) == "CodeDeployRole-dev"


def test_stream_mapping_reads_through_the_enhanced_fan_out_consumer_into_the_alias(dev):
    (consumer_id,) = resources(dev, "aws_kinesis_stream_consumer")
    mapping = find_resource(
        dev, "aws_lambda_event_source_mapping", event_source_arn=reference_to("aws_kinesis_stream_consumer", consumer_id, "arn")
    )
    alias_id, _ = alias_of(dev, "KinesisConsumer-dev")
    assert mapping["function_name"] == reference_to("aws_lambda_alias", alias_id, "arn")
    assert mapping["batch_size"] == 100
    assert mapping["maximum_batching_window_in_seconds"] == 5
    assert mapping["bisect_batch_on_function_error"] is True
    assert mapping["maximum_retry_attempts"] == 3
    assert mapping["maximum_record_age_in_seconds"] == 3600
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    failures = reference_to("aws_sqs_queue", logical_id(dev, "aws_sqs_queue", name="StreamConsumerFailures-dev"), "arn")
    assert mapping["destination_config"] == {"on_failure": {"destination_arn": failures}}


# --- Concurrency and asynchronous failures ---------------------------------------------------------------

@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_every_function_reserves_the_concurrency_its_environment_gives_it(stacks, env):
    """So a flood on one path (the API, say) cannot take the executions the stream consumer or approvals need."""
    config = load_environment(env)
    for spec in FUNCTIONS.values():
        fn = find_resource(stacks[env], "aws_lambda_function", function_name=f"{spec.base_name}-{env}")
        assert fn["reserved_concurrent_executions"] == config.lambda_.reserved_concurrency[spec.package], spec.base_name
    assert sum(config.lambda_.reserved_concurrency.values()) <= config.lambda_.concurrency_budget


def test_the_reservations_per_environment_are_the_documented_numbers():
    """docs/security.md explains each number; change them together."""
    reserved = {env: dict(load_environment(env).lambda_.reserved_concurrency) for env in ENVIRONMENT_NAMES}
    assert reserved == {
        "local": {"kinesis_consumer": 8, "pattern_detector": 10, "alert_processor": 5, "threshold_checker": 2, "approval_processor": 5, "approval_expiry": 2},
        "dev": {"kinesis_consumer": 8, "pattern_detector": 10, "alert_processor": 5, "threshold_checker": 2, "approval_processor": 5, "approval_expiry": 2},
        "staging": {"kinesis_consumer": 8, "pattern_detector": 20, "alert_processor": 5, "threshold_checker": 2, "approval_processor": 5, "approval_expiry": 2},
        "prod": {"kinesis_consumer": 24, "pattern_detector": 50, "alert_processor": 5, "threshold_checker": 2, "approval_processor": 10, "approval_expiry": 2},
    }


@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_the_threshold_checker_retries_then_dead_letters_its_asynchronous_events(stacks, env):
    doc = stacks[env]
    checker = find_resource(doc, "aws_lambda_function", function_name=f"ThresholdChecker-{env}")
    queue = reference_to("aws_sqs_queue", logical_id(doc, "aws_sqs_queue", name=f"ThresholdChecker-DLQ-{env}"), "arn")
    assert checker["dead_letter_config"] == {"target_arn": queue}
    (config,) = resources(doc, "aws_lambda_function_event_invoke_config").values()
    alias_id, _ = alias_of(doc, f"ThresholdChecker-{env}")
    assert config == {**config, "qualifier": reference_to("aws_lambda_alias", alias_id, "name"),
                      "maximum_retry_attempts": 2, "maximum_event_age_in_seconds": 3600}
    assert config["function_name"] == reference_to("aws_lambda_function", function_id(doc, f"ThresholdChecker-{env}"), "function_name")


@pytest.mark.parametrize("name", [n for n in FUNCTIONS if n != "ThresholdChecker-dev"])
def test_functions_only_invoked_synchronously_have_no_dlq_and_say_who_invokes_them(dev, name):
    fn_id = function_id(dev, name)
    assert "dead_letter_config" not in resources(dev, "aws_lambda_function")[fn_id]
    assert dev["//"]["checkov_skip"][fn_id]["CKV_AWS_116"].startswith("invoked synchronously only (by ")


@pytest.mark.parametrize(
    ("queue", "function", "concurrency"),
    # PendingApprovals: reporting a not-yet-due approval as failed is what keeps its timer message, at the
    # visibility approval-expiry gave it.
    [("AlertQueue-dev", "AlertProcessor-dev", 5), ("PendingApprovals-dev", "ApprovalExpiry-dev", 2)],
)
def test_queue_mappings_report_item_failures_into_the_alias_with_bounded_concurrency(dev, queue, function, concurrency):
    arn = reference_to("aws_sqs_queue", logical_id(dev, "aws_sqs_queue", name=queue), "arn")
    mapping = find_resource(dev, "aws_lambda_event_source_mapping", event_source_arn=arn)
    alias_id, _ = alias_of(dev, function)
    assert mapping["function_name"] == reference_to("aws_lambda_alias", alias_id, "arn")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    # At most as many instances as the function reserves: the poller is never throttled.
    assert mapping["scaling_config"] == {"maximum_concurrency": concurrency}
    assert concurrency == DEV.lambda_.reserved_concurrency[FUNCTIONS[function].package]
    assert mapping["batch_size"] == 10


def test_every_event_source_mapping_targets_an_alias(dev):
    for mapping in resources(dev, "aws_lambda_event_source_mapping").values():
        assert mapping["function_name"].startswith("${aws_lambda_alias.")


@pytest.mark.parametrize("layer_name", ["shared-dependencies", "chart-dependencies"])
def test_layers_are_built_for_arm64_python_312(dev, layer_name):
    layer = find_resource(dev, "aws_lambda_layer_version", layer_name=f"{layer_name}-dev")
    assert layer["compatible_runtimes"] == ["python3.12"]
    assert layer["compatible_architectures"] == ["arm64"]
    assert layer["s3_key"].startswith("${aws_signer_signing_job.") and "filename" not in layer
    assert len(resources(dev, "aws_lambda_layer_version")) == 2


def test_the_alert_processor_knows_the_data_bucket_and_the_trading_patterns_table(dev):
    alerts = find_resource(dev, "aws_lambda_function", function_name="AlertProcessor-dev")["environment"]["variables"]
    assert alerts[ENV_DATA_BUCKET] == reference_to("aws_s3_bucket", logical_id(dev, "aws_s3_bucket", bucket="patternwatch-data-111111111111-dev"), "bucket")
    assert alerts[ENV_TRADING_PATTERNS_TABLE] == reference_to("aws_dynamodb_table", logical_id(dev, "aws_dynamodb_table", name="TradingPatterns-dev"), "name")


def test_outputs_name_every_function_alias_and_deployment_group(dev):
    for name, spec in FUNCTIONS.items():
        package = spec.package
        assert dev["output"][f"{package}_function_name"]["value"] == reference_to("aws_lambda_function", function_id(dev, name), "function_name")
        assert dev["output"][f"{package}_alias_arn"]["value"] == reference_to("aws_lambda_alias", alias_of(dev, name)[0], "arn")
        assert dev["output"][f"{package}_deployment_group"]["value"].endswith(".deployment_group_name}")
    assert dev["output"]["chart_layer_arn"]["value"] == reference_to(
        "aws_lambda_layer_version", logical_id(dev, "aws_lambda_layer_version", layer_name="chart-dependencies-dev"), "arn"
    )
    assert json.dumps(dev["output"]["deployment_app_name"]["value"]).count("aws_codedeploy_app") == 1
