"""Terraform workspaces: every name carries the workspace, names fit AWS's limits, bad names fail the plan."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from patternwatch_infra.config import ENVIRONMENT_NAMES, load_environment
from patternwatch_infra.naming import NAME_SUFFIX_REFERENCE
from patternwatch_infra.testing import all_resources, resolve_name, resources
from patternwatch_infra.workspaces import MAX_WORKSPACE_LENGTH, WORKSPACE_NAME_RULE, name_suffix, workspace_name_problem
from tooling.toolchain import terraform_env

LONGEST_WORKSPACE = "w" * MAX_WORKSPACE_LENGTH

# AWS's length limit of every attribute that carries the name suffix, by resource type. A resource type or
# attribute that starts carrying the suffix without an entry here fails the test below, so none is missed.
# API Gateway documents no limit for these names; 128 is a bound we choose and hold ourselves to.
NAME_LIMITS = {
    ("aws_iam_role", "name"): 64,
    ("aws_iam_role_policy", "name"): 128,
    ("aws_iam_policy", "name"): 128,
    # AWS appends 26 characters to a prefix and allows 64 in all (the provider checks the prefix for 38).
    ("aws_signer_signing_profile", "name_prefix"): 38,
    ("aws_s3_object", "key"): 1024,
    ("aws_s3_bucket", "bucket"): 63,
    ("aws_sqs_queue", "name"): 80,
    ("aws_sns_topic", "name"): 256,
    ("aws_lambda_function", "function_name"): 64,
    ("aws_lambda_layer_version", "layer_name"): 140,
    ("aws_cloudwatch_log_group", "name"): 512,
    ("aws_wafv2_web_acl", "name"): 128,
    ("aws_wafv2_web_acl", "visibility_config.metric_name"): 255,
    ("aws_sfn_state_machine", "name"): 80,
    ("aws_cloudwatch_event_rule", "name"): 64,
    ("aws_codedeploy_app", "name"): 100,
    ("aws_codedeploy_deployment_group", "deployment_group_name"): 100,
    ("aws_dynamodb_table", "name"): 255,
    ("aws_kinesis_stream", "name"): 128,
    ("aws_kinesis_stream_consumer", "name"): 128,
    ("aws_api_gateway_rest_api", "name"): 128,
    ("aws_api_gateway_api_key", "name"): 128,
    ("aws_api_gateway_usage_plan", "name"): 128,
    ("aws_cloudwatch_metric_alarm", "alarm_name"): 255,
    ("aws_cloudwatch_metric_alarm", "alarm_description"): 1024,
    ("aws_cloudwatch_composite_alarm", "alarm_name"): 255,
    ("aws_cloudwatch_dashboard", "dashboard_name"): 255,
    ("aws_kms_alias", "name"): 256,
    ("aws_kms_key", "description"): 8192,
    ("aws_budgets_budget", "name"): 100,
}
# Attributes that mention names but are not names: the dashboard graphs every function and queue by name.
NOT_NAMES = {("aws_cloudwatch_dashboard", "dashboard_body")}


def named_attributes(document: dict) -> list[tuple[str, str, str]]:
    """(resource type, attribute, value) for every attribute whose value is or contains a name with the suffix,
    directly or through another resource's name (an access log group named after its API)."""
    found = []
    for resource_type, _, block in all_resources(document):
        candidates = [(key, value) for key, value in block.items() if isinstance(value, str)]
        visibility = block.get("visibility_config")
        if isinstance(visibility, dict):
            candidates.append(("visibility_config.metric_name", visibility["metric_name"]))
        for attribute, value in candidates:
            if (resource_type, attribute) in NOT_NAMES:
                continue
            if NAME_SUFFIX_REFERENCE in value or NAME_SUFFIX_REFERENCE in str(resolve_name(document, value)):
                found.append((resource_type, attribute, value))
    return found


# The emulator environment has no configured account: its names read the caller's 12-digit account id.
CALLER_ACCOUNT = re.compile(r"\$\{data\.aws_caller_identity\.[A-Za-z0-9_]+\.account_id\}")
STACK_NAMES = [stack for env in ENVIRONMENT_NAMES for stack in load_environment(env).stack_names]


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_every_name_fits_aws_limits_in_the_longest_workspace_allowed(all_stacks, stack):
    document = all_stacks[stack]
    checked = 0
    for resource_type, attribute, value in named_attributes(document):
        limit = NAME_LIMITS.get((resource_type, attribute))
        assert limit is not None, f"{resource_type}.{attribute} carries the name suffix: add its AWS length limit to NAME_LIMITS"
        longest = CALLER_ACCOUNT.sub("123456789012", resolve_name(document, value, workspace=LONGEST_WORKSPACE))
        assert LONGEST_WORKSPACE in longest and "${" not in longest.replace("${aws_", ""), longest
        assert len(longest) <= limit, f"{resource_type}.{attribute}: {longest!r} is {len(longest)} > {limit} characters"
        checked += 1
    assert checked > (100 if stack.endswith(tuple(ENVIRONMENT_NAMES)) else 30)


