"""Roll out a release: new Lambda code through the function's CodeDeploy canary, or the API's definition
through the stage's canary.

Usage: python -m tooling.release --env dev [--workspace pr123] pattern_detector [--timeout 900] [--no-wait]
       python -m tooling.release --env dev [--workspace pr123] api [--bake-seconds 300] [--no-wait]
       (or: make release ENV=dev [WORKSPACE=pr123] FUNCTION=pattern_detector / make release ENV=dev API=1)

Function code, for the six platform functions (PLATFORM_FUNCTIONS; the power tuner's functions, package
power_tuning, are tooling in a stack of their own and ship with `make deploy-tuner`: they have no canary to
roll out through):
1. build the function's deterministic zip and upload it to the artifact bucket as
   functions/<function>/<sha256>.zip (release_contract.artifact_key: the key Terraform's first upload used);
2. where the environment signs code (its outputs name a Signer profile), start a signing job on that
   object version and wait for the signed copy;
3. update the function's code from that object, wait for Lambda to apply it, publish a version;
4. let CodeDeploy shift the alias `live` from the version it serves to the new one (10% for 5 minutes, then
   all) and wait for the result. CodeDeploy, not this script, rolls back when the canary alarms fire.

The API (`api`), after `make deploy` changed its definition:
1. if the stage already serves the definition Terraform applied (output api_definition_hash), stop;
2. snapshot the working definition as a new deployment on the stage's canary (envs/<env>.json canary_percent);
3. watch the API alarms (output api_release_alarm_names) for the bake time, then promote the canary (the
   stage serves its deployment, the canary is removed), or remove the canary and delete its deployment as
   soon as an alarm fires. A canary left open (--no-wait, an interrupted run) is watched again by the next run.

Terraform ignores what a release changes (the functions' code, the stage's deployment and canary), so a
plan after a release shows no changes; the README's "Releasing" says who owns what.

Names come from the environment's Terraform outputs in the chosen workspace (`terraform output -json` in
cdktf.out/stacks/patternwatch-<env> with TF_WORKSPACE=<workspace>; default: $TF_WORKSPACE, else
`default`); for functions --function-name, --app, --deployment-group, --artifact-bucket and
--signing-profile override them, and when the first four are given Terraform is not run at all (code is
then signed only with --signing-profile). Like Terraform (allowed_account_ids), the release refuses
credentials for any account other than the env file's `account_id`. The region is the env file's; boto3's
own AWS_ENDPOINT_URL(_<SERVICE>) is honoured, and `local` defaults to its emulator.

Exit codes: 0 released or promoted (or nothing to release, or --no-wait); 1 the deployment failed or was
stopped, the API canary was rolled back, or an AWS call failed; 2 bad usage or names that cannot be
resolved; 3 still running when --timeout expired (functions).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from patternwatch_infra.config import ConfigError, load_environment
from patternwatch_infra.packaging import PROJECT_ROOT, Package, build_function
from patternwatch_infra.release_contract import (
    FUNCTIONS_PREFIX, artifact_key, deployment_description, signed_prefix, snapshotted_definition,
)
from patternwatch_infra.workspaces import name_suffix
from patternwatch_shared.names.functions import PLATFORM_FUNCTIONS, POWER_TUNING_PACKAGE
from tooling.stack_outputs import StackOutputsError, check_workspace, read_stack_outputs, selected_workspace

# The functions with a canary (a deployment group and the stack outputs naming it), by package.
RELEASABLE_PACKAGES = tuple(spec.package for spec in PLATFORM_FUNCTIONS)
# What to name on the command line to release the API's definition instead of a function's code.
API = "api"
# Must equal patternwatch_infra.function.LIVE_ALIAS. Importing it would start jsii (cdktf) for a CLI that
# only talks to AWS, so a test reads that module's source and checks the two agree.
LIVE_ALIAS = "live"
DEFAULT_TIMEOUT_SECONDS = 15 * 60
DEFAULT_POLL_SECONDS = 10
# The API canary bakes as long as a function canary does (CodeDeployDefault.LambdaCanary10Percent5Minutes).
DEFAULT_BAKE_SECONDS = 5 * 60
# A code update or a signing job normally settles in seconds; a stuck one is an AWS problem, not a slow canary.
CODE_UPDATE_TIMEOUT_SECONDS = 5 * 60
CODE_UPDATE_POLL_SECONDS = 2
SIGNING_TIMEOUT_SECONDS = 5 * 60
SIGNING_POLL_SECONDS = 2

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMED_OUT = 3

SUCCEEDED = "Succeeded"
FINISHED_BADLY = ("Failed", "Stopped")
ALARM = "ALARM"

# Environment variables through which boto3 itself picks an endpoint; when one is set it must win.
SERVICES = ("lambda", "codedeploy", "s3", "signer", "apigateway", "cloudwatch", "sts")
ENDPOINT_VARS = ("AWS_ENDPOINT_URL", *(f"AWS_ENDPOINT_URL_{service.upper()}" for service in SERVICES))


class ReleaseError(RuntimeError):
    """The release cannot start or cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class ReleaseTarget:
    """One function's release: where its code goes, who signs it, and the canary that rolls it out."""

    function_name: str
    application: str
    deployment_group: str
    artifact_bucket: str
    signing_profile: str | None = None
    alias: str = LIVE_ALIAS


