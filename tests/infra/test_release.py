"""The release command (tooling/release.py) against botocore's Stubber.

Stubber validates every request and response against the real Lambda and CodeDeploy API models, so a
wrong parameter name or shape fails here just as it would against AWS. Time is a fake clock: nothing
sleeps.
"""
from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import botocore.session
import pytest
from botocore.stub import ANY, Stubber

from tooling import release as rel
from tooling.stack_outputs import parse_outputs
from patternwatch_infra.packaging import Package, build_function

FUNCTION = "PatternDetector-dev"
APP = "patternwatch-functions-dev"
TARGET = rel.ReleaseTarget(function_name=FUNCTION, application=APP, deployment_group=FUNCTION)
OLD_SHA = "b2xkLWNvZGUtc2hhMjU2LW9mLXZlcnNpb24tMw=="
DEPLOYMENT = "d-RELEASE01"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def package(tmp_path) -> Package:
    source = tmp_path / "src" / "pattern_detector"
    source.mkdir(parents=True)
    (source / "handler.py").write_text("def lambda_handler(event, context):\n    return {'statusCode': 200}\n")
    return build_function("pattern_detector", source_root=tmp_path / "src", out_dir=tmp_path / "out")


# One session for the module: it caches the API models, which are slow to load.
SESSION = botocore.session.get_session()


def _client(service: str):
    return SESSION.create_client(
        service, region_name="us-east-1", aws_access_key_id="stub", aws_secret_access_key="stub"
    )


@pytest.fixture
def aws():
    """Stubbed Lambda and CodeDeploy clients; every queued response must be used."""
    lambda_client, codedeploy_client = _client("lambda"), _client("codedeploy")
    with Stubber(lambda_client) as lam, Stubber(codedeploy_client) as deploy:
        yield lambda_client, codedeploy_client, lam, deploy
        lam.assert_no_pending_responses()
        deploy.assert_no_pending_responses()


def _expect_serving(lam: Stubber, version: str, sha: str) -> None:
    lam.add_response("get_alias", {"Name": "live", "FunctionVersion": version}, {"FunctionName": FUNCTION, "Name": "live"})
    lam.add_response(
        "get_function_configuration",
        {"FunctionName": FUNCTION, "Version": version, "CodeSha256": sha},
        {"FunctionName": FUNCTION, "Qualifier": version},
    )


def _expect_upload_and_publish(lam: Stubber, package: Package, published: str) -> None:
    lam.add_response(
        "update_function_code",
        {"FunctionName": FUNCTION, "CodeSha256": package.source_code_hash, "LastUpdateStatus": "InProgress"},
        {"FunctionName": FUNCTION, "ZipFile": package.path.read_bytes()},
    )
    lam.add_response("get_function_configuration", {"LastUpdateStatus": "InProgress"}, {"FunctionName": FUNCTION})
    lam.add_response("get_function_configuration", {"LastUpdateStatus": "Successful"}, {"FunctionName": FUNCTION})
    lam.add_response(
        "publish_version",
        {"FunctionName": FUNCTION, "Version": published, "CodeSha256": package.source_code_hash},
        {"FunctionName": FUNCTION, "CodeSha256": package.source_code_hash, "Description": ANY},
    )


def _expect_deployment_created(deploy: Stubber, codedeploy_client) -> list[dict]:
    """Queue create_deployment and capture its parameters (the AppSpec is asserted by the test)."""
    sent: list[dict] = []
    codedeploy_client.meta.events.register(
        "before-parameter-build.codedeploy.CreateDeployment", lambda params, **_: sent.append(params)
    )
    deploy.add_response(
        "create_deployment",
        {"deploymentId": DEPLOYMENT},
        {"applicationName": APP, "deploymentGroupName": FUNCTION, "description": ANY, "revision": ANY},
    )
    return sent


