"""The release command's function path (tooling/release.py) against botocore's Stubber.

Stubber validates every request and response against the real Lambda, S3, Signer and CodeDeploy API models,
so a wrong parameter name or shape fails here just as it would against AWS. Time is a fake clock: nothing
sleeps. The API path is in test_release_api.py.
"""
from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import pytest
from botocore.stub import ANY, Stubber

from patternwatch_infra.packaging import Package, build_function
from patternwatch_infra.release_contract import artifact_key
from release_stubs import FakeClock, stub_client
from tooling import release as rel
from tooling.stack_outputs import parse_outputs

FUNCTION = "PatternDetector-dev"
APP = "patternwatch-functions-dev"
BUCKET = "patternwatch-artifacts-111111111111-dev"
PROFILE = "PatternWatch_dev_20260101"
TARGET = rel.ReleaseTarget(function_name=FUNCTION, application=APP, deployment_group=FUNCTION, artifact_bucket=BUCKET)
SIGNED = rel.ReleaseTarget(function_name=FUNCTION, application=APP, deployment_group=FUNCTION, artifact_bucket=BUCKET, signing_profile=PROFILE)
OLD_SHA = "b2xkLWNvZGUtc2hhMjU2LW9mLXZlcnNpb24tMw=="
SIGNED_SHA = "c2lnbmVkLWNvZGUtc2hhMjU2LW9mLXRoZS1uZXctemlw"
DEPLOYMENT = "d-RELEASE01"
OLD_JOB_ARN = "arn:aws:signer:us-east-1:111111111111:/signing-jobs/old-job"


@pytest.fixture
def package(tmp_path) -> Package:
    source = tmp_path / "src" / "pattern_detector"
    source.mkdir(parents=True)
    (source / "handler.py").write_text("def lambda_handler(event, context):\n    return {'statusCode': 200}\n")
    return build_function("pattern_detector", source_root=tmp_path / "src", out_dir=tmp_path / "out")


def key_of(package: Package) -> str:
    return artifact_key("functions", FUNCTION, package.sha256_hex)


@pytest.fixture
def aws():
    """Stubbed Lambda, CodeDeploy, S3 and Signer clients; every queued response must be used."""
    clients = {service: stub_client(service) for service in ("lambda", "codedeploy", "s3", "signer")}
    stubbers = {service: Stubber(client) for service, client in clients.items()}
    for stubber in stubbers.values():
        stubber.activate()
    yield clients, stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def _expect_serving(lam: Stubber, version: str, sha: str, **signing) -> None:
    lam.add_response("get_alias", {"Name": "live", "FunctionVersion": version}, {"FunctionName": FUNCTION, "Name": "live"})
    lam.add_response(
        "get_function_configuration",
        {"FunctionName": FUNCTION, "Version": version, "CodeSha256": sha, **signing},
        {"FunctionName": FUNCTION, "Qualifier": version},
    )


def _expect_upload(s3: Stubber, package: Package, version_id: str = "v-upload") -> None:
    s3.add_response(
        "put_object", {"VersionId": version_id}, {"Bucket": BUCKET, "Key": key_of(package), "Body": package.path.read_bytes()}
    )