@dataclass(frozen=True)
class ApiTarget:
    """The API's release: the stage, the definition Terraform applied, the alarms to watch, the canary's share."""

    rest_api_id: str
    stage: str
    definition_hash: str
    alarm_names: tuple[str, ...]
    canary_percent: float


@dataclass(frozen=True)
class ReleaseOutcome:
    exit_code: int
    # "Unchanged", "Created" (--no-wait), "TimedOut", CodeDeploy's final status, "Promoted" or "RolledBack" (API)
    status: str
    message: str
    current_version: str | None = None
    target_version: str | None = None
    deployment_id: str | None = None


# ---------------------------------------------------------------------------------------------------
# Names: Terraform outputs, overridden by flags
# ---------------------------------------------------------------------------------------------------

# The stack outputs a function release reads, by ReleaseTarget field; the optional ones may be absent.
OPTIONAL_FIELDS = ("signing_profile",)


def output_names(package: str) -> dict[str, str]:
    """The stack outputs compute.py declares for a function package, by ReleaseTarget field."""
    return {
        "function_name": f"{package}_function_name",
        "application": "deployment_app_name",
        "deployment_group": f"{package}_deployment_group",
        "artifact_bucket": "artifact_bucket_name",
        # Only environments that sign code have a profile (not the emulator: patternwatch_infra/emulator.py).
        "signing_profile": "signing_profile_name",
    }


API_OUTPUTS = {
    "rest_api_id": "rest_api_id",
    "stage": "api_stage_name",
    "definition_hash": "api_definition_hash",
    "alarm_names": "api_release_alarm_names",
}


def check_releasable(package: str) -> None:
    if package == API:
        return
    if package == POWER_TUNING_PACKAGE:
        raise ReleaseError(
            f"{package!r} is the power tuner's code (PowerTuning*-<suffix>, stack patternwatch-<env>-power-tuner): it ships with "
            f"`make deploy-tuner`, not through a "
            f"canary release (releasable: {', '.join(RELEASABLE_PACKAGES)}, or {API!r} for the API's definition)"
        )
    if package not in RELEASABLE_PACKAGES:
        raise ReleaseError(
            f"{package!r} is not a releasable function package (releasable: {', '.join(RELEASABLE_PACKAGES)}, "
            f"or {API!r} for the API's definition)"
        )


def _missing_output(env_name: str, output: str, flag: str | None) -> ReleaseError:
    return ReleaseError(
        f"stack output {output!r} is missing for {env_name}: has patternwatch-{env_name} been deployed "
        f"(`make deploy ENV={env_name}`)?" + (f" Or pass --{flag}" if flag else "")
    )


