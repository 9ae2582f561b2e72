"""Roll out new Lambda code through the function's CodeDeploy canary.

Usage: python -m tooling.release --env dev [--workspace pr123] pattern_detector [--timeout 900] [--no-wait]
       (or: make release ENV=dev [WORKSPACE=pr123] FUNCTION=pattern_detector)

The six platform functions (PLATFORM_FUNCTIONS) are released this way. The power tuner's functions
(package power_tuning) are tooling and ship with `make deploy`: they have no canary to roll out through.

Steps: build the function's deterministic zip, upload it to $LATEST, wait for the update, publish a version,
then let CodeDeploy shift the alias `live` from the version it serves to the new one (10% for 5 minutes,
then all) and wait for the result. CodeDeploy, not this script, rolls back when the canary alarms fire.

Names come from the environment's Terraform outputs in the chosen workspace (`terraform output -json` in
cdktf.out/stacks/patternwatch-<env> with TF_WORKSPACE=<workspace>; default: $TF_WORKSPACE, else
`default`); --function-name, --app and --deployment-group override them, and when all three are given
Terraform is not run at all. Like Terraform (allowed_account_ids), the release
refuses credentials for any account other than the env file's `account_id`. The region is the env file's;
boto3's own AWS_ENDPOINT_URL(_<SERVICE>) is honoured, and `local` defaults to its emulator.

Exit codes: 0 released (or nothing to release, or --no-wait); 1 the deployment failed or was stopped, or
an AWS call failed; 2 bad usage or names that cannot be resolved; 3 still running when --timeout expired.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from patternwatch_infra.config import ConfigError, load_environment
from patternwatch_infra.packaging import PROJECT_ROOT, Package, build_function
from patternwatch_infra.workspaces import name_suffix
from patternwatch_shared.names.functions import PLATFORM_FUNCTIONS, POWER_TUNING_PACKAGE
from tooling.stack_outputs import StackOutputsError, check_workspace, read_stack_outputs, selected_workspace

# The functions with a canary (a deployment group and the stack outputs naming it), by package.
RELEASABLE_PACKAGES = tuple(spec.package for spec in PLATFORM_FUNCTIONS)
# Must equal patternwatch_infra.function.LIVE_ALIAS. Importing it would start jsii (cdktf) for a CLI that
# only talks to AWS, so a test reads that module's source and checks the two agree.
LIVE_ALIAS = "live"
DEFAULT_TIMEOUT_SECONDS = 15 * 60
DEFAULT_POLL_SECONDS = 10
# A code update normally settles in seconds; a stuck one is a Lambda problem, not a slow canary.
CODE_UPDATE_TIMEOUT_SECONDS = 5 * 60
CODE_UPDATE_POLL_SECONDS = 2

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMED_OUT = 3

SUCCEEDED = "Succeeded"
FINISHED_BADLY = ("Failed", "Stopped")

# Environment variables through which boto3 itself picks an endpoint; when one is set it must win.
ENDPOINT_VARS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL_CODEDEPLOY", "AWS_ENDPOINT_URL_STS")


class ReleaseError(RuntimeError):
    """The release cannot start or cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class ReleaseTarget:
    function_name: str
    application: str
    deployment_group: str
    alias: str = LIVE_ALIAS


@dataclass(frozen=True)
class ReleaseOutcome:
    exit_code: int
    status: str  # "Unchanged", "Created" (--no-wait), "TimedOut" or CodeDeploy's final status
    message: str
    current_version: str | None = None
    target_version: str | None = None
    deployment_id: str | None = None


# ---------------------------------------------------------------------------------------------------
# Names: Terraform outputs, overridden by flags
# ---------------------------------------------------------------------------------------------------


def output_names(package: str) -> dict[str, str]:
    """The stack outputs compute.py declares for a function package, by ReleaseTarget field."""
    return {
        "function_name": f"{package}_function_name",
        "application": "deployment_app_name",
        "deployment_group": f"{package}_deployment_group",
    }