def _expect_update_and_publish(lam: Stubber, code_key: str, sha: str, published: str) -> None:
    lam.add_response(
        "update_function_code",
        {"FunctionName": FUNCTION, "CodeSha256": sha, "LastUpdateStatus": "InProgress"},
        {"FunctionName": FUNCTION, "S3Bucket": BUCKET, "S3Key": code_key},
    )
    lam.add_response("get_function_configuration", {"LastUpdateStatus": "InProgress"}, {"FunctionName": FUNCTION})
    lam.add_response("get_function_configuration", {"LastUpdateStatus": "Successful"}, {"FunctionName": FUNCTION})
    lam.add_response(
        "publish_version",
        {"FunctionName": FUNCTION, "Version": published, "CodeSha256": sha},
        {"FunctionName": FUNCTION, "CodeSha256": sha, "Description": ANY},
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


def _expect_new_code_uploaded(aws, package: Package) -> Stubber:
    """Live serves version 3 of other code, so the package goes to S3; returns the Lambda stubber, which is next."""
    _, stub = aws
    _expect_serving(stub["lambda"], "3", OLD_SHA)
    _expect_upload(stub["s3"], package)
    return stub["lambda"]


def _expect_handed_to_codedeploy(aws, package: Package) -> list[dict]:
    """The path of a release of new, unsigned code up to CodeDeploy: uploaded, published as version 4, a deployment
    created. Returns the create_deployment parameters, as _expect_deployment_created does."""
    clients, stub = aws
    lam = _expect_new_code_uploaded(aws, package)
    _expect_update_and_publish(lam, key_of(package), package.source_code_hash, published="4")
    return _expect_deployment_created(stub["codedeploy"], clients["codedeploy"])


def _expect_poll(aws, info: dict, alias: dict) -> None:
    _, stub = aws
    stub["codedeploy"].add_response("get_deployment", {"deploymentInfo": {"deploymentId": DEPLOYMENT, **info}}, {"deploymentId": DEPLOYMENT})
    stub["lambda"].add_response("get_alias", {"Name": "live", **alias}, {"FunctionName": FUNCTION, "Name": "live"})


def _run(package, aws, clock, target=TARGET, **kwargs) -> tuple[rel.ReleaseOutcome, list[str]]:
    clients, _ = aws
    lines: list[str] = []
    outcome = rel.release(
        target, package, lambda_client=clients["lambda"], codedeploy_client=clients["codedeploy"], s3_client=clients["s3"],
        signer_client=clients["signer"], clock=clock, sleep=clock.sleep, say=lines.append, **kwargs,
    )
    return outcome, lines


def test_successful_release_uploads_updates_publishes_and_shifts_live(package, aws):
    sent = _expect_handed_to_codedeploy(aws, package)
    _expect_poll(aws, {"status": "InProgress"}, {"FunctionVersion": "3", "RoutingConfig": {"AdditionalVersionWeights": {"4": 0.1}}})
    _expect_poll(aws, {"status": "Succeeded"}, {"FunctionVersion": "4"})

    outcome, lines = _run(package, aws, FakeClock(), poll_seconds=5)

    assert (outcome.exit_code, outcome.status) == (0, "Succeeded")
    assert (outcome.current_version, outcome.target_version, outcome.deployment_id) == ("3", "4", DEPLOYMENT)
    # The code goes to the content-addressed key Terraform's first upload uses too, unsigned where nothing signs.
    assert key_of(package) == f"functions/{FUNCTION}/{hashlib.sha256(package.path.read_bytes()).hexdigest()}.zip"
    assert any("unsigned" not in line and f"s3://{BUCKET}/{key_of(package)}" in line for line in lines)
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


def test_where_code_is_signed_the_release_signs_the_upload_and_deploys_the_signed_copy(package, aws):
    clients, stub = aws
    lam, signer = stub["lambda"], stub["signer"]
    _expect_serving(lam, "3", OLD_SHA, SigningJobArn=OLD_JOB_ARN)
    # The serving version was signed from another upload: this package is new.
    signer.add_response("describe_signing_job", {"jobId": "old-job", "source": {"s3": {"bucketName": BUCKET, "key": "functions/x/old.zip", "version": "1"}}}, {"jobId": "old-job"})
    _expect_upload(stub["s3"], package, version_id="v-7")
    signer.add_response(
        "start_signing_job",
        {"jobId": "job-7"},
        {
            "source": {"s3": {"bucketName": BUCKET, "key": key_of(package), "version": "v-7"}},
            "destination": {"s3": {"bucketName": BUCKET, "prefix": f"signed/functions/{FUNCTION}/"}},
            "profileName": PROFILE,
        },
    )
    signer.add_response("describe_signing_job", {"jobId": "job-7", "status": "InProgress"}, {"jobId": "job-7"})
    signed_key = f"signed/functions/{FUNCTION}/job-7.zip"
    signer.add_response(
        "describe_signing_job", {"jobId": "job-7", "status": "Succeeded", "signedObject": {"s3": {"bucketName": BUCKET, "key": signed_key}}}, {"jobId": "job-7"}
    )
    # Lambda deploys the signed copy; its CodeSha256 is the signed zip's, and that is what gets published.
    _expect_update_and_publish(lam, signed_key, SIGNED_SHA, published="4")
    _expect_deployment_created(stub["codedeploy"], clients["codedeploy"])
    clock = FakeClock()

    outcome, lines = _run(package, aws, clock, target=SIGNED, wait=False)

    assert (outcome.exit_code, outcome.status, outcome.target_version) == (0, "Created", "4")
    assert any(f"signing {key_of(package)} with {PROFILE}: job job-7" in line for line in lines)
    assert clock.sleeps == [rel.SIGNING_POLL_SECONDS, rel.CODE_UPDATE_POLL_SECONDS]


def test_signed_code_already_serving_this_package_is_not_uploaded_again(package, aws):
    _, stub = aws
    # The signed zip's hash says nothing about the package; the signing job's source key does.
    _expect_serving(stub["lambda"], "3", SIGNED_SHA, SigningJobArn=OLD_JOB_ARN)
    stub["signer"].add_response(
        "describe_signing_job", {"jobId": "old-job", "source": {"s3": {"bucketName": BUCKET, "key": key_of(package), "version": "1"}}}, {"jobId": "old-job"}
    )

    outcome, lines = _run(package, aws, FakeClock(), target=SIGNED)

    assert (outcome.exit_code, outcome.status, outcome.deployment_id) == (0, "Unchanged", None)
    assert "nothing to release" in lines[-1]


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"status": "Failed", "statusReason": "profile is canceled"}, "Signer could not sign .* Failed: profile is canceled; nothing was deployed"),
        ({"status": "InProgress"}, "signing job job-7 is still InProgress after 300 s; nothing was deployed"),
    ],
)
def test_a_signing_job_that_fails_or_hangs_stops_before_any_code_changes(package, aws, job, message):
    _, stub = aws
    _expect_new_code_uploaded(aws, package)
    stub["signer"].add_response("start_signing_job", {"jobId": "job-7"}, {"source": ANY, "destination": ANY, "profileName": PROFILE})
    polls = 1 if job["status"] == "Failed" else rel.SIGNING_TIMEOUT_SECONDS // rel.SIGNING_POLL_SECONDS + 1
    for _ in range(polls):
        stub["signer"].add_response("describe_signing_job", {"jobId": "job-7", **job}, {"jobId": "job-7"})

    with pytest.raises(rel.ReleaseError, match=message):
        _run(package, aws, FakeClock(), target=SIGNED)


