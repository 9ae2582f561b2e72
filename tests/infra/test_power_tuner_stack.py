"""The power tuner's own stack: opt-in per environment, finds the platform by name, and may touch nothing of a
platform function but the RAM<value> aliases and the versions it publishes."""
from __future__ import annotations

import fnmatch
import json
import re
from types import SimpleNamespace

import pytest
from cdktf import App
from patternwatch_shared.names.functions import PLATFORM_FUNCTIONS

from patternwatch_infra.config import ConfigError, load_environment
from patternwatch_infra.power_tuner import PowerTunerStack, power_tuner_stack
from patternwatch_infra.testing import (
    alias_arn_of, find_resource, logical_id, reference_to, resolve_name, resources, role_statements,
)
from patternwatch_infra.workflows import reachable_states, task_states

TUNER_FUNCTIONS = {
    "PowerTuningInitializer": "initialize",
    "PowerTuningExecutor": "execute",
    "PowerTuningCleaner": "clean",
    "PowerTuningAnalyzer": "analyze",
}
TUNER_ENVIRONMENTS = ("local", "dev", "staging")
ACCOUNT = "111111111111"
_TARGET = re.compile(r"\$\{data\.aws_lambda_function\.([A-Za-z0-9_]+)\.arn\}")
# What may never be granted on a platform function, and the ARNs it must never reach.
ALIAS_AND_INVOKE_ACTIONS = {"lambda:CreateAlias", "lambda:UpdateAlias", "lambda:DeleteAlias", "lambda:InvokeFunction"}


def target_arn(doc: dict, reference: str) -> str:
    """`${data.aws_lambda_function.<id>.arn}` (with any suffix) as the concrete ARN it reads in the default workspace."""

    def concrete(match: re.Match) -> str:
        name = resolve_name(doc, doc["data"]["aws_lambda_function"][match.group(1)]["function_name"])
        return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"

    return _TARGET.sub(concrete, reference)


def target_statements(doc: dict) -> list[tuple[str, dict]]:
    """(role name, statement) for every statement of every tuner role that names a platform function."""
    found = []
    for base in (*TUNER_FUNCTIONS, "PowerTuningWorkflow"):
        for statement in role_statements(doc, f"{base}Role-dev").values():
            if any(_TARGET.search(r) for r in statement["resources"]):
                found.append((base, statement))
    return found


# --- Which environments have one, and what it holds ------------------------------------------------

def test_prod_synthesizes_no_tuner(all_stacks, prod):
    assert not [name for name in all_stacks if name.startswith("patternwatch-prod-")]
    # The decision reads only the platform's configuration.
    assert power_tuner_stack(App(), SimpleNamespace(config=load_environment("prod"))) is None
    names = [resolve_name(prod, f["function_name"]) for f in resources(prod, "aws_lambda_function").values()]
    assert not [n for n in names if n.startswith("PowerTuning")]
    assert not [m for m in resources(prod, "aws_sfn_state_machine").values() if "PowerTuning" in m["name"]]


def test_dev_staging_and_local_have_a_tuner_stack_and_no_platform_carries_it(stacks, tuner_stacks):
    assert sorted(tuner_stacks) == sorted(TUNER_ENVIRONMENTS)
    for env, doc in stacks.items():
        assert not [f for f in resources(doc, "aws_lambda_function").values() if f["function_name"].startswith("PowerTuning")], env
        assert "power_tuning_state_machine_arn" not in doc["output"], env
    for env, doc in tuner_stacks.items():
        assert doc["//"]["metadata"]["stackName"] == f"patternwatch-{env}-power-tuner"


def test_the_tuner_keeps_a_state_of_its_own(tuner_stacks):
    assert tuner_stacks["dev"]["terraform"]["backend"]["s3"] == {
        "bucket": f"patternwatch-terraform-state-{ACCOUNT}",
        "key": "dev/power-tuner.tfstate",
        "region": "us-east-1",
        "encrypt": True,
        "kms_key_id": "alias/patternwatch-terraform-state",
        "use_lockfile": True,
        "workspace_key_prefix": "dev/workspaces",
    }
    assert tuner_stacks["local"]["terraform"]["backend"] == {
        "local": {
            "path": "../../../terraform.patternwatch-local-power-tuner.tfstate",
            "workspace_dir": "../../../terraform.patternwatch-local-power-tuner.tfstate.d",
        }
    }


def test_it_finds_the_platform_by_name_through_data_sources(dev_tuner):
    functions = {resolve_name(dev_tuner, d["function_name"]) for d in dev_tuner["data"]["aws_lambda_function"].values()}
    assert functions == {f"{spec.base_name}-dev" for spec in PLATFORM_FUNCTIONS}
    (key,) = dev_tuner["data"]["aws_kms_key"].values()
    assert resolve_name(dev_tuner, key["key_id"]) == "alias/patternwatch-dev"
    (topic,) = dev_tuner["data"]["aws_sns_topic"].values()
    assert resolve_name(dev_tuner, topic["name"]) == "PatternWatchOps-dev"
    assert resolve_name(dev_tuner, topic["name"], workspace="pr1") == "PatternWatchOps-dev-pr1"
    assert "terraform_remote_state" not in dev_tuner.get("data", {})