def check_releasable(package: str) -> None:
    if package == POWER_TUNING_PACKAGE:
        raise ReleaseError(
            f"{package!r} is the power tuner's code (PowerTuning*-<suffix>): it ships with `make deploy`, not through a "
            f"canary release (releasable: {', '.join(RELEASABLE_PACKAGES)})"
        )
    if package not in RELEASABLE_PACKAGES:
        raise ReleaseError(f"{package!r} is not a releasable function package (releasable: {', '.join(RELEASABLE_PACKAGES)})")


def resolve_target(
    package: str,
    *,
    env_name: str,
    suffix: str,
    overrides: Mapping[str, str | None],
    load_outputs: Callable[[], Mapping[str, Any]],
) -> ReleaseTarget:
    """Flags win; Terraform outputs fill in the rest (and are read only when something is missing)."""
    wanted = output_names(package)
    values = {field: overrides.get(field) for field in wanted}
    missing = [field for field, value in values.items() if not value]
    if missing:
        outputs = load_outputs()
        for field in missing:
            value = outputs.get(wanted[field])
            if not value:
                raise ReleaseError(
                    f"stack output {wanted[field]!r} is missing for {env_name}: has patternwatch-{env_name} been deployed "
                    f"(`make deploy ENV={env_name}`)? Or pass --{_flag(field)}"
                )
            values[field] = str(value)
        # `suffix` is the name suffix of the workspace asked for (`dev-pr123`); refuse outputs that name
        # another copy of the environment (a state file copied or restored into the wrong workspace).
        if "function_name" in missing and not values["function_name"].endswith(f"-{suffix}"):
            raise ReleaseError(
                f"the outputs of patternwatch-{env_name} name {values['function_name']}, which does not end in "
                f"-{suffix}: check the workspace (--workspace / TF_WORKSPACE), or pass --function-name"
            )
    return ReleaseTarget(**values)


def _flag(field: str) -> str:
    return {"function_name": "function-name", "application": "app", "deployment_group": "deployment-group"}[field]


# ---------------------------------------------------------------------------------------------------
# The release itself: AWS clients are passed in so tests can stub them
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


def code_sha256(zip_bytes: bytes) -> str:
    """Lambda's CodeSha256: the base64 SHA-256 of the zip (also Terraform's source_code_hash)."""
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def release(
    target: ReleaseTarget,
    package: Package,
    *,
    lambda_client: Any,
    codedeploy_client: Any,
    wait: bool = True,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = print,
) -> ReleaseOutcome:
    """Upload, publish and canary-deploy one function. AWS errors propagate as botocore exceptions."""
    name = target.function_name
    zip_bytes = package.path.read_bytes()
    new_sha = code_sha256(zip_bytes)

    current_version = lambda_client.get_alias(FunctionName=name, Name=target.alias)["FunctionVersion"]
    serving = lambda_client.get_function_configuration(FunctionName=name, Qualifier=current_version)
    # Checked before uploading, so an unchanged release leaves $LATEST and the version list untouched.
    if serving.get("CodeSha256") == new_sha:
        return _unchanged(target, current_version, say)

    say(f"uploading {package.path.name} ({len(zip_bytes) / 1e6:.1f} MB, CodeSha256 {new_sha}) to {name}")
    lambda_client.update_function_code(FunctionName=name, ZipFile=zip_bytes)
    _wait_for_code_update(lambda_client, name, clock=clock, sleep=sleep)
    # CodeSha256 makes Lambda refuse to publish if someone else changed the code since our upload.
    try:
        target_version = lambda_client.publish_version(
            FunctionName=name, CodeSha256=new_sha, Description=f"tooling.release {new_sha}"
        )["Version"]
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


def _unchanged(target: ReleaseTarget, version: str, say: Callable[[str], None]) -> ReleaseOutcome:
    message = f"{target.function_name}:{target.alias} already serves this code (version {version}); nothing to release"
    say(message)
    return ReleaseOutcome(EXIT_OK, "Unchanged", message, current_version=version, target_version=version)