def test_unchanged_code_is_not_uploaded_or_deployed(package, aws):
    _, stub = aws
    # The alias already serves exactly these bytes: any further AWS call would fail the Stubber.
    _expect_serving(stub["lambda"], "3", package.source_code_hash)

    outcome, lines = _run(package, aws, FakeClock())

    assert (outcome.exit_code, outcome.status, outcome.deployment_id) == (0, "Unchanged", None)
    assert "nothing to release" in lines[-1]


def test_a_publish_that_returns_the_serving_version_deploys_nothing(package, aws):
    lam = _expect_new_code_uploaded(aws, package)
    _expect_update_and_publish(lam, key_of(package), package.source_code_hash, published="3")

    outcome, _ = _run(package, aws, FakeClock())

    assert (outcome.exit_code, outcome.status, outcome.deployment_id) == (0, "Unchanged", None)


def test_a_publish_refused_because_the_code_changed_meanwhile_deploys_nothing(package, aws):
    lam = _expect_new_code_uploaded(aws, package)
    lam.add_response("update_function_code", {"CodeSha256": package.source_code_hash}, {"FunctionName": FUNCTION, "S3Bucket": BUCKET, "S3Key": key_of(package)})
    lam.add_response("get_function_configuration", {"LastUpdateStatus": "Successful"}, {"FunctionName": FUNCTION})
    lam.add_client_error("publish_version", "PreconditionFailedException", "CodeSha256 does not match", 412)

    with pytest.raises(rel.ReleaseError, match="Lambda refused to publish PatternDetector-dev .*CodeSha256 does not match.*nothing was deployed"):
        _run(package, aws, FakeClock())