def resolve_target(
    package: str,
    *,
    env_name: str,
    suffix: str,
    overrides: Mapping[str, str | None],
    load_outputs: Callable[[], Mapping[str, Any]],
) -> ReleaseTarget:
    """Flags win; Terraform outputs fill in the rest (and are read only when a required name is missing)."""
    wanted = output_names(package)
    values = {field: overrides.get(field) for field in wanted}
    missing = [field for field, value in values.items() if not value and field not in OPTIONAL_FIELDS]
    if missing:
        outputs = load_outputs()
        for field in [*missing, *(f for f in OPTIONAL_FIELDS if not values[f])]:
            value = outputs.get(wanted[field])
            if not value and field not in OPTIONAL_FIELDS:
                raise _missing_output(env_name, wanted[field], _flag(field))
            values[field] = str(value) if value else None
        # `suffix` is the name suffix of the workspace asked for (`dev-pr123`); refuse outputs that name
        # another copy of the environment (a state file copied or restored into the wrong workspace).
        if "function_name" in missing and not values["function_name"].endswith(f"-{suffix}"):
            raise ReleaseError(
                f"the outputs of patternwatch-{env_name} name {values['function_name']}, which does not end in "
                f"-{suffix}: check the workspace (--workspace / TF_WORKSPACE), or pass --function-name"
            )
    return ReleaseTarget(**values)


def resolve_api_target(*, env_name: str, canary_percent: float, load_outputs: Callable[[], Mapping[str, Any]]) -> ApiTarget:
    outputs = load_outputs()
    values = {}
    for field, output in API_OUTPUTS.items():
        if not outputs.get(output):
            raise _missing_output(env_name, output, None)
        values[field] = outputs[output]
    return ApiTarget(
        rest_api_id=str(values["rest_api_id"]),
        stage=str(values["stage"]),
        definition_hash=str(values["definition_hash"]),
        alarm_names=tuple(values["alarm_names"]),
        canary_percent=canary_percent,
    )


def _flag(field: str) -> str:
    return {"function_name": "function-name", "application": "app"}.get(field, field.replace("_", "-"))


# ---------------------------------------------------------------------------------------------------
# Function code: AWS clients are passed in so tests can stub them
# ---------------------------------------------------------------------------------------------------


def appspec(target: ReleaseTarget, current_version: str, target_version: str) -> str:
    """The AppSpec CodeDeploy needs for a Lambda deployment: move `alias` from one version to another."""
    return json.dumps(
        {
            "version": 0.0,
            "Resources": [
                {
                    target.function_name: {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {
                            "Name": target.function_name,
                            "Alias": target.alias,
                            "CurrentVersion": current_version,
                            "TargetVersion": target_version,
                        },
                    }
                }
            ],
        },
        sort_keys=True,
    )