def _wait_for_code_update(lambda_client: Any, name: str, *, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
    """Poll LastUpdateStatus (what waiter function_updated_v2 does) with failure reasons in the error."""
    deadline = clock() + CODE_UPDATE_TIMEOUT_SECONDS
    while True:
        configuration = lambda_client.get_function_configuration(FunctionName=name)
        status = configuration.get("LastUpdateStatus", "Successful")
        if status == "Successful":
            return
        if status == "Failed":
            raise ReleaseError(
                f"Lambda could not apply the new code to {name}: "
                f"{configuration.get('LastUpdateStatusReasonCode', 'unknown')}: {configuration.get('LastUpdateStatusReason', 'no reason given')}"
            )
        if clock() >= deadline:
            raise ReleaseError(f"{name}'s code update is still {status} after {CODE_UPDATE_TIMEOUT_SECONDS} s; nothing was published")
        sleep(CODE_UPDATE_POLL_SECONDS)


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
# Command line
# ---------------------------------------------------------------------------------------------------


def aws_clients(region: str, emulator_endpoint: str | None, environ: Mapping[str, str] | None = None) -> tuple[Any, Any, Any]:
    """Lambda, CodeDeploy and STS clients for the environment's region.

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
    return session.client("lambda", **kwargs), session.client("codedeploy", **kwargs), session.client("sts", **kwargs)


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
        description="Publish new code for one Lambda function and roll it out through its CodeDeploy canary.",
    )
    parser.add_argument("package", help=f"the function's package: one of {', '.join(RELEASABLE_PACKAGES)}")
    parser.add_argument("--env", required=True, help="environment: local, dev, staging or prod")
    parser.add_argument("--workspace", default=selected_workspace(), help="Terraform workspace (default: $TF_WORKSPACE, else default)")
    parser.add_argument("--function-name", help="Lambda function (default: Terraform output <package>_function_name)")
    parser.add_argument("--app", help="CodeDeploy application (default: Terraform output deployment_app_name)")
    parser.add_argument("--deployment-group", help="CodeDeploy deployment group (default: Terraform output <package>_deployment_group)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, metavar="SECONDS",
                        help=f"how long to wait for the deployment (default: {DEFAULT_TIMEOUT_SECONDS})")
    parser.add_argument("--poll-interval", type=float, default=DEFAULT_POLL_SECONDS, metavar="SECONDS",
                        help=f"seconds between progress lines (default: {DEFAULT_POLL_SECONDS})")
    parser.add_argument("--no-wait", action="store_true", help="return once the deployment is created")
    args = parser.parse_args(argv)
    if args.timeout <= 0 or args.poll_interval <= 0:
        parser.error("--timeout and --poll-interval must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def say(message: str) -> None:
        print(f"release: {message}", flush=True)

    try:
        config = load_environment(args.env)
        check_releasable(args.package)
        workspace = check_workspace(args.workspace)
        hint = "or pass --function-name, --app and --deployment-group"
        target = resolve_target(
            args.package,
            env_name=config.name,
            suffix=name_suffix(config.resource_suffix, workspace),
            overrides={"function_name": args.function_name, "application": args.app, "deployment_group": args.deployment_group},
            load_outputs=lambda: read_stack_outputs(config.name, workspace=workspace, hint=hint),
        )
    except (ConfigError, ReleaseError, StackOutputsError) as error:
        print(f"release: error: {error}", file=sys.stderr)
        return EXIT_USAGE

    say(f"{args.env} (workspace {workspace}): {target.function_name} via {target.application}/{target.deployment_group} in {config.region}")
    try:
        package = build_function(args.package)
        lambda_client, codedeploy_client, sts_client = aws_clients(config.region, config.emulator.endpoint if config.emulator else None)
        # Emulators behind AWS_ENDPOINT_URL answer with made-up account ids, so the check is for real AWS only.
        if config.account_id and not endpoint_overridden():
            check_account(sts_client, config.name, config.account_id)
        outcome = release(
            target, package,
            lambda_client=lambda_client, codedeploy_client=codedeploy_client,
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
