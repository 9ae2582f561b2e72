"""Releases on the local platform, and Terraform after them: a re-plan after any release shows no changes.

- Function code: the release uploads a new package to the artifact bucket, updates the function from it,
  publishes a version and creates the canary deployment; Terraform, planning again (from the same synth, or
  from a new synth of the tree holding the released code), has nothing to do.
- The API: a changed definition, applied, leaves the stage serving its old snapshot; the release puts a
  snapshot of the new one on the stage's canary (10% of requests see it), then promotes it, or removes it
  when the API alarm fires; Terraform has nothing to do at any step.

The definition is changed by editing the synthesized Terraform (plain JSON: what a changed route in api.py
synthesizes to), and put back at the end of each test, released again where it was promoted.
"""
from __future__ import annotations

import json
import shutil
from collections import Counter
from contextlib import contextmanager

import pytest
from patternwatch_shared.names.routes import PATTERNS_BY_SYMBOL_RESOURCE_PATH, path_parameters

from patternwatch_infra.config import load_environment
from patternwatch_infra.packaging import LAMBDA_SRC, build_function
from patternwatch_infra.release_contract import FUNCTIONS_PREFIX, artifact_key
from tooling import local_platform
from tooling import release as rel

pytestmark = pytest.mark.integration

STACK_JSON = local_platform.STACK_DIR / "cdk.tf.json"
PROBE = "probe"
SYMBOL_PARAMETER = f"method.request.path.{path_parameters(PATTERNS_BY_SYMBOL_RESOURCE_PATH)[0]}"
# 10% of 150 requests go to the canary: none at all would happen once in 7 million runs.
CANARY_SAMPLE = 150


@contextmanager
def edited_stack(edit):
    """The synthesized stack with `edit` applied to its JSON, restored afterwards whatever happens."""
    original = STACK_JSON.read_text()
    document = json.loads(original)
    edit(document)
    STACK_JSON.write_text(json.dumps(document, indent=2))
    try:
        yield document
    finally:
        STACK_JSON.write_text(original)


def assert_plan_is_clean(when: str) -> None:
    clean, output = local_platform.plan_is_clean()
    assert clean, f"{when}, Terraform wants to change something:\n{output[-4000:]}"


@pytest.fixture(scope="module")
def aws(deployed, endpoint):
    return rel.aws_clients(load_environment("local").region, endpoint)


# --- function code ------------------------------------------------------------------------------------


def _changed_package(tmp_path, package_name: str):
    source = tmp_path / "src"
    shutil.copytree(LAMBDA_SRC / package_name, source / package_name, ignore=shutil.ignore_patterns("__pycache__"))
    handler = source / package_name / "handler.py"
    handler.write_text(handler.read_text() + "\n# released by tests/integration/test_release_rollouts.py\n")
    return build_function(package_name, source_root=source, out_dir=tmp_path / "build")


def _as_a_new_synth_would_write_it(document: dict, function_name: str, package, asset_dir) -> None:
    """What `make deploy` synthesizes from a tree holding `package`: its upload's key, source and source hash
    change, nothing else (tests/infra/test_code_signing.py proves that on two real synths)."""
    (upload,) = [u for u in document["resource"]["aws_s3_object"].values()
                 if u["key"].startswith(f"{FUNCTIONS_PREFIX}/{function_name.replace('-local', '-${local.name_suffix}')}/")]
    asset_dir.mkdir(parents=True)
    shutil.copy(package.path, asset_dir / package.path.name)
    upload["key"] = artifact_key(FUNCTIONS_PREFIX, function_name.replace("-local", "-${local.name_suffix}"), package.sha256_hex)
    upload["source"] = str((asset_dir / package.path.name).relative_to(local_platform.STACK_DIR))
    upload["source_hash"] = package.source_code_hash


def test_a_released_function_leaves_terraform_nothing_to_do(deployed, aws, tmp_path):
    package = _changed_package(tmp_path, "threshold_checker")
    target = rel.resolve_target("threshold_checker", env_name="local", suffix="local", overrides={}, load_outputs=lambda: deployed)
    assert target.signing_profile is None  # the emulator signs nothing: the same upload, unsigned

    outcome = rel.release(
        target, package, lambda_client=aws["lambda"], codedeploy_client=aws["codedeploy"], s3_client=aws["s3"],
        signer_client=aws["signer"], wait=False, say=print,
    )

    assert (outcome.exit_code, outcome.status) == (0, "Created")
    name = target.function_name
    assert aws["lambda"].get_function_configuration(FunctionName=name)["CodeSha256"] == package.source_code_hash
    published = aws["lambda"].get_function_configuration(FunctionName=name, Qualifier=outcome.target_version)
    assert published["CodeSha256"] == package.source_code_hash and published["Description"].startswith("tooling.release functions/")
    key = artifact_key(FUNCTIONS_PREFIX, name, package.sha256_hex)
    assert aws["s3"].get_object(Bucket=target.artifact_bucket, Key=key)["Body"].read() == package.path.read_bytes()
    assert aws["codedeploy"].get_deployment(deploymentId=outcome.deployment_id)["deploymentInfo"]["deploymentGroupName"] == name
    assert_plan_is_clean("after a function release")

    asset_dir = local_platform.STACK_DIR / "assets" / "release-rollouts-test"
    try:
        with edited_stack(lambda document: _as_a_new_synth_would_write_it(document, name, package, asset_dir)):
            assert_plan_is_clean("after a function release and a new synth of the released code")
    finally:
        shutil.rmtree(asset_dir, ignore_errors=True)