def release(
    target: ReleaseTarget,
    package: Package,
    *,
    lambda_client: Any,
    codedeploy_client: Any,
    s3_client: Any,
    signer_client: Any = None,
    wait: bool = True,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = print,
) -> ReleaseOutcome:
    """Upload, sign, publish and canary-deploy one function. AWS errors propagate as botocore exceptions."""
    name, bucket = target.function_name, target.artifact_bucket
    zip_bytes = package.path.read_bytes()
    key = artifact_key(FUNCTIONS_PREFIX, name, package.sha256_hex)

    current_version = lambda_client.get_alias(FunctionName=name, Name=target.alias)["FunctionVersion"]
    serving = lambda_client.get_function_configuration(FunctionName=name, Qualifier=current_version)
    # Checked before uploading, so an unchanged release leaves the bucket, $LATEST and the versions untouched.
    if _serves(serving, package, key, signer_client if target.signing_profile else None):
        return _unchanged(target, current_version, say)

    say(f"uploading {package.path.name} ({len(zip_bytes) / 1e6:.1f} MB) to s3://{bucket}/{key}")
    version_id = s3_client.put_object(Bucket=bucket, Key=key, Body=zip_bytes).get("VersionId")
    code_key = key
    if target.signing_profile:
        code_key = _sign(signer_client, target, key, version_id, clock=clock, sleep=sleep, say=say)
    new_sha = lambda_client.update_function_code(FunctionName=name, S3Bucket=bucket, S3Key=code_key)["CodeSha256"]
    say(f"updated {name} from s3://{bucket}/{code_key} (CodeSha256 {new_sha})")
    _wait_for_code_update(lambda_client, name, clock=clock, sleep=sleep)
    # CodeSha256 makes Lambda refuse to publish if someone else changed the code since our update.
    try:
        target_version = lambda_client.publish_version(FunctionName=name, CodeSha256=new_sha, Description=f"tooling.release {key}")["Version"]
    except ClientError as error:
        raise ReleaseError(
            f"Lambda refused to publish {name} ({error.response.get('Error', {}).get('Message', error)}): if another release "
            "or deploy changed the code meanwhile, re-run once it has finished; nothing was deployed"
        ) from error
    if target_version == current_version:
        return _unchanged(target, current_version, say)
    say(f"published {name} version {target_version}; {target.alias} serves version {current_version}")

    content = appspec(target, current_version, target_version)
    deployment_id = codedeploy_client.create_deployment(
        applicationName=target.application,
        deploymentGroupName=target.deployment_group,
        description=f"{name}: {target.alias} {current_version} -> {target_version}",
        revision={
            "revisionType": "AppSpecContent",
            "appSpecContent": {"content": content, "sha256": hashlib.sha256(content.encode()).hexdigest()},
        },
    )["deploymentId"]
    region = codedeploy_client.meta.region_name
    say(
        f"deployment {deployment_id} created in {target.application}/{target.deployment_group}: "
        f"https://{region}.console.aws.amazon.com/codesuite/codedeploy/deployments/{deployment_id}?region={region}"
    )
    versions = {"current_version": current_version, "target_version": target_version, "deployment_id": deployment_id}
    if not wait:
        message = f"not waiting: follow it with `aws deploy get-deployment --deployment-id {deployment_id}`"
        say(message)
        return ReleaseOutcome(EXIT_OK, "Created", message, **versions)
    return _follow_deployment(target, lambda_client, codedeploy_client, timeout_seconds, poll_seconds, clock, sleep, say, **versions)


def _serves(serving: Mapping[str, Any], package: Package, key: str, signer_client: Any) -> bool:
    """Whether the version `live` serves runs this package. Signed code has the signature's hash, not the
    package's: the signing job says which upload it signed, and the upload's key says which package that was."""
    job_arn = serving.get("SigningJobArn")
    if signer_client is not None and job_arn:
        job = signer_client.describe_signing_job(jobId=job_arn.rsplit("/", 1)[-1])
        return job["source"]["s3"]["key"] == key
    return serving.get("CodeSha256") == package.source_code_hash


def _unchanged(target: ReleaseTarget, version: str, say: Callable[[str], None]) -> ReleaseOutcome:
    message = f"{target.function_name}:{target.alias} already serves this code (version {version}); nothing to release"
    say(message)
    return ReleaseOutcome(EXIT_OK, "Unchanged", message, current_version=version, target_version=version)


def _poll(read: Callable[[], Mapping[str, Any]], status_key: str, pending: Sequence[str], *, timeout_seconds: float,
          poll_seconds: float, clock: Callable[[], float], sleep: Callable[[float], None], what: str) -> Mapping[str, Any]:
    """Read until the status is no longer pending; a status still pending after the timeout is an error."""
    deadline = clock() + timeout_seconds
    while True:
        value = read()
        if value.get(status_key) not in pending:
            return value
        if clock() >= deadline:
            raise ReleaseError(f"{what} is still {value.get(status_key)} after {timeout_seconds:g} s; nothing was deployed")
        sleep(poll_seconds)


def _sign(signer_client: Any, target: ReleaseTarget, key: str, version_id: str | None, *,
          clock: Callable[[], float], sleep: Callable[[float], None], say: Callable[[str], None]) -> str:
    """Sign the uploaded object version with the environment's profile; the signed copy's key."""
    bucket = target.artifact_bucket
    job_id = signer_client.start_signing_job(
        source={"s3": {"bucketName": bucket, "key": key, "version": version_id}},
        destination={"s3": {"bucketName": bucket, "prefix": signed_prefix(FUNCTIONS_PREFIX, target.function_name)}},
        profileName=target.signing_profile,
    )["jobId"]
    say(f"signing {key} with {target.signing_profile}: job {job_id}")
    job = _poll(lambda: signer_client.describe_signing_job(jobId=job_id), "status", ("InProgress",),
                timeout_seconds=SIGNING_TIMEOUT_SECONDS, poll_seconds=SIGNING_POLL_SECONDS, clock=clock, sleep=sleep,
                what=f"signing job {job_id}")
    if job["status"] != SUCCEEDED:
        raise ReleaseError(f"Signer could not sign {key} (job {job_id}): {job['status']}: {job.get('statusReason', 'no reason given')}; nothing was deployed")
    return job["signedObject"]["s3"]["key"]