def test_failed_deployment_exits_non_zero_and_reports_the_error_and_the_rollback(package, aws):
    _, stub = aws
    _expect_handed_to_codedeploy(aws, package)
    _expect_poll(
        aws,
        {
            "status": "Stopped",
            "errorInformation": {"code": "ALARM_ACTIVE", "message": "One or more alarms have been activated: PatternDetector-dev-CanaryErrorRate"},
            "rollbackInfo": {"rollbackDeploymentId": "d-ROLLBACK1", "rollbackMessage": "Automatic rollback triggered by alarm"},
        },
        {"FunctionVersion": "3", "RoutingConfig": {"AdditionalVersionWeights": {"4": 0.1}}},
    )
    stub["lambda"].add_response("get_alias", {"Name": "live", "FunctionVersion": "3"}, {"FunctionName": FUNCTION, "Name": "live"})

    outcome, lines = _run(package, aws, FakeClock())

    assert outcome.exit_code == rel.EXIT_FAILED != 0
    assert outcome.status == "Stopped"
    assert "ALARM_ACTIVE: One or more alarms have been activated: PatternDetector-dev-CanaryErrorRate" in outcome.message
    assert "CodeDeploy rolled back (rollback deployment d-ROLLBACK1): Automatic rollback triggered by alarm" in outcome.message
    assert "PatternDetector-dev:live now serves version 3" in outcome.message
    assert lines[-1] == outcome.message


def test_a_deployment_still_running_at_the_timeout_exits_non_zero_and_says_how_to_follow_it(package, aws):
    _expect_handed_to_codedeploy(aws, package)
    # Polled at 0, 10, 20 and 30 s of fake time; the 30 s poll reaches the timeout.
    for _ in range(4):
        _expect_poll(aws, {"status": "InProgress"}, {"FunctionVersion": "3", "RoutingConfig": {"AdditionalVersionWeights": {"4": 0.1}}})
    clock = FakeClock()

    outcome, _ = _run(package, aws, clock, timeout_seconds=30, poll_seconds=10)

    assert (outcome.exit_code, outcome.status) == (rel.EXIT_TIMED_OUT, "TimedOut")
    assert f"{DEPLOYMENT} is still InProgress after 30 s" in outcome.message
    assert f"aws deploy stop-deployment --deployment-id {DEPLOYMENT} --auto-rollback-enabled" in outcome.message


def test_no_wait_returns_once_the_deployment_exists(package, aws):
    _expect_handed_to_codedeploy(aws, package)

    outcome, _ = _run(package, aws, FakeClock(), wait=False)

    assert (outcome.exit_code, outcome.status, outcome.deployment_id) == (0, "Created", DEPLOYMENT)


def test_a_failed_code_update_stops_before_publishing(package, aws):
    lam = _expect_new_code_uploaded(aws, package)
    lam.add_response(
        "update_function_code", {"CodeSha256": package.source_code_hash, "LastUpdateStatus": "InProgress"},
        {"FunctionName": FUNCTION, "S3Bucket": BUCKET, "S3Key": key_of(package)},
    )
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
    "artifact_bucket_name": {"sensitive": False, "type": "string", "value": BUCKET},
    "signing_profile_name": {"sensitive": False, "type": "string", "value": PROFILE},
    "api_key_value": {"sensitive": True, "type": "string", "value": "secret"},
})


def test_names_come_from_the_outputs_of_the_workspace_asked_for():
    outputs = parse_outputs(OUTPUT_DOCUMENT, source="test")
    target = rel.resolve_target(
        "pattern_detector", env_name="dev", suffix="dev", overrides={}, load_outputs=lambda: outputs
    )
    assert target == rel.ReleaseTarget("PatternDetector-dev", "patternwatch-functions-dev", "PatternDetector-dev", BUCKET, PROFILE, "live")
    # An environment that does not sign (the emulator) has no profile output: its code goes out unsigned.
    unsigned = {k: v for k, v in outputs.items() if k != "signing_profile_name"}
    assert rel.resolve_target("pattern_detector", env_name="dev", suffix="dev", overrides={}, load_outputs=lambda: unsigned).signing_profile is None


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
        overrides={"function_name": "Fn-x", "application": "app-x", "deployment_group": "group-x", "artifact_bucket": "bucket-x"},
        load_outputs=no_terraform,
    )
    assert explicit == rel.ReleaseTarget("Fn-x", "app-x", "group-x", "bucket-x")
    signed = rel.resolve_target(
        "pattern_detector", env_name="dev", suffix="dev",
        overrides={"function_name": "Fn-x", "application": "app-x", "deployment_group": "group-x", "artifact_bucket": "bucket-x",
                   "signing_profile": "Profile_x"},
        load_outputs=no_terraform,
    )
    assert signed.signing_profile == "Profile_x"