def test_it_is_a_synth_time_error_to_build_a_tuner_without_its_environment_s_platform():
    dev = load_environment("dev")
    for platform in (None, SimpleNamespace(config=load_environment("staging"))):
        with pytest.raises(ConfigError, match=r"^envs/dev.json: power_tuner.enabled: the tuner tunes the functions of patternwatch-dev"):
            PowerTunerStack(App(), dev, platform=platform)


@pytest.mark.parametrize("base, entry", TUNER_FUNCTIONS.items())
def test_tuner_functions_share_one_package_with_their_own_entry_point(dev_tuner, base, entry):
    fn = find_resource(dev_tuner, "aws_lambda_function", function_name=f"{base}-dev")
    assert fn["handler"] == f"power_tuning.handler.{entry}"
    assert fn["architectures"] == ["arm64"] and fn["tracing_config"] == {"mode": "Active"}
    assert fn["timeout"] == {"PowerTuningExecutor": 900, "PowerTuningAnalyzer": 30}.get(base, 300)
    assert fn["role"] == reference_to("aws_iam_role", logical_id(dev_tuner, "aws_iam_role", name=f"{base}Role-dev"), "arn")
    assert "layers" not in fn, "the tuner's code needs nothing from the platform's layer"
    (key,) = dev_tuner["data"]["aws_kms_key"]
    assert fn["kms_key_arn"] == f"${{data.aws_kms_key.{key}.arn}}"


def test_there_is_no_optimizer_and_no_codedeploy(dev_tuner):
    names = {resolve_name(dev_tuner, f["function_name"]) for f in resources(dev_tuner, "aws_lambda_function").values()}
    assert names == {f"{base}-dev" for base in TUNER_FUNCTIONS}
    assert not resources(dev_tuner, "aws_codedeploy_deployment_group") and not resources(dev_tuner, "aws_codedeploy_app")
    for alias in resources(dev_tuner, "aws_lambda_alias").values():
        # Nothing else moves these aliases, so each follows the version Terraform publishes.
        assert "lifecycle" not in alias and alias["function_version"].endswith(".version}")


# --- What its roles may do --------------------------------------------------------------------------

def test_the_tuner_roles_hold_only_their_step_s_actions(dev_tuner):
    """Every role, every statement: the IAM actions the tuner's roles hold (docs/orchestration.md lists them)."""
    actions = {
        base: {sid: (s["effect"], sorted(s["actions"])) for sid, s in role_statements(dev_tuner, f"{base}Role-dev").items()}
        for base in (*TUNER_FUNCTIONS, "PowerTuningWorkflow")
    }
    own = {
        "WriteOwnLogs": ("Allow", ["logs:CreateLogStream", "logs:PutLogEvents"]),
        "SendTraces": ("Allow", ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]),
        "DecryptEnvironment": ("Allow", ["kms:Decrypt"]),
    }
    assert actions == {
        "PowerTuningInitializer": {
            "ReadTargetConfiguration": ("Allow", ["lambda:GetFunctionConfiguration"]),
            "ResizeTargetsToPublish": ("Allow", ["lambda:PublishVersion", "lambda:UpdateFunctionConfiguration"]),
            "NeverChangeTargetLayers": ("Deny", ["lambda:UpdateFunctionConfiguration"]),
            "NeverChangeTargetNetwork": ("Deny", ["lambda:UpdateFunctionConfiguration"]),
            "CreateTuningAliases": ("Allow", ["lambda:CreateAlias", "lambda:UpdateAlias"]),
            **own,
        },
        "PowerTuningExecutor": {"InvokeTuningAliases": ("Allow", ["lambda:InvokeFunction"]), **own},
        "PowerTuningCleaner": {
            "RemoveTuningAliases": ("Allow", ["lambda:DeleteAlias", "lambda:GetAlias"]),
            "ListTargetAliases": ("Allow", ["lambda:ListAliases"]),
            "RemoveTuningVersions": ("Allow", ["lambda:DeleteFunction", "lambda:GetFunctionConfiguration"]),
            **own,
        },
        "PowerTuningAnalyzer": own,
        "PowerTuningWorkflow": {
            "InvokeTunerSteps": ("Allow", ["lambda:InvokeFunction"]),
            "UsePlatformKey": ("Allow", ["kms:Decrypt", "kms:GenerateDataKey"]),
            "DeliverWorkflowLogs": ("Allow", sorted(role_statements(dev_tuner, "PowerTuningWorkflowRole-dev")["DeliverWorkflowLogs"]["actions"])),
            "SendWorkflowTraces": ("Allow", ["xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments"]),
        },
    }