def _wait_for_code_update(lambda_client: Any, name: str, *, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
    """Poll LastUpdateStatus (what waiter function_updated_v2 does) with failure reasons in the error."""
    configuration = _poll(lambda: lambda_client.get_function_configuration(FunctionName=name), "LastUpdateStatus", ("InProgress",),
                          timeout_seconds=CODE_UPDATE_TIMEOUT_SECONDS, poll_seconds=CODE_UPDATE_POLL_SECONDS, clock=clock,
                          sleep=sleep, what=f"{name}'s code update")
    if configuration.get("LastUpdateStatus") == "Failed":
        raise ReleaseError(
            f"Lambda could not apply the new code to {name}: "
            f"{configuration.get('LastUpdateStatusReasonCode', 'unknown')}: {configuration.get('LastUpdateStatusReason', 'no reason given')}"
        )

def _traffic(lambda_client: Any, target: ReleaseTarget, target_version: str) -> str:
    """How much of the alias's traffic the new version has, read from the alias itself ('' if unknown)."""
    try:
        alias = lambda_client.get_alias(FunctionName=target.function_name, Name=target.alias)
    except (ClientError, BotoCoreError):
        return ""  # progress output only: a failed read must not fail the release
    if alias.get("FunctionVersion") == target_version:
        return f"100% on version {target_version}"
    weight = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {}).get(target_version, 0.0)
    return f"{weight * 100:g}% on version {target_version}"


def _follow_deployment(
    target: ReleaseTarget,
    lambda_client: Any,
    codedeploy_client: Any,
    timeout_seconds: float,
    poll_seconds: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    say: Callable[[str], None],
    *,
    current_version: str,
    target_version: str,
    deployment_id: str,
) -> ReleaseOutcome:
    versions = {"current_version": current_version, "target_version": target_version, "deployment_id": deployment_id}
    started = clock()
    while True:
        info = codedeploy_client.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        status = info["status"]
        traffic = _traffic(lambda_client, target, target_version)
        say(f"[{clock() - started:5.0f}s] {deployment_id} {status}" + (f": {traffic}" if traffic else ""))
        if status == SUCCEEDED:
            message = f"released: {target.function_name}:{target.alias} serves version {target_version} (was {current_version})"
            say(message)
            return ReleaseOutcome(EXIT_OK, status, message, **versions)
        if status in FINISHED_BADLY:
            message = _failure_message(info, lambda_client, target, current_version, target_version)
            say(message)
            return ReleaseOutcome(EXIT_FAILED, status, message, **versions)
        if clock() - started >= timeout_seconds:
            message = (
                f"deployment {deployment_id} is still {status} after {timeout_seconds:g} s; it goes on in CodeDeploy "
                f"(and still rolls back on alarm). Follow it with `aws deploy get-deployment --deployment-id {deployment_id}`, "
                f"or stop and roll back with `aws deploy stop-deployment --deployment-id {deployment_id} --auto-rollback-enabled`"
            )
            say(message)
            return ReleaseOutcome(EXIT_TIMED_OUT, "TimedOut", message, **versions)
        sleep(poll_seconds)


def _failure_message(info: Mapping[str, Any], lambda_client: Any, target: ReleaseTarget, current_version: str, target_version: str) -> str:
    error = info.get("errorInformation") or {}
    lines = [
        f"release FAILED: deployment {info['deploymentId']} {info['status']}: "
        f"{error.get('code', 'no error code')}: {error.get('message', 'CodeDeploy gave no reason')}"
    ]
    rollback = info.get("rollbackInfo") or {}
    if rollback.get("rollbackDeploymentId") or rollback.get("rollbackMessage"):
        lines.append(
            f"CodeDeploy rolled back (rollback deployment {rollback.get('rollbackDeploymentId', 'unknown')}): "
            f"{rollback.get('rollbackMessage', 'no message')}"
        )
    else:
        lines.append("CodeDeploy recorded no automatic rollback")
    try:
        serving = lambda_client.get_alias(FunctionName=target.function_name, Name=target.alias)["FunctionVersion"]
        lines.append(f"{target.function_name}:{target.alias} now serves version {serving} (the release was {current_version} -> {target_version})")
    except (ClientError, BotoCoreError):
        lines.append(f"could not read {target.function_name}:{target.alias}; check which version it serves")
    return "\n".join(lines)