# --- the API --------------------------------------------------------------------------------------------


def _require_probe(document: dict) -> None:
    """GET /patterns/{symbol} gains a required query parameter: a definition change every request can see."""
    methods = document["resource"]["aws_api_gateway_method"]
    # GET /approve/{token} is a GET too: the stored-patterns route is the one with the symbol in its path.
    (method,) = [m for m in methods.values() if m["http_method"] == "GET" and SYMBOL_PARAMETER in m.get("request_parameters", {})]
    method["request_parameters"] = {**method["request_parameters"], f"method.request.querystring.{PROBE}": True}


def _api_target(outputs: dict) -> rel.ApiTarget:
    return rel.resolve_api_target(env_name="local", canary_percent=load_environment("local").canary_percent, load_outputs=lambda: outputs)


def _answers(runner, deployed, count: int, query: dict | None = None) -> Counter:
    """Status codes of GET /patterns/{symbol} without the probe parameter (or with `query`)."""
    return Counter(
        runner.request("GET", "/patterns/ITCANARY", api_key=deployed["api_key_value"], query=query)["statusCode"] for _ in range(count)
    )


def _release(aws, outputs: dict, **kwargs) -> rel.ReleaseOutcome:
    return rel.release_api(_api_target(outputs), apigateway_client=aws["apigateway"], cloudwatch_client=aws["cloudwatch"], say=print, **kwargs)


def _stage(aws, outputs: dict) -> dict:
    return aws["apigateway"].get_stage(restApiId=outputs["rest_api_id"], stageName=outputs["api_stage_name"])


def test_a_new_api_definition_goes_out_on_the_stage_canary_and_is_promoted(deployed, runner, aws):
    serving = _stage(aws, deployed)["deploymentId"]
    try:
        with edited_stack(_require_probe):
            changed = local_platform.apply()
            assert changed["api_definition_hash"] != deployed["api_definition_hash"]
            # Applied, the working definition changed; the stage still serves its snapshot, and Terraform is done.
            assert _stage(aws, changed)["deploymentId"] == serving
            assert _answers(runner, deployed, 10) == Counter({200: 10})
            assert_plan_is_clean("after applying a new API definition")

            opened = _release(aws, changed, wait=False)
            stage = _stage(aws, changed)
            assert stage["deploymentId"] == serving
            assert stage["canarySettings"]["deploymentId"] == opened.deployment_id != serving
            assert stage["canarySettings"]["percentTraffic"] == 10.0
            # Requests drawn by the canary meet the new definition (a missing `probe` is a 400 at the edge).
            answers = _answers(runner, deployed, CANARY_SAMPLE)
            assert set(answers) == {200, 400} and answers[400] < CANARY_SAMPLE / 3, answers
            assert_plan_is_clean("with the API canary open")

            promoted = _release(aws, changed, bake_seconds=1, poll_seconds=0.5)
            assert (promoted.status, promoted.deployment_id) == ("Promoted", opened.deployment_id)
            stage = _stage(aws, changed)
            assert stage["deploymentId"] == opened.deployment_id and "canarySettings" not in stage
            assert _answers(runner, deployed, 10) == Counter({400: 10})
            assert _answers(runner, deployed, 5, query={PROBE: "1"}) == Counter({200: 5})
            assert_plan_is_clean("after the API release promoted the canary")
    finally:
        _restore_the_api(aws, deployed)


def test_an_api_release_that_alarms_is_rolled_back(deployed, runner, aws):
    serving = _stage(aws, deployed)["deploymentId"]
    (alarm,) = deployed["api_release_alarm_names"]
    try:
        with edited_stack(_require_probe):
            changed = local_platform.apply()
            opened = _release(aws, changed, wait=False)
            aws["cloudwatch"].set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5XXError >= 5 (set by the test)")

            rolled_back = _release(aws, changed, bake_seconds=30, poll_seconds=0.5)

            assert (rolled_back.exit_code, rolled_back.status) == (rel.EXIT_FAILED, "RolledBack")
            assert f"{alarm} is in ALARM: 5XXError >= 5 (set by the test)" in rolled_back.message
            stage = _stage(aws, changed)
            assert stage["deploymentId"] == serving and "canarySettings" not in stage
            deployments = {d["id"] for d in aws["apigateway"].get_deployments(restApiId=changed["rest_api_id"])["items"]}
            assert opened.deployment_id not in deployments
            assert _answers(runner, deployed, 10) == Counter({200: 10})
            assert_plan_is_clean("after the API release rolled the canary back")
    finally:
        aws["cloudwatch"].set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test over")
        _restore_the_api(aws, deployed)


def _restore_the_api(aws, deployed: dict) -> None:
    """The synthesized definition applied again, and served again (a release, where the stage moved on)."""
    restored = local_platform.apply()
    assert restored["api_definition_hash"] == deployed["api_definition_hash"]
    assert _release(aws, restored, bake_seconds=0).status in ("Unchanged", "Promoted")
    assert_plan_is_clean("after the API was put back")