def test_no_tuner_statement_can_move_live_or_invoke_anything_but_its_own_aliases(dev_tuner):
    """Alias changes and invocations reach only <function>:RAM*: never `<function>:live`, never the function itself."""
    checked = 0
    for function in (f"{spec.base_name}-dev" for spec in PLATFORM_FUNCTIONS):
        unqualified = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}"
        for role, statement in target_statements(dev_tuner):
            if statement["effect"] != "Allow" or not ALIAS_AND_INVOKE_ACTIONS & set(statement["actions"]):
                continue
            for pattern in (target_arn(dev_tuner, r) for r in statement["resources"]):
                checked += 1
                for forbidden in (f"{unqualified}:live", unqualified, f"{unqualified}:$LATEST", f"{unqualified}:7"):
                    assert not fnmatch.fnmatchcase(forbidden, pattern), f"{role} {statement['sid']}: {pattern} matches {forbidden}"
        assert any(
            fnmatch.fnmatchcase(f"{unqualified}:RAM1024", target_arn(dev_tuner, r))
            for _, s in target_statements(dev_tuner) if "lambda:InvokeFunction" in s["actions"] for r in s["resources"]
        )
    assert checked >= 15


def test_the_cleaner_deletes_versions_only(dev_tuner):
    (statement,) = [s for _, s in target_statements(dev_tuner) if "lambda:DeleteFunction" in s["actions"]]
    patterns = [target_arn(dev_tuner, r) for r in statement["resources"]]
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:PatternDetector-dev"
    matches = lambda arn: any(fnmatch.fnmatchcase(arn, p) for p in patterns)  # noqa: E731
    assert matches(f"{function}:1") and matches(f"{function}:42") and matches(f"{function}:907")
    assert not any(matches(f"{function}{q}") for q in ("", ":live", ":RAM512", ":$LATEST"))


def test_resizing_latest_can_never_add_layers_or_a_vpc(dev_tuner):
    statements = role_statements(dev_tuner, "PowerTuningInitializerRole-dev")
    resize = statements["ResizeTargetsToPublish"]["resources"]
    assert statements["NeverChangeTargetLayers"]["resources"] == statements["NeverChangeTargetNetwork"]["resources"] == resize
    assert statements["NeverChangeTargetLayers"]["condition"] == [{"test": "Null", "variable": "lambda:Layer", "values": ["false"]}]
    assert statements["NeverChangeTargetNetwork"]["condition"] == [{"test": "Null", "variable": "lambda:VpcIds", "values": ["false"]}]
    assert {target_arn(dev_tuner, r) for r in resize} == {
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{spec.base_name}-dev" for spec in PLATFORM_FUNCTIONS
    }


# --- The workflow -----------------------------------------------------------------------------------

def definition(doc: dict) -> dict:
    return json.loads(find_resource(doc, "aws_sfn_state_machine", name="PowerTuningWorkflow-dev")["definition"])


def test_the_workflow_is_standard_encrypted_logged_and_traced(dev_tuner):
    machine = find_resource(dev_tuner, "aws_sfn_state_machine", name="PowerTuningWorkflow-dev")
    (key,) = dev_tuner["data"]["aws_kms_key"]
    assert machine["type"] == "STANDARD" and machine["tracing_configuration"] == {"enabled": True}
    assert machine["encryption_configuration"]["kms_key_id"] == f"${{data.aws_kms_key.{key}.arn}}"
    group = find_resource(dev_tuner, "aws_cloudwatch_log_group", name="/aws/vendedlogs/states/PowerTuningWorkflow-dev")
    assert group["retention_in_days"] == 14 and machine["logging_configuration"]["level"] == "ALL"
    assert dev_tuner["output"]["power_tuning_state_machine_arn"]["value"].startswith("${aws_sfn_state_machine.")


def test_every_step_is_one_of_the_tuner_s_aliases_and_the_analysis_is_the_end(dev_tuner):
    tasks = dict(task_states(definition(dev_tuner)))
    expected = {"Initializer": "PowerTuningInitializer-dev", "Executor": "PowerTuningExecutor-dev", "Cleaner": "PowerTuningCleaner-dev",
                "CleanUpOnError": "PowerTuningCleaner-dev", "Analyzer": "PowerTuningAnalyzer-dev"}
    assert {state: s["Resource"] for state, s in tasks.items()} == {state: alias_arn_of(dev_tuner, fn) for state, fn in expected.items()}
    states = definition(dev_tuner)["States"]
    assert states["Analyzer"]["Next"] == "TuningComplete" and states["TuningComplete"]["OutputPath"] == "$.analysis"
    assert reachable_states(definition(dev_tuner)) == set(states)
    workflow_role = role_statements(dev_tuner, "PowerTuningWorkflowRole-dev")
    assert workflow_role["InvokeTunerSteps"]["resources"] == [alias_arn_of(dev_tuner, f"{base}-dev") for base in TUNER_FUNCTIONS]


def test_power_tuning_fans_out_over_memory_values_and_cleans_up_on_error(dev_tuner):
    states = definition(dev_tuner)["States"]
    branching = states["ExecuteEachMemoryValue"]
    assert branching["Type"] == "Map" and branching["ItemsPath"] == "$.powerValues" and branching["MaxConcurrency"] == 0
    assert branching["ItemSelector"]["value.$"] == "$$.Map.Item.Value"
    for name in ("Initializer", "ExecuteEachMemoryValue"):
        assert states[name]["Catch"][0]["Next"] == "CleanUpOnError"
    assert states["CleanUpOnError"]["Next"] == "TuningFailed"