# ---------------------------------------------------------------------------------------------------
# The API: a new deployment on the stage's canary, watched, then promoted or removed
# ---------------------------------------------------------------------------------------------------

PROMOTE = [
    # The stage serves the canary's snapshot (API Gateway's documented promotion), with no traffic left to split.
    {"op": "copy", "from": "/canarySettings/deploymentId", "path": "/deploymentId"},
    {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "0.0"},
]
REMOVE_CANARY = [{"op": "remove", "path": "/canarySettings"}]


def release_api(target: ApiTarget, *, apigateway_client: Any, cloudwatch_client: Any, wait: bool = True,
                bake_seconds: float = DEFAULT_BAKE_SECONDS, poll_seconds: float = DEFAULT_POLL_SECONDS,
                clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                say: Callable[[str], None] = print) -> ReleaseOutcome:
    """Put the applied definition on the stage's canary, watch the alarms for `bake_seconds`, promote or roll back."""
    api = {"restApiId": target.rest_api_id}
    stage = apigateway_client.get_stage(**api, stageName=target.stage)
    serving = stage["deploymentId"]
    canary_id = (stage.get("canarySettings") or {}).get("deploymentId")
    where = f"{target.rest_api_id}/{target.stage}"
    if canary_id and canary_id != serving:
        snapshot = snapshotted_definition(apigateway_client.get_deployment(**api, deploymentId=canary_id).get("description"))
        if snapshot != target.definition_hash:
            raise ReleaseError(
                f"the canary on {where} (deployment {canary_id}) holds another definition ({snapshot or 'unknown'}, not "
                f"{target.definition_hash}): remove it with `aws apigateway update-stage --rest-api-id {target.rest_api_id} "
                f"--stage-name {target.stage} --patch-operations op=remove,path=/canarySettings` and re-run"
            )
        say(f"deployment {canary_id} of this definition is already on the canary of {where}: watching it")
    else:
        if snapshotted_definition(apigateway_client.get_deployment(**api, deploymentId=serving).get("description")) == target.definition_hash:
            message = f"{where} already serves definition {target.definition_hash} (deployment {serving}); nothing to release"
            say(message)
            return ReleaseOutcome(EXIT_OK, "Unchanged", message, current_version=serving, target_version=serving)
        firing = _firing_alarms(cloudwatch_client, target.alarm_names)
        if firing:
            raise ReleaseError(f"the API is already alarming ({_describe(firing)}): nothing was deployed; release once it has recovered")
        canary_id = apigateway_client.create_deployment(
            **api,
            stageName=target.stage,
            description=deployment_description(target.definition_hash, "tooling.release"),
            canarySettings={"percentTraffic": target.canary_percent, "useStageCache": False},
        )["id"]
        say(f"deployment {canary_id} (definition {target.definition_hash}) is on the canary of {where}: {target.canary_percent:g}% of requests")
    versions = {"current_version": serving, "target_version": canary_id, "deployment_id": canary_id}
    if not wait:
        message = f"not waiting: the canary stays open at {target.canary_percent:g}% until a release of the API runs again"
        say(message)
        return ReleaseOutcome(EXIT_OK, "Created", message, **versions)

    started = clock()
    while True:
        firing = _firing_alarms(cloudwatch_client, target.alarm_names)
        if firing:
            apigateway_client.update_stage(**api, stageName=target.stage, patchOperations=REMOVE_CANARY)
            apigateway_client.delete_deployment(**api, deploymentId=canary_id)
            message = (
                f"release ROLLED BACK: {_describe(firing)}; the canary is removed and deployment {canary_id} deleted: "
                f"{where} serves deployment {serving} as before"
            )
            say(message)
            return ReleaseOutcome(EXIT_FAILED, "RolledBack", message, **versions)
        elapsed = clock() - started
        say(f"[{elapsed:5.0f}s] canary {canary_id} at {target.canary_percent:g}%: {', '.join(target.alarm_names)} not alarming")
        if elapsed >= bake_seconds:
            break
        sleep(min(poll_seconds, bake_seconds - elapsed))

    # Promote only the canary this run watched: a canary replaced meanwhile has not baked.
    now_on_canary = (apigateway_client.get_stage(**api, stageName=target.stage).get("canarySettings") or {}).get("deploymentId")
    if now_on_canary != canary_id:
        raise ReleaseError(f"the canary of {where} changed while it baked (now {now_on_canary or 'none'}, was {canary_id}); nothing was promoted")
    apigateway_client.update_stage(**api, stageName=target.stage, patchOperations=PROMOTE)
    apigateway_client.update_stage(**api, stageName=target.stage, patchOperations=REMOVE_CANARY)
    message = f"released: {where} serves deployment {canary_id} (definition {target.definition_hash}; was {serving})"
    say(message)
    return ReleaseOutcome(EXIT_OK, "Promoted", message, **versions)