def test_the_waf_log_bucket_is_the_name_that_sets_the_workspace_limit(stacks):
    """The rule is as long as it can be: one more character and the longest bucket name would not fit."""
    longest = max(
        len(resolve_name(document, bucket["bucket"], workspace=LONGEST_WORKSPACE))
        for document in stacks.values()
        for bucket in resources(document, "aws_s3_bucket").values()
    )
    assert longest == 63


@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_the_api_gateway_logging_role_setting_belongs_to_the_default_workspace(stacks, env):
    """One setting per account and region: a workspace must not point it at its own role, which it deletes on destroy."""
    (account,) = resources(stacks[env], "aws_api_gateway_account").values()
    assert account["count"] == '${terraform.workspace == "default" ? 1 : 0}'


@pytest.mark.parametrize(
    "workspace, allowed",
    [
        ("default", True), ("pr123", True), ("a", True), ("feature-x-2", True), (LONGEST_WORKSPACE, True),
        ("w" * (MAX_WORKSPACE_LENGTH + 1), False), ("PR123", False), ("pr_123", False), ("-pr", False), ("pr-", False),
        ("pr.1", False), ("", False),
    ],
)
def test_the_workspace_name_rule(workspace, allowed):
    assert (workspace_name_problem(workspace) is None) == allowed
    if not allowed:
        assert WORKSPACE_NAME_RULE in workspace_name_problem(workspace)


@pytest.fixture(scope="module")
def workspace_probe(dev, tmp_path_factory):
    """The dev stack's `name_suffix` local and workspace check, in a directory of their own, with outputs that
    evaluate a few of its names: Terraform itself, on a local backend, without AWS."""
    names = {
        "table": resolve_name_source(dev, "aws_dynamodb_table", "name"),
        "bucket": resolve_name_source(dev, "aws_s3_bucket", "bucket"),
        "role": resolve_name_source(dev, "aws_iam_role", "name"),
    }
    directory = tmp_path_factory.mktemp("workspace-probe")
    (directory / "main.tf.json").write_text(json.dumps({
        "locals": dev["locals"],
        "resource": {"terraform_data": dev["resource"]["terraform_data"]},
        "output": {key: {"value": value} for key, value in names.items()},
    }))
    init = subprocess.run(["terraform", "init", "-input=false", "-no-color"], cwd=directory, env=terraform_env(), capture_output=True, text=True)
    assert init.returncode == 0, init.stdout + init.stderr
    return directory, names


def resolve_name_source(document: dict, resource_type: str, attribute: str) -> str:
    """The first resource of a type whose name is made from the local alone."""
    return next(b[attribute] for b in resources(document, resource_type).values() if b[attribute].endswith(NAME_SUFFIX_REFERENCE))


def _in_workspace(directory, workspace: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["terraform", *command], cwd=directory, env={**terraform_env(), "TF_WORKSPACE": workspace}, capture_output=True, text=True
    )


@pytest.mark.parametrize("workspace", ["default", "pr123", LONGEST_WORKSPACE])
def test_terraform_evaluates_every_name_as_resolve_name_does(dev, workspace_probe, workspace):
    directory, names = workspace_probe
    applied = _in_workspace(directory, workspace, "apply", "-auto-approve", "-input=false", "-no-color")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    outputs = json.loads(_in_workspace(directory, workspace, "output", "-json").stdout)
    for key, expression in names.items():
        assert outputs[key]["value"] == resolve_name(dev, expression, workspace)
        assert outputs[key]["value"].endswith(f"-{name_suffix('dev', workspace)}")


@pytest.mark.parametrize("workspace", ["PR_123", "w" * (MAX_WORKSPACE_LENGTH + 1), "feature-"])
def test_a_plan_in_a_badly_named_workspace_fails_with_the_rule(workspace_probe, workspace):
    directory, _ = workspace_probe
    planned = _in_workspace(directory, workspace, "plan", "-input=false", "-no-color")
    assert planned.returncode == 1
    message = " ".join(planned.stderr.split())
    assert "Resource precondition failed" in message
    assert f'The Terraform workspace name "{workspace}" is not allowed: use {WORKSPACE_NAME_RULE}' in message


def test_resolve_name_needs_the_local_naming_py_writes():
    assert resolve_name({}, "a plain name") == "a plain name"
    with pytest.raises(AssertionError, match="no name_suffix local made by naming.py"):
        resolve_name({"locals": {"name_suffix": "dev"}}, "TradingPatterns-${local.name_suffix}")