def _expect_poll(lam: Stubber, deploy: Stubber, info: dict, alias: dict) -> None:
    deploy.add_response("get_deployment", {"deploymentInfo": {"deploymentId": DEPLOYMENT, **info}}, {"deploymentId": DEPLOYMENT})
    lam.add_response("get_alias", {"Name": "live", **alias}, {"FunctionName": FUNCTION, "Name": "live"})


def _run(package, aws, clock, **kwargs) -> tuple[rel.ReleaseOutcome, list[str]]:
    lambda_client, codedeploy_client, _, _ = aws
    lines: list[str] = []
    outcome = rel.release(
        TARGET, package, lambda_client=lambda_client, codedeploy_client=codedeploy_client,
        clock=clock, sleep=clock.sleep, say=lines.append, **kwargs,
    )
    return outcome, lines


def test_successful_release_shifts_live_from_the_serving_version_to_the_new_one(package, aws):
    _, codedeploy_client, lam, deploy = aws
    _expect_serving(lam, "3", OLD_SHA)
    _expect_upload_and_publish(lam, package, published="4")
    sent = _expect_deployment_created(deploy, codedeploy_client)
    _expect_poll(lam, deploy, {"status": "InProgress"}, {"FunctionVersion": "3", "RoutingConfig": {"AdditionalVersionWeights": {"4": 0.1}}})
    _expect_poll(lam, deploy, {"status": "Succeeded"}, {"FunctionVersion": "4"})

    outcome, lines = _run(package, aws, FakeClock(), poll_seconds=5)

    assert (outcome.exit_code, outcome.status) == (0, "Succeeded")
    assert (outcome.current_version, outcome.target_version, outcome.deployment_id) == ("3", "4", DEPLOYMENT)
    revision = sent[0]["revision"]
    assert revision["revisionType"] == "AppSpecContent"
    content = revision["appSpecContent"]["content"]
    assert revision["appSpecContent"]["sha256"] == hashlib.sha256(content.encode()).hexdigest()
    assert json.loads(content) == {
        "version": 0.0,
        "Resources": [
            {
                FUNCTION: {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {"Name": FUNCTION, "Alias": "live", "CurrentVersion": "3", "TargetVersion": "4"},
                }
            }
        ],
    }
    assert any("InProgress: 10% on version 4" in line for line in lines)
    assert any("Succeeded: 100% on version 4" in line for line in lines)
    assert "serves version 4 (was 3)" in outcome.message


def test_unchanged_code_is_not_uploaded_or_deployed(package, aws):
    _, _, lam, _ = aws
    # The alias already serves exactly these bytes: any further AWS call would fail the Stubber.
    _expect_serving(lam, "3", package.source_code_hash)

    outcome, lines = _run(package, aws, FakeClock())

    assert (outcome.exit_code, outcome.status, outcome.deployment_id) == (0, "Unchanged", None)
    assert "nothing to release" in lines[-1]


def test_a_publish_that_returns_the_serving_version_deploys_nothing(package, aws):
    _, _, lam, _ = aws
    _expect_serving(lam, "3", OLD_SHA)
    _expect_upload_and_publish(lam, package, published="3")

    outcome, _ = _run(package, aws, FakeClock())

    assert (outcome.exit_code, outcome.status, outcome.deployment_id) == (0, "Unchanged", None)


