"""Least privilege, read from every role's policy document in the synthesized JSON."""
from __future__ import annotations

import json

import pytest

from patternwatch_infra.config import ENVIRONMENT_NAMES, load_environment
from patternwatch_shared.names.functions import PLATFORM_FUNCTIONS

from patternwatch_infra.testing import find_resource, logical_id, policy_statements, reference_to, resolve, resolve_name, resources

# Every stack with roles: the platforms and the power tuner's stacks.
STACK_NAMES = [stack for env in ENVIRONMENT_NAMES for stack in load_environment(env).stack_names]

# Statements allowed a wildcard in a resource, each with the reason AWS forces it. Anything else fails.
WILDCARD_RESOURCE_ALLOWLIST = {
    "SendTraces": "xray:PutTraceSegments/PutTelemetryRecords have no resource-level permissions",
    "WriteOwnLogs": "log streams are created by Lambda with generated names inside the function's own group",
    "WriteApiGatewayLogs": "API Gateway names its execution-log groups itself; scoped to this account and region",
    "ShiftAliasTraffic": "CodeDeploy addresses versions and aliases as <function arn>:<qualifier>",
    "DeliverWorkflowLogs": "CloudWatch Logs vended-log delivery actions have no resource-level permissions",
    "SendWorkflowTraces": "X-Ray actions (incl. sampling rules/targets) have no resource-level permissions",
    "WriteDeliveryStatusLogs": "SNS names the log streams inside each topic's two delivery-status groups itself",
    "CreateTuningAliases": "the tuner's aliases are RAM<memory>: <function arn>:RAM* names only those",
    "InvokeTuningAliases": "the executor may invoke only the RAM<memory> aliases, never `live`",
    "RemoveTuningAliases": "the tuner's aliases are RAM<memory>: <function arn>:RAM* names only those",
    "RemoveTuningVersions": "versions are <function arn>:<number>: <arn>:1* .. <arn>:9* match every version and no alias",
    "ReadEvidence": "objects are named per alert under the data bucket's evidence/ prefix; <bucket arn>/evidence/* names only those",
    "WriteEvidence": "evidence objects are named per alert (evidence/<sha256 of the alertId>/...): only that prefix",
}
# Actions AWS accepts only with the bare "*" resource.
STAR_ONLY_ACTIONS = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
}


def role_policies(doc: dict) -> dict[str, list[dict]]:
    """Role name -> the statements of its inline policy."""
    found = {}
    for policy in resources(doc, "aws_iam_role_policy").values():
        role = resolve(doc, policy["role"].replace(".id}", ".arn}"))
        found[resolve_name(doc, role["name"])] = policy_statements(doc, policy["policy"])
    return found


def actions_by_role(doc: dict) -> dict[str, set[str]]:
    return {role: {a for s in statements for a in s["actions"]} for role, statements in role_policies(doc).items()}


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_every_role_has_exactly_one_inline_policy(all_stacks, stack):
    doc = all_stacks[stack]
    roles = {r["name"] for r in resources(doc, "aws_iam_role").values()}
    policies = [resolve(doc, p["role"].replace(".id}", ".arn}"))["name"] for p in resources(doc, "aws_iam_role_policy").values()]
    assert sorted(policies) == sorted(roles)
    assert not resources(doc, "aws_iam_role_policy_attachment"), "managed policies grant more than we use"


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_no_role_grants_a_wildcard_action(all_stacks, stack):
    for role, statements in role_policies(all_stacks[stack]).items():
        for s in statements:
            for action in s["actions"]:
                assert "*" not in action, f"{role}: {s['sid']} names {action}"
        # Roles grant; the only denies take back what an action's resource cannot (the tuner's initializer).
        assert all(s["effect"] == "Allow" or s["sid"].startswith("Never") for s in statements), role


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_wildcard_resources_appear_only_where_aws_forces_them(all_stacks, stack):
    for role, statements in role_policies(all_stacks[stack]).items():
        for s in statements:
            if s["effect"] == "Allow" and any("*" in r for r in s["resources"]):
                assert s["sid"] in WILDCARD_RESOURCE_ALLOWLIST, f"{role}: {s['sid']} has wildcard resources {s['resources']}"


def test_the_bare_star_resource_is_only_used_by_actions_without_resource_level_permissions(dev):
    for role, statements in role_policies(dev).items():
        for s in statements:
            if "*" in s["resources"]:
                assert set(s["actions"]) <= STAR_ONLY_ACTIONS, role


