"""Stacks, state backends, providers, naming and cost tags across all four environments."""
from __future__ import annotations

import pytest
from cdktf import Aspects
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue

from patternwatch_infra.config import ENVIRONMENT_NAMES, load_environment
from patternwatch_infra.blocks import DELIVERY_FAILURE_LOG_GROUP_SUFFIX
from patternwatch_infra.emulator import EMULATED_SERVICES
from patternwatch_infra.tagging import CostTags
from patternwatch_infra.naming import NAME_SUFFIX_REFERENCE
from patternwatch_infra.testing import all_resources, resolve_name, resources, synth_scope

REAL_ENVIRONMENTS = ("dev", "staging", "prod")
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
# Attributes that carry a resource's own name, by resource type (the rest of the name check keys off these).
NAME_ATTRIBUTES = ("name", "bucket", "function_name", "topic_name", "role_name")
# Names that live inside a parent that already carries the suffix (and, for models, must be alphanumeric).
NAMES_SCOPED_TO_A_PARENT = {"aws_api_gateway_model", "aws_api_gateway_request_validator", "aws_lambda_alias"}
STACK_NAMES = [stack for env in ENVIRONMENT_NAMES for stack in load_environment(env).stack_names]


def environment_of(stack: str) -> str:
    return stack.removeprefix("patternwatch-").removesuffix("-power-tuner")


def test_all_four_environments_synthesize_as_named_stacks(stacks):
    assert set(stacks) == set(ENVIRONMENT_NAMES)
    for name, document in stacks.items():
        assert document["//"]["metadata"]["stackName"] == f"patternwatch-{name}"


@pytest.mark.parametrize("env", REAL_ENVIRONMENTS)
def test_real_environments_keep_encrypted_locked_state_in_s3(stacks, env):
    backend = stacks[env]["terraform"]["backend"]
    assert backend == {
        "s3": {
            "bucket": f"patternwatch-terraform-state-{ACCOUNTS[env]}",
            "key": f"{env}/patternwatch.tfstate",
            "region": "us-east-1",
            "encrypt": True,
            "kms_key_id": "alias/patternwatch-terraform-state",
            "use_lockfile": True,
            "workspace_key_prefix": f"{env}/workspaces",
        }
    }


def test_terraform_version_is_pinned_for_the_s3_lockfile(stacks):
    for document in stacks.values():
        assert document["terraform"]["required_version"] == ">= 1.10"
        assert document["terraform"]["required_providers"]["aws"] == {"source": "hashicorp/aws", "version": "5.100.0"}


@pytest.mark.parametrize("env", REAL_ENVIRONMENTS)
def test_real_environments_only_touch_their_own_account_and_have_no_emulator_settings(stacks, env):
    for provider in stacks[env]["provider"]["aws"]:
        assert provider["allowed_account_ids"] == [ACCOUNTS[env]]
        assert not {"endpoints", "access_key", "secret_key", "skip_credentials_validation", "max_retries"} & set(provider)


def test_local_keeps_state_in_a_local_file_outside_the_build_output(local):
    assert local["terraform"]["backend"] == {
        "local": {
            "path": "../../../terraform.patternwatch-local.tfstate",
            # Other workspaces' states sit beside it, out of the build output too.
            "workspace_dir": "../../../terraform.patternwatch-local.tfstate.d",
        }
    }


def test_local_points_every_service_at_the_emulator_with_test_credentials(local):
    for provider in local["provider"]["aws"]:
        (endpoints,) = provider["endpoints"]
        endpoint = load_environment("local").emulator.endpoint  # 127.0.0.1:5055 unless PATTERNWATCH_EMULATOR_PORT moves it
        assert endpoints == {service.rstrip("_"): endpoint for service in EMULATED_SERVICES}
        assert "lambda" in endpoints
        assert (provider["access_key"], provider["secret_key"]) == ("test", "test")
        assert provider["skip_credentials_validation"] is True
        assert provider["skip_metadata_api_check"] == "true"
        assert provider["skip_region_validation"] is True
        assert provider["s3_use_path_style"] is True
        assert provider["max_retries"] == 3


def test_every_stack_has_a_us_east_1_provider_for_billing_metrics(stacks):
    for document in stacks.values():
        providers = {p.get("alias"): p for p in document["provider"]["aws"]}
        assert providers["billing"]["region"] == "us-east-1"
        assert providers[None]["region"] == "us-east-1"