def test_failed_deployment_exits_non_zero_and_reports_the_error_and_the_rollback(package, aws):
    _, codedeploy_client, lam, deploy = aws
    _expect_serving(lam, "3", OLD_SHA)
    _expect_upload_and_publish(lam, package, published="4")
    _expect_deployment_created(deploy, codedeploy_client)
    _expect_poll(
        lam, deploy,
        {
            "status": "Stopped",
            "errorInformation": {"code": "ALARM_ACTIVE", "message": "One or more alarms have been activated: PatternDetector-dev-CanaryErrorRate"},
            "rollbackInfo": {"rollbackDeploymentId": "d-ROLLBACK1", "rollbackMessage": "Automatic rollback triggered by alarm"},
        },
        {"FunctionVersion": "3", "RoutingConfig": {"AdditionalVersionWeights": {"4": 0.1}}},
    )
    lam.add_response("get_alias", {"Name": "live", "FunctionVersion": "3"}, {"FunctionName": FUNCTION, "Name": "live"})

    outcome, lines = _run(package, aws, FakeClock())

    assert outcome.exit_code == rel.EXIT_FAILED != 0
    assert outcome.status == "Stopped"
    assert "ALARM_ACTIVE: One or more alarms have been activated: PatternDetector-dev-CanaryErrorRate" in outcome.message
    assert "CodeDeploy rolled back (rollback deployment d-ROLLBACK1): Automatic rollback triggered by alarm" in outcome.message
    assert "PatternDetector-dev:live now serves version 3" in outcome.message
    assert lines[-1] == outcome.message


def test_a_deployment_still_running_at_the_timeout_exits_non_zero_and_says_how_to_follow_it(package, aws):
    _, codedeploy_client, lam, deploy = aws
    _expect_serving(lam, "3", OLD_SHA)
    _expect_upload_and_publish(lam, package, published="4")
    _expect_deployment_created(deploy, codedeploy_client)
    # Polled at 0, 10, 20 and 30 s of fake time; the 30 s poll reaches the timeout.
    for _ in range(4):
        _expect_poll(lam, deploy, {"status": "InProgress"}, {"FunctionVersion": "3", "RoutingConfig": {"AdditionalVersionWeights": {"4": 0.1}}})
    clock = FakeClock()

    outcome, _ = _run(package, aws, clock, timeout_seconds=30, poll_seconds=10)

    assert (outcome.exit_code, outcome.status) == (rel.EXIT_TIMED_OUT, "TimedOut")
    assert f"{DEPLOYMENT} is still InProgress after 30 s" in outcome.message
    assert f"aws deploy stop-deployment --deployment-id {DEPLOYMENT} --auto-rollback-enabled" in outcome.message


def test_no_wait_returns_once_the_deployment_exists(package, aws):
    _, codedeploy_client, lam, deploy = aws
    _expect_serving(lam, "3", OLD_SHA)
    _expect_upload_and_publish(lam, package, published="4")
    _expect_deployment_created(deploy, codedeploy_client)

    outcome, _ = _run(package, aws, FakeClock(), wait=False)

    assert (outcome.exit_code, outcome.status, outcome.deployment_id) == (0, "Created", DEPLOYMENT)


def test_a_failed_code_update_stops_before_publishing(package, aws):
    _, _, lam, _ = aws
    _expect_serving(lam, "3", OLD_SHA)
    lam.add_response("update_function_code", {"LastUpdateStatus": "InProgress"}, {"FunctionName": FUNCTION, "ZipFile": ANY})
    lam.add_response(
        "get_function_configuration",
        {"LastUpdateStatus": "Failed", "LastUpdateStatusReasonCode": "InvalidZipFileException", "LastUpdateStatusReason": "bad zip"},
        {"FunctionName": FUNCTION},
    )

    with pytest.raises(rel.ReleaseError, match="InvalidZipFileException: bad zip"):
        _run(package, aws, FakeClock())


# ---------------------------------------------------------------------------------------------------
# Names from `terraform output -json`
# ---------------------------------------------------------------------------------------------------

OUTPUT_DOCUMENT = json.dumps({
    "pattern_detector_function_name": {"sensitive": False, "type": "string", "value": "PatternDetector-dev"},
    "pattern_detector_deployment_group": {"sensitive": False, "type": "string", "value": "PatternDetector-dev"},
    "pattern_detector_alias_arn": {"sensitive": False, "type": "string", "value": "arn:aws:lambda:us-east-1:111111111111:function:PatternDetector-dev:live"},
    "deployment_app_name": {"sensitive": False, "type": "string", "value": "patternwatch-functions-dev"},
    "api_key_value": {"sensitive": True, "type": "string", "value": "secret"},
})