EXPECTED_ACTIONS = {
    "KinesisConsumerRole-dev": {
        # sqs:SendMessage is for the stream's on-failure destination only (see the test below).
        "dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "sqs:SendMessage",
        "events:PutEvents", "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator",
        "kinesis:ListShards", "kinesis:SubscribeToShard", "kinesis:DescribeStreamConsumer",
    },
    "PatternDetectorRole-dev": {"dynamodb:Query", "sqs:SendMessage"},
    "AlertProcessorRole-dev": {
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility",
        # The delivery claim (Put; Update to DELIVERED; Delete to release it after a failure) and the approval
        # with its links (Put; Update step by step; Get to resume a half-done one).
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "sqs:SendMessage", "sns:Publish",
        # Evidence: the bars window and the stored match (Query), written to the data bucket (PutObject).
        "dynamodb:Query", "s3:PutObject",
    },
    "ThresholdCheckerRole-dev": {"dynamodb:Query", "sqs:SendMessage"},
    "ApprovalProcessorRole-dev": {"dynamodb:GetItem", "dynamodb:UpdateItem", "sns:Publish", "s3:GetObject"},
    "ApprovalExpiryRole-dev": {
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility",
        "dynamodb:GetItem", "dynamodb:UpdateItem", "sns:Publish",
    },
}
EVERY_FUNCTION_ROLE = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords", "kms:Decrypt", "kms:GenerateDataKey"}


@pytest.mark.parametrize("role", EXPECTED_ACTIONS)
def test_function_roles_grant_exactly_what_their_code_uses(dev, role):
    assert actions_by_role(dev)[role] == EXPECTED_ACTIONS[role] | EVERY_FUNCTION_ROLE


def test_kms_permissions_are_scoped_to_the_platform_key(dev):
    (key_id,) = resources(dev, "aws_kms_key")
    key_arn = f"${{aws_kms_key.{key_id}.arn}}"
    for role, statements in role_policies(dev).items():
        for s in statements:
            if any(a.startswith("kms:") for a in s["actions"]):
                assert s["resources"] == [key_arn], role


def test_roles_trust_only_their_own_service(dev):
    trusted = {}
    for role in resources(dev, "aws_iam_role").values():
        (stmt,) = json.loads(role["assume_role_policy"])["Statement"]
        assert stmt["Action"] == "sts:AssumeRole"
        trusted[resolve_name(dev, role["name"])] = stmt["Principal"]["Service"]
    assert trusted["PatternDetectorRole-dev"] == "lambda.amazonaws.com"
    assert trusted["CodeDeployRole-dev"] == "codedeploy.amazonaws.com"
    assert trusted["ApiGatewayLogsRole-dev"] == "apigateway.amazonaws.com"
    assert trusted["SnsDeliveryStatusRole-dev"] == "sns.amazonaws.com"


def test_codedeploy_reads_only_the_alarms_it_rolls_back_on(dev):
    (watch,) = [s for s in role_policies(dev)["CodeDeployRole-dev"] if s["sid"] == "WatchRollbackAlarms"]
    assert watch["actions"] == ["cloudwatch:DescribeAlarms"]
    expected = [
        reference_to("aws_cloudwatch_metric_alarm", logical_id(dev, "aws_cloudwatch_metric_alarm", alarm_name=f"{function}-dev-{metric}"), "arn")
        for function in (spec.base_name for spec in PLATFORM_FUNCTIONS)
        for metric in ("CanaryErrorRate", "Errors")
    ]
    assert watch["resources"] == expected


def test_the_threshold_checker_dead_letters_only_to_its_own_queue(dev):
    statements = {s["sid"]: s for s in role_policies(dev)["ThresholdCheckerRole-dev"]}
    queue_id = logical_id(dev, "aws_sqs_queue", name="ThresholdChecker-DLQ-dev")
    assert statements["SendFailedEventsToDeadLetterQueue"] == {
        **statements["SendFailedEventsToDeadLetterQueue"], "actions": ["sqs:SendMessage"], "resources": [reference_to("aws_sqs_queue", queue_id, "arn")],
    }
    assert not [role for role, st in role_policies(dev).items() if role != "ThresholdCheckerRole-dev" and any(
        s["sid"] == "SendFailedEventsToDeadLetterQueue" for s in st)]