def test_a_missing_output_names_the_output_and_the_flag():
    with pytest.raises(rel.ReleaseError, match=r"'alert_processor_function_name' is missing for dev.*--function-name"):
        rel.resolve_target(
            "alert_processor", env_name="dev", suffix="dev", overrides={},
            load_outputs=lambda: parse_outputs(OUTPUT_DOCUMENT, source="test"),
        )
    no_bucket = {k: v for k, v in parse_outputs(OUTPUT_DOCUMENT, source="test").items() if k != "artifact_bucket_name"}
    with pytest.raises(rel.ReleaseError, match=r"'artifact_bucket_name' is missing for dev.*--artifact-bucket"):
        rel.resolve_target("pattern_detector", env_name="dev", suffix="dev", overrides={}, load_outputs=lambda: no_bucket)


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
    clients = {service: stub_client(service) for service in rel.SERVICES}
    monkeypatch.setattr(rel, "build_function", lambda name: package)
    monkeypatch.setattr(rel, "aws_clients", lambda region, endpoint: clients)
    monkeypatch.setattr(rel, "read_stack_outputs", lambda env, **_: parse_outputs(OUTPUT_DOCUMENT, source="test"))
    # Everything but Lambda and STS is stubbed with nothing queued: these tests must stop before any change.
    stubbers = {service: Stubber(client) for service, client in clients.items()}
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers["lambda"], stubbers["sts"]
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


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
    releasable = "releasable: kinesis_consumer, pattern_detector, alert_processor, threshold_checker, approval_processor, approval_expiry, or 'api'"
    assert rel.main(["no_such_function", "--env", "dev"]) == rel.EXIT_USAGE
    assert f"'no_such_function' is not a releasable function package ({releasable} for the API's definition)" in capsys.readouterr().err
    # The power tuner's package is a folder of lambda_src/ too, but its functions have no canary to release through.
    assert rel.main(["power_tuning", "--env", "local"]) == rel.EXIT_USAGE
    err = capsys.readouterr().err
    assert "'power_tuning' is the power tuner's code" in err and "ships with `make deploy-tuner`" in err and releasable in err


def test_every_releasable_function_has_the_stack_outputs_a_release_reads(dev, local):
    """What the release offers is exactly what the compute layer declares outputs for."""
    for package in rel.RELEASABLE_PACKAGES:
        for output in rel.output_names(package).values():
            assert output in dev["output"], output
            # The emulator signs nothing, so its stack names no signing profile; everything else is there.
            assert (output in local["output"]) is (output != "signing_profile_name"), output
    for output in rel.API_OUTPUTS.values():
        assert output in dev["output"] and output in local["output"], output
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
    clients = rel.aws_clients("eu-west-1", None)
    assert set(clients) == set(rel.SERVICES)
    assert {c.meta.region_name for c in clients.values()} == {"eu-west-1"}
    assert clients["lambda"].meta.endpoint_url == "https://lambda.eu-west-1.amazonaws.com"

    local = rel.aws_clients("us-east-1", "http://127.0.0.1:5055")
    assert {c.meta.endpoint_url for c in local.values()} == {"http://127.0.0.1:5055"}

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    for emulator in (None, "http://127.0.0.1:5055"):
        assert {c.meta.endpoint_url for c in rel.aws_clients("us-east-1", emulator).values()} == {"http://localhost:4566"}


def test_the_alias_name_matches_the_infrastructure():
    source = (Path(rel.PROJECT_ROOT) / "patternwatch_infra" / "function.py").read_text()
    constants = {
        node.targets[0].id: node.value.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Constant)
    }
    assert constants["LIVE_ALIAS"] == rel.LIVE_ALIAS