def _resource_names(document: dict) -> list[tuple[str, str]]:
    found = []
    for resource_type, logical, block in all_resources(document):
        if resource_type in NAMES_SCOPED_TO_A_PARENT:
            continue
        for attribute in NAME_ATTRIBUTES:
            value = block.get(attribute)
            if isinstance(value, str) and not value.startswith("${"):
                found.append((f"{resource_type}.{logical}.{attribute}", value))
    return found


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_every_resource_name_ends_in_the_name_suffix_local(all_stacks, stack):
    """The environment suffix in `default`, <suffix>-<workspace> elsewhere: never a literal suffix (a name made
    from another resource's name, like the API's access log group, follows that name). SNS names the log group
    of a topic's failed deliveries itself: `<the topic's group>/Failure`."""
    document, env = all_stacks[stack], environment_of(stack)
    names = [(where, value.removesuffix(DELIVERY_FAILURE_LOG_GROUP_SUFFIX)) for where, value in _resource_names(document)]
    assert len(names) >= 14
    assert sum(value.endswith(NAME_SUFFIX_REFERENCE) for _, value in names) >= len(names) - 1
    for where, value in names:
        assert resolve_name(document, value).endswith(f"-{env}"), where
        assert resolve_name(document, value, workspace="pr123").endswith(f"-{env}-pr123"), where


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_every_taggable_resource_carries_the_cost_tags(all_stacks, provider_schema, stack):
    env = environment_of(stack)
    taggable = {
        resource_type
        for resource_type, schema in provider_schema["resource_schemas"].items()
        if "tags" in schema["block"].get("attributes", {})
    }
    checked = 0
    for resource_type, logical, block in all_resources(all_stacks[stack]):
        if resource_type in taggable:
            checked += 1
            tags = block.get("tags", {})
            assert tags.get("Project") == "PatternWatch", f"{resource_type}.{logical}"
            assert tags.get("Environment") == env, f"{resource_type}.{logical}"
            assert tags.get("CostCenter") == "trading-analytics", f"{resource_type}.{logical}"
    assert checked >= 10


def test_tags_set_on_a_resource_are_kept_beside_the_cost_tags():
    def build(scope):
        SqsQueue(scope, "q", name="q-test", tags={"Owner": "desk-7"})
        Aspects.of(scope).add(CostTags({"Project": "PatternWatch", "Environment": "test", "CostCenter": "x"}))

    (queue,) = resources(synth_scope(build), "aws_sqs_queue").values()
    assert queue["tags"] == {"Owner": "desk-7", "Project": "PatternWatch", "Environment": "test", "CostCenter": "x"}


def test_emulator_gaps_are_confined_to_local(stacks):
    """Resources the emulator cannot create and attributes it drops are handled for `local` only."""
    assert not resources(stacks["local"], "aws_cloudwatch_composite_alarm")
    for env in REAL_ENVIRONMENTS:
        assert len(resources(stacks[env], "aws_cloudwatch_composite_alarm")) == 1
        for resource_type in ("aws_codedeploy_deployment_group",):
            for block in resources(stacks[env], resource_type).values():
                assert "lifecycle" not in block or "ignore_changes" not in block["lifecycle"], resource_type
    # Code signing needs Signer jobs and code signing configs, which the emulator lacks: `local` ships unsigned code.
    for resource_type in ("aws_signer_signing_profile", "aws_signer_signing_job", "aws_lambda_code_signing_config"):
        assert not resources(stacks["local"], resource_type), resource_type
        for env in REAL_ENVIRONMENTS:
            assert resources(stacks[env], resource_type), (env, resource_type)
    # The stage ignores what the release owns everywhere alike; nothing about it is local-only any more.
    for env in ENVIRONMENT_NAMES:
        (stage,) = resources(stacks[env], "aws_api_gateway_stage").values()
        assert stage["lifecycle"] == {"ignore_changes": ["deployment_id", "canary_settings"]}
    for group in resources(stacks["local"], "aws_codedeploy_deployment_group").values():
        assert group["lifecycle"] == {"ignore_changes": ["alarm_configuration", "load_balancer_info"]}