def test_sns_writes_delivery_status_only_into_the_topics_own_log_groups(dev):
    statements = {s["sid"]: s for s in role_policies(dev)["SnsDeliveryStatusRole-dev"]}
    assert set(statements) == {"CreateDeliveryStatusGroups", "WriteDeliveryStatusLogs"}
    groups = [
        logical_id(dev, "aws_cloudwatch_log_group", name=f"sns/us-east-1/111111111111/{topic}-dev{outcome}")
        for topic in ("TradingAlerts", "AlertApprovalRequests", "PatternWatchOps") for outcome in ("", "/Failure")
    ]
    arns = [reference_to("aws_cloudwatch_log_group", g, "arn") for g in groups]
    assert statements["CreateDeliveryStatusGroups"]["actions"] == ["logs:CreateLogGroup"]
    assert statements["CreateDeliveryStatusGroups"]["resources"] == arns
    assert statements["WriteDeliveryStatusLogs"]["actions"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statements["WriteDeliveryStatusLogs"]["resources"] == [f"{a}:*" for a in arns]


def test_codedeploy_may_only_move_our_aliases(dev):
    statements = {s["sid"]: s for s in role_policies(dev)["CodeDeployRole-dev"]}
    shift = statements["ShiftAliasTraffic"]
    assert set(shift["actions"]) == {"lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetFunction", "lambda:GetProvisionedConcurrencyConfig"}
    function_arns = [r for r in shift["resources"] if not r.endswith(":*")]
    # Built from the functions' names, not read from the functions: a code or configuration change to a function
    # must not make Terraform re-read this policy at apply and show it as changing.
    caller = next(iter(dev["data"]["aws_caller_identity"]))
    assert sorted(resolve_name(dev, function_arns)) == sorted(
        f"arn:aws:lambda:us-east-1:${{data.aws_caller_identity.{caller}.account_id}}:function:{spec.base_name}-dev"
        for spec in PLATFORM_FUNCTIONS
    )
    assert not any("aws_lambda_function." in r for r in shift["resources"])
    assert {f"{r}:*" for r in function_arns} == {r for r in shift["resources"] if r.endswith(":*")}


def test_the_threshold_checker_may_only_query_the_recent_patterns_index(dev):
    statements = {s["sid"]: s for s in role_policies(dev)["ThresholdCheckerRole-dev"]}
    table = find_resource(dev, "aws_dynamodb_table", name="TradingPatterns-dev")
    assert table["global_secondary_index"][0]["name"] == "RecentPatternsIndex"
    (resource,) = statements["QueryRecentPatterns"]["resources"]
    assert resource.endswith(".arn}/index/RecentPatternsIndex")


def test_the_approval_page_reads_only_evidence_from_the_data_bucket(dev):
    statements = {s["sid"]: s for s in role_policies(dev)["ApprovalProcessorRole-dev"]}
    (resource,) = statements["ReadEvidence"]["resources"]
    bucket_id = [k for k, b in resources(dev, "aws_s3_bucket").items() if resolve_name(dev, b["bucket"]) == "patternwatch-data-111111111111-dev"][0]
    assert resource == f"${{aws_s3_bucket.{bucket_id}.arn}}/evidence/*"
    assert statements["ReadEvidence"]["actions"] == ["s3:GetObject"]


def test_the_expiry_timer_consumes_only_pending_approvals(dev):
    statements = {s["sid"]: s for s in role_policies(dev)["ApprovalExpiryRole-dev"]}
    queue_id = [k for k, q in resources(dev, "aws_sqs_queue").items() if resolve_name(dev, q["name"]) == "PendingApprovals-dev"][0]
    assert statements["ConsumePendingApprovals"]["resources"] == [f"${{aws_sqs_queue.{queue_id}.arn}}"]


def test_the_alert_processor_writes_evidence_only_under_its_prefix_and_reads_only_trading_patterns(dev):
    statements = {s["sid"]: s for s in role_policies(dev)["AlertProcessorRole-dev"]}
    bucket = reference_to("aws_s3_bucket", logical_id(dev, "aws_s3_bucket", bucket="patternwatch-data-111111111111-dev"), "arn")
    assert statements["WriteEvidence"]["actions"] == ["s3:PutObject"]
    assert statements["WriteEvidence"]["resources"] == [f"{bucket}/evidence/*"]
    table = reference_to("aws_dynamodb_table", logical_id(dev, "aws_dynamodb_table", name="TradingPatterns-dev"), "arn")
    assert statements["ReadEvidenceFromTradingPatterns"]["actions"] == ["dynamodb:Query"]
    assert statements["ReadEvidenceFromTradingPatterns"]["resources"] == [table, f"{table}/index/RecentPatternsIndex"]


@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_the_consumer_emits_events_on_the_default_bus_only_and_queues_no_alerts(stacks, env):
    doc = stacks[env]
    statements = {st["sid"]: st for st in role_policies(doc)[f"KinesisConsumerRole-{env}"]}
    emit = statements["EmitPatternDetectedEvents"]
    (caller_id,) = doc["data"]["aws_caller_identity"]
    assert emit["actions"] == ["events:PutEvents"]
    assert emit["resources"] == [f"arn:aws:events:us-east-1:${{data.aws_caller_identity.{caller_id}.account_id}}:event-bus/default"]
    queues = {r for st in statements.values() if "sqs:SendMessage" in st["actions"] for r in st["resources"]}
    failures = logical_id(doc, "aws_sqs_queue", name=f"StreamConsumerFailures-{env}")
    assert queues == {f"${{aws_sqs_queue.{failures}.arn}}"}
