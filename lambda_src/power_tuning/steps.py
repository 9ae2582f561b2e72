"""The tuner's AWS steps, each taking a Lambda client so tests (moto) and the CLI can pass their own."""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from power_tuning.analysis import TUNING_MARKER, TuningInput, alias_name, billed_duration_from_log, trimmed_mean

# UpdateFunctionConfiguration is asynchronous; PublishVersion fails while the update is still running.
UPDATE_POLL_SECONDS = 1.0
UPDATE_POLL_ATTEMPTS = 120
# Lambda answers CreateAlias for an existing alias with ResourceConflictException; moto says ConflictException.
ALIAS_EXISTS_ERRORS = ("ResourceConflictException", "ConflictException")


class InvocationError(RuntimeError):
    """The function under test failed; its numbers would measure the failure, not the function."""


class FunctionUpdateError(RuntimeError):
    """Lambda reported a failed configuration update."""


def wait_until_updated(client: Any, function: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
    for _ in range(UPDATE_POLL_ATTEMPTS):
        config = client.get_function_configuration(FunctionName=function)
        status = config.get("LastUpdateStatus", "Successful")
        if status == "Failed":
            raise FunctionUpdateError(f"{function}: {config.get('LastUpdateStatusReason', 'update failed')}")
        if status != "InProgress" and config.get("State", "Active") != "Pending":
            return
        sleep(UPDATE_POLL_SECONDS)
    raise FunctionUpdateError(f"{function}: still updating after {UPDATE_POLL_ATTEMPTS * UPDATE_POLL_SECONDS:.0f} s")


def set_memory(client: Any, function: str, memory_mb: int, *, sleep: Callable[[float], None] = time.sleep) -> None:
    client.update_function_configuration(FunctionName=function, MemorySize=memory_mb)
    wait_until_updated(client, function, sleep=sleep)


def function_name(lambda_arn: str) -> str:
    """Calls address the function by name (the client is in its account and region): the emulator
    mis-parses full ARNs in ListAliases, and Lambda treats both the same."""
    return lambda_arn.split(":")[6]


def initialize(client: Any, request: TuningInput, *, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Publish one version per memory value behind an alias RAM<value>; leave $LATEST as it was."""
    arn = function_name(request.lambda_arn)  # see function_name
    original_memory = client.get_function_configuration(FunctionName=arn)["MemorySize"]
    try:
        for value in request.power_values:
            set_memory(client, arn, value, sleep=sleep)
            alias = alias_name(value)
            version = client.publish_version(FunctionName=arn, Description=f"{TUNING_MARKER} {alias}")["Version"]
            try:
                client.create_alias(FunctionName=arn, Name=alias, FunctionVersion=version, Description=TUNING_MARKER)
            except client.exceptions.ClientError as error:
                if error.response["Error"]["Code"] not in ALIAS_EXISTS_ERRORS:
                    raise
                # Left over from a run that could not clean up: point it at the version just measured.
                client.update_alias(FunctionName=arn, Name=alias, FunctionVersion=version, Description=TUNING_MARKER)
    finally:
        # Traffic through the aliases the platform uses never sees $LATEST, but Terraform compares it.
        set_memory(client, arn, original_memory, sleep=sleep)
    return {**request.as_event(), "originalMemory": original_memory}


def execute(client: Any, lambda_arn: str, value: int, num: int, payload: Any, discard_top_bottom: float) -> dict[str, Any]:
    """Invoke alias RAM<value> `num` times, one after another, and average the billed durations."""
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    # The alias goes in the name ("<name>:RAM1024") rather than in Qualifier, which the emulator ignores.
    target = f"{function_name(lambda_arn)}:{alias_name(value)}"
    durations = []
    for _ in range(num):
        response = client.invoke(FunctionName=target, Payload=body, LogType="Tail")
        if response.get("FunctionError"):
            detail = response["Payload"].read()[:300].decode("utf-8", errors="replace")
            raise InvocationError(f"{target} failed ({response['FunctionError']}): {detail}")
        durations.append(billed_duration_from_log(response["LogResult"]))
    return {
        "value": value,
        "averageDuration": trimmed_mean(durations, discard_top_bottom),
        "billedDurations": durations,
    }


def clean(client: Any, lambda_arn: str, power_values: list[int]) -> dict[str, list[str]]:
    """Delete the RAM<value> aliases and the versions the tuner published for them.

    Safe to run twice and after a failed initializer: a missing alias is skipped, and a version is deleted
    only if the tuner published it (its description carries the marker) and no other alias uses it.
    """
    name = function_name(lambda_arn)
    not_found = client.exceptions.ResourceNotFoundException
    removed_aliases, candidate_versions = [], []
    for value in power_values:
        alias = alias_name(value)
        try:
            version = client.get_alias(FunctionName=name, Name=alias)["FunctionVersion"]
        except not_found:
            continue
        client.delete_alias(FunctionName=name, Name=alias)
        removed_aliases.append(alias)
        candidate_versions.append(version)
    in_use = {a["FunctionVersion"] for page in client.get_paginator("list_aliases").paginate(FunctionName=name) for a in page["Aliases"]}
    removed_versions = []
    for version in dict.fromkeys(candidate_versions):
        if version == "$LATEST" or version in in_use:
            continue
        description = client.get_function_configuration(FunctionName=name, Qualifier=version).get("Description", "")
        if description.startswith(TUNING_MARKER):
            client.delete_function(FunctionName=name, Qualifier=version)
            removed_versions.append(version)
    return {"removedAliases": removed_aliases, "removedVersions": removed_versions}


def executor_items(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the state machine's Map state fans out: one executor input per memory value."""
    return [
        {
            "lambdaARN": event["lambdaARN"],
            "value": value,
            "num": event["num"],
            "payload": event["payload"],
            "discardTopBottom": event["discardTopBottom"],
        }
        for value in event["powerValues"]
    ]