def test_names_come_from_the_outputs_of_the_workspace_asked_for():
    outputs = parse_outputs(OUTPUT_DOCUMENT, source="test")
    target = rel.resolve_target(
        "pattern_detector", env_name="dev", suffix="dev", overrides={}, load_outputs=lambda: outputs
    )
    assert target == rel.ReleaseTarget("PatternDetector-dev", "patternwatch-functions-dev", "PatternDetector-dev", "live")


def test_flags_win_over_outputs_and_terraform_is_not_run_when_all_are_given():
    outputs = parse_outputs(OUTPUT_DOCUMENT, source="test")
    partly = rel.resolve_target(
        "pattern_detector", env_name="dev", suffix="dev",
        overrides={"application": "other-app"}, load_outputs=lambda: outputs,
    )
    assert (partly.function_name, partly.application) == ("PatternDetector-dev", "other-app")

    def no_terraform():
        raise AssertionError("terraform must not run when every name is given")

    explicit = rel.resolve_target(
        "pattern_detector", env_name="dev", suffix="dev",
        overrides={"function_name": "Fn-x", "application": "app-x", "deployment_group": "group-x"}, load_outputs=no_terraform,
    )
    assert explicit == rel.ReleaseTarget("Fn-x", "app-x", "group-x")


def test_a_missing_output_names_the_output_and_the_flag():
    with pytest.raises(rel.ReleaseError, match=r"'alert_processor_function_name' is missing for dev.*--function-name"):
        rel.resolve_target(
            "alert_processor", env_name="dev", suffix="dev", overrides={},
            load_outputs=lambda: parse_outputs(OUTPUT_DOCUMENT, source="test"),
        )


def test_outputs_of_another_copy_of_the_environment_are_refused():
    with pytest.raises(rel.ReleaseError, match=r"does not end in -dev-pr123: check the workspace"):
        rel.resolve_target(
            "pattern_detector", env_name="dev", suffix="dev-pr123", overrides={},
            load_outputs=lambda: parse_outputs(OUTPUT_DOCUMENT, source="test"),
        )


# ---------------------------------------------------------------------------------------------------
# Command line and clients
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def command_line(package, monkeypatch):
    """main() with the real argument parsing and env config, but stubbed clients and no Terraform."""
    monkeypatch.delenv("TF_WORKSPACE", raising=False)
    for var in rel.ENDPOINT_VARS:
        monkeypatch.delenv(var, raising=False)
    clients = _client("lambda"), _client("codedeploy"), _client("sts")
    monkeypatch.setattr(rel, "build_function", lambda name: package)
    monkeypatch.setattr(rel, "aws_clients", lambda region, endpoint: clients)
    monkeypatch.setattr(rel, "read_stack_outputs", lambda env, **_: parse_outputs(OUTPUT_DOCUMENT, source="test"))
    # CodeDeploy is stubbed with nothing queued: these tests must stop before any deployment.
    with Stubber(clients[0]) as lam, Stubber(clients[1]), Stubber(clients[2]) as sts:
        yield lam, sts
        lam.assert_no_pending_responses()
        sts.assert_no_pending_responses()


def test_the_command_line_reports_an_aws_error_clearly(command_line, capsys):
    lam, sts = command_line
    sts.add_response("get_caller_identity", {"Account": "111111111111"}, {})
    lam.add_client_error("get_alias", "ResourceNotFoundException", "Function not found: PatternDetector-dev", 404)

    assert rel.main(["pattern_detector", "--env", "dev"]) == rel.EXIT_FAILED
    assert "GetAlias failed: ResourceNotFoundException: Function not found: PatternDetector-dev" in capsys.readouterr().err