def _firing_alarms(cloudwatch_client: Any, names: Sequence[str]) -> list[Mapping[str, Any]]:
    alarms = cloudwatch_client.describe_alarms(AlarmNames=list(names), AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    missing = set(names) - {a["AlarmName"] for a in alarms}
    if missing:
        raise ReleaseError(f"the API alarms {', '.join(sorted(missing))} do not exist: has the environment been deployed?")
    return [a for a in alarms if a["StateValue"] == ALARM]


def _describe(alarms: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"{a['AlarmName']} is in ALARM: {a.get('StateReason', 'no reason given')}" for a in alarms)


# ---------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------


def aws_clients(region: str, emulator_endpoint: str | None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Clients of every service a release uses, for the environment's region, by service name.

    boto3 reads AWS_ENDPOINT_URL(_<SERVICE>) itself, so no endpoint is passed when one is set (an explicit
    endpoint_url would override it). Without one, `local` goes to its emulator with the emulator's dummy
    credentials, which can never be mistaken for real ones.
    """
    import boto3  # only the command line needs it; the core takes ready clients

    kwargs: dict[str, Any] = {}
    if emulator_endpoint and not endpoint_overridden(environ):
        # The same dummy credentials as patternwatch_infra/emulator.py (not imported: it pulls in cdktf).
        kwargs = {"endpoint_url": emulator_endpoint, "aws_access_key_id": "test", "aws_secret_access_key": "test"}
    session = boto3.session.Session(region_name=region)
    return {service: session.client(service, **kwargs) for service in SERVICES}


def endpoint_overridden(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return any(environ.get(var) for var in ENDPOINT_VARS)


def check_account(sts_client: Any, env_name: str, expected: str) -> None:
    """Terraform only touches the env file's account (allowed_account_ids); a release must not do more."""
    actual = sts_client.get_caller_identity()["Account"]
    if actual != expected:
        raise ReleaseError(
            f"these AWS credentials are for account {actual}, but envs/{env_name}.json allows only {expected}: "
            "switch credentials (e.g. AWS_PROFILE) and re-run; nothing was changed"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tooling.release",
        description="Roll out one function's new code through its CodeDeploy canary, or the API's definition through the stage's canary.",
    )
    parser.add_argument("package", help=f"the function's package ({', '.join(RELEASABLE_PACKAGES)}), or {API!r}")
    parser.add_argument("--env", required=True, help="environment: local, dev, staging or prod")
    parser.add_argument("--workspace", default=selected_workspace(), help="Terraform workspace (default: $TF_WORKSPACE, else default)")
    parser.add_argument("--function-name", help="Lambda function (default: Terraform output <package>_function_name)")
    parser.add_argument("--app", help="CodeDeploy application (default: Terraform output deployment_app_name)")
    parser.add_argument("--deployment-group", help="CodeDeploy deployment group (default: Terraform output <package>_deployment_group)")
    parser.add_argument("--artifact-bucket", help="S3 bucket for the code (default: Terraform output artifact_bucket_name)")
    parser.add_argument("--signing-profile", help="Signer profile (default: Terraform output signing_profile_name, where the environment signs)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, metavar="SECONDS",
                        help=f"how long to wait for a function's deployment (default: {DEFAULT_TIMEOUT_SECONDS})")
    parser.add_argument("--bake-seconds", type=float, default=DEFAULT_BAKE_SECONDS, metavar="SECONDS",
                        help=f"how long the API canary runs before it is promoted (default: {DEFAULT_BAKE_SECONDS})")
    parser.add_argument("--poll-interval", type=float, default=DEFAULT_POLL_SECONDS, metavar="SECONDS",
                        help=f"seconds between progress lines (default: {DEFAULT_POLL_SECONDS})")
    parser.add_argument("--no-wait", action="store_true", help="return once the deployment (or the API canary) is created")
    args = parser.parse_args(argv)
    if args.timeout <= 0 or args.poll_interval <= 0 or args.bake_seconds < 0:
        parser.error("--timeout and --poll-interval must be positive, --bake-seconds not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def say(message: str) -> None:
        print(f"release: {message}", flush=True)

    try:
        config = load_environment(args.env)
        check_releasable(args.package)
        workspace = check_workspace(args.workspace)
        hint = "" if args.package == API else "or pass --function-name, --app, --deployment-group and --artifact-bucket"

        def load_outputs() -> dict[str, Any]:
            return read_stack_outputs(config.name, workspace=workspace, hint=hint)

        if args.package == API:
            target: ReleaseTarget | ApiTarget = resolve_api_target(env_name=config.name, canary_percent=config.canary_percent, load_outputs=load_outputs)
            say(f"{args.env} (workspace {workspace}): the API definition {target.definition_hash} on {target.rest_api_id}/{target.stage} in {config.region}")
        else:
            target = resolve_target(
                args.package,
                env_name=config.name,
                suffix=name_suffix(config.resource_suffix, workspace),
                overrides={
                    "function_name": args.function_name, "application": args.app, "deployment_group": args.deployment_group,
                    "artifact_bucket": args.artifact_bucket, "signing_profile": args.signing_profile,
                },
                load_outputs=load_outputs,
            )
            signing = f"signed by {target.signing_profile}" if target.signing_profile else "unsigned (no signing profile)"
            say(f"{args.env} (workspace {workspace}): {target.function_name} via {target.application}/{target.deployment_group} "
                f"in {config.region}, {signing}")
    except (ConfigError, ReleaseError, StackOutputsError) as error:
        print(f"release: error: {error}", file=sys.stderr)
        return EXIT_USAGE

    try:
        clients = aws_clients(config.region, config.emulator.endpoint if config.emulator else None)
        # Emulators behind AWS_ENDPOINT_URL answer with made-up account ids, so the check is for real AWS only.
        if config.account_id and not endpoint_overridden():
            check_account(clients["sts"], config.name, config.account_id)
        if isinstance(target, ApiTarget):
            outcome = release_api(
                target, apigateway_client=clients["apigateway"], cloudwatch_client=clients["cloudwatch"],
                wait=not args.no_wait, bake_seconds=args.bake_seconds, poll_seconds=args.poll_interval, say=say,
            )
        else:
            outcome = release(
                target, build_function(args.package),
                lambda_client=clients["lambda"], codedeploy_client=clients["codedeploy"], s3_client=clients["s3"],
                signer_client=clients["signer"],
                wait=not args.no_wait, timeout_seconds=args.timeout, poll_seconds=args.poll_interval, say=say,
            )
    except ReleaseError as error:
        print(f"release: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ClientError as error:
        details = error.response.get("Error", {})
        print(
            f"release: error: {error.operation_name} failed: {details.get('Code', 'unknown')}: {details.get('Message', error)}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except NoCredentialsError:
        print(f"release: error: no AWS credentials found: configure credentials for {config.name} (e.g. AWS_PROFILE) and re-run", file=sys.stderr)
        return EXIT_FAILED
    except BotoCoreError as error:
        print(f"release: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