def test_credentials_for_another_account_are_refused_before_anything_changes(command_line, capsys):
    _, sts = command_line
    sts.add_response("get_caller_identity", {"Account": "999999999999"}, {})

    assert rel.main(["pattern_detector", "--env", "dev"]) == rel.EXIT_FAILED
    assert "credentials are for account 999999999999, but envs/dev.json allows only 111111111111" in capsys.readouterr().err


def test_the_command_line_offers_only_the_functions_that_can_be_released(capsys):
    releasable = "releasable: kinesis_consumer, pattern_detector, alert_processor, threshold_checker, approval_processor, approval_expiry"
    assert rel.main(["no_such_function", "--env", "dev"]) == rel.EXIT_USAGE
    assert f"'no_such_function' is not a releasable function package ({releasable})" in capsys.readouterr().err
    # The power tuner's package is a folder of lambda_src/ too, but its functions have no canary to release through.
    assert rel.main(["power_tuning", "--env", "local"]) == rel.EXIT_USAGE
    err = capsys.readouterr().err
    assert "'power_tuning' is the power tuner's code" in err and "ships with `make deploy`" in err and releasable in err


def test_every_releasable_function_has_the_stack_outputs_a_release_reads(dev):
    """What the release offers is exactly what the compute layer declares outputs for."""
    for package in rel.RELEASABLE_PACKAGES:
        for output in rel.output_names(package).values():
            assert output in dev["output"], output
    declared = {name.removesuffix("_function_name") for name in dev["output"] if name.endswith("_function_name")}
    assert declared == set(rel.RELEASABLE_PACKAGES)


def test_a_badly_named_workspace_is_refused_before_terraform_runs(capsys, monkeypatch):
    monkeypatch.setattr(rel, "read_stack_outputs", lambda *a, **k: pytest.fail("terraform must not run"))
    assert rel.main(["pattern_detector", "--env", "dev", "--workspace", "PR_1"]) == rel.EXIT_USAGE
    assert "the Terraform workspace name 'PR_1' is not allowed" in capsys.readouterr().err


def test_the_workspace_comes_from_tf_workspace_unless_given(monkeypatch):
    monkeypatch.setenv("TF_WORKSPACE", "pr123")
    assert rel.parse_args(["pattern_detector", "--env", "dev"]).workspace == "pr123"
    assert rel.parse_args(["pattern_detector", "--env", "dev", "--workspace", "pr7"]).workspace == "pr7"
    monkeypatch.delenv("TF_WORKSPACE")
    assert rel.parse_args(["pattern_detector", "--env", "dev"]).workspace == "default"


def test_clients_use_the_environment_region_and_never_override_aws_endpoint_url(monkeypatch):
    for var in rel.ENDPOINT_VARS:
        monkeypatch.delenv(var, raising=False)
    lambda_client, codedeploy_client, _ = rel.aws_clients("eu-west-1", None)
    assert lambda_client.meta.region_name == codedeploy_client.meta.region_name == "eu-west-1"
    assert lambda_client.meta.endpoint_url == "https://lambda.eu-west-1.amazonaws.com"

    local_lambda, _, _ = rel.aws_clients("us-east-1", "http://127.0.0.1:5055")
    assert local_lambda.meta.endpoint_url == "http://127.0.0.1:5055"

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    for emulator in (None, "http://127.0.0.1:5055"):
        lambda_client, codedeploy_client, _ = rel.aws_clients("us-east-1", emulator)
        assert lambda_client.meta.endpoint_url == codedeploy_client.meta.endpoint_url == "http://localhost:4566"


def test_the_alias_name_matches_the_infrastructure():
    source = (Path(rel.PROJECT_ROOT) / "patternwatch_infra" / "function.py").read_text()
    constants = {
        node.targets[0].id: node.value.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Constant)
    }
    assert constants["LIVE_ALIAS"] == rel.LIVE_ALIAS
