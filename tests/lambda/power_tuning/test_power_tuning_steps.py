"""Initializer, executor and cleaner against moto's Lambda, in process.

moto runs no code without Docker, so its no-Docker Lambda backend is given a REPORT log line whose billed
duration depends on the memory of the version an alias points at: a CPU-bound function that gets
faster with memory. That is enough to check each step and the whole run end to end.
"""
from __future__ import annotations

import base64
import json

import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend

from moto_lambda import REGION, live_function
from power_tuning import analysis, handler, steps

NAME = "PatternDetector-test"


def billed_ms_at(memory_mb: int) -> int:
    """Full speed from 1769 MB (one vCPU); proportionally slower below."""
    return round(60 * max(1.0, 1769 / memory_mb))


class Invocations(list):
    """Every (function, qualifier, memory) moto was asked to invoke; set `failing` to make invokes fail."""

    failing = False


@pytest.fixture
def invocations(monkeypatch):
    calls = Invocations()

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        fn = self.get_function(function_name, qualifier)  # raises for an alias that does not exist
        calls.append((function_name, qualifier, fn.memory_size))
        report = f"REPORT RequestId: x\tDuration: {billed_ms_at(fn.memory_size) - 0.5} ms\tBilled Duration: {billed_ms_at(fn.memory_size)} ms"
        response_headers["x-amz-log-result"] = base64.b64encode(f"START RequestId: x\n{report}\n".encode()).decode()
        if calls.failing:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": "InvalidInputError", "errorMessage": "bars refused"}).encode()
        return body or b"{}"

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    return calls


@pytest.fixture
def target(monkeypatch):
    """A published function with a `live` alias, as the platform deploys them (512 MB)."""
    source = {"handler.py": "def lambda_handler(event, context):\n    return event\n"}
    with live_function(monkeypatch, NAME, source, "handler.lambda_handler", Architectures=["arm64"]) as (client, arn):
        monkeypatch.setattr(handler, "_client", client)
        yield client, arn


def no_sleep(_seconds: float) -> None:
    raise AssertionError("moto applies updates at once; nothing should wait")


def aliases(client) -> dict[str, str]:
    return {a["Name"]: a["FunctionVersion"] for a in client.list_aliases(FunctionName=NAME)["Aliases"]}


def versions(client) -> set[str]:
    return {v["Version"] for v in client.list_versions_by_function(FunctionName=NAME)["Versions"]}


def test_initializer_publishes_one_version_and_alias_per_memory_value_and_restores_latest(target):
    client, arn = target
    out = steps.initialize(client, analysis.parse_input({"lambdaARN": arn, "num": 2}), sleep=no_sleep)
    made = aliases(client)
    assert set(made) == {"live", "RAM512", "RAM1024", "RAM1536", "RAM2048", "RAM3008"}
    for value in analysis.DEFAULT_POWER_VALUES:
        version = client.get_function_configuration(FunctionName=NAME, Qualifier=made[f"RAM{value}"])
        assert version["MemorySize"] == value
        assert version["Description"] == f"{analysis.TUNING_MARKER} RAM{value}"
    assert client.get_function_configuration(FunctionName=NAME)["MemorySize"] == 512
    assert made["live"] == "1"
    assert out["originalMemory"] == 512 and out["powerValues"] == [512, 1024, 1536, 2048, 3008] and out["num"] == 2


def test_initializer_reuses_an_alias_left_over_from_an_interrupted_run(target):
    client, arn = target
    client.create_alias(FunctionName=NAME, Name="RAM1024", FunctionVersion="1")
    steps.initialize(client, analysis.parse_input({"lambdaARN": arn, "powerValues": [1024]}), sleep=no_sleep)
    version = aliases(client)["RAM1024"]
    assert version != "1"
    assert client.get_function_configuration(FunctionName=NAME, Qualifier=version)["MemorySize"] == 1024


def test_executor_invokes_the_alias_n_times_and_averages_the_billed_duration(target, invocations):
    client, arn = target
    steps.initialize(client, analysis.parse_input({"lambdaARN": arn, "powerValues": [1024]}), sleep=no_sleep)
    result = steps.execute(client, arn, 1024, 4, {"action": "validate"}, 0.2)
    assert [(f, m) for f, _, m in invocations] == [(f"{NAME}:RAM1024", 1024)] * 4
    assert result == {"value": 1024, "averageDuration": billed_ms_at(1024), "billedDurations": [float(billed_ms_at(1024))] * 4}


def test_executor_stops_on_a_failing_function(target, invocations):
    client, arn = target
    steps.initialize(client, analysis.parse_input({"lambdaARN": arn, "powerValues": [512]}), sleep=no_sleep)
    invocations.failing = True
    with pytest.raises(steps.InvocationError, match="RAM512 failed \\(Unhandled\\).*bars refused"):
        steps.execute(client, arn, 512, 3, "{}", 0.0)
    assert len(invocations) == 1


def test_cleaner_removes_what_the_initializer_made_and_nothing_else(target):
    client, arn = target
    before = versions(client)
    steps.initialize(client, analysis.parse_input({"lambdaARN": arn}), sleep=no_sleep)
    removed = steps.clean(client, arn, list(analysis.DEFAULT_POWER_VALUES))
    assert sorted(removed["removedAliases"]) == sorted(f"RAM{v}" for v in analysis.DEFAULT_POWER_VALUES)
    assert aliases(client) == {"live": "1"}
    assert versions(client) == before
    # A second run (the state machine retries, or the error path runs after the normal one) is harmless.
    assert steps.clean(client, arn, list(analysis.DEFAULT_POWER_VALUES)) == {"removedAliases": [], "removedVersions": []}


def test_cleaner_keeps_versions_it_did_not_publish_or_that_another_alias_uses(target):
    client, arn = target
    client.update_function_configuration(FunctionName=NAME, MemorySize=640)
    unmarked = client.publish_version(FunctionName=NAME, Description="release 2")["Version"]
    client.update_function_configuration(FunctionName=NAME, MemorySize=768)
    shared = client.publish_version(FunctionName=NAME, Description=f"{analysis.TUNING_MARKER} RAM768")["Version"]
    client.create_alias(FunctionName=NAME, Name="RAM640", FunctionVersion=unmarked)
    client.create_alias(FunctionName=NAME, Name="RAM768", FunctionVersion=shared)
    client.create_alias(FunctionName=NAME, Name="canary", FunctionVersion=shared)
    removed = steps.clean(client, arn, [640, 768])
    assert removed == {"removedAliases": ["RAM640", "RAM768"], "removedVersions": []}
    assert {unmarked, shared} <= versions(client)


def test_the_four_handlers_run_a_whole_tuning_like_the_state_machine(target, invocations):
    """Initializer -> Map(executor per value) -> cleaner -> analyzer, passing data as the ASL does; the function's
    memory is what it was before (the tuner recommends, it never applies)."""
    client, arn = target
    state = handler.initialize({"lambdaARN": arn, "num": 3, "strategy": "cost", "payload": {"ping": 1}})
    state["results"] = [handler.execute(item) for item in steps.executor_items(state)]
    assert handler.clean({"lambdaARN": state["lambdaARN"], "powerValues": state["powerValues"]})["removedVersions"]
    state["analysis"] = handler.analyze({"results": state["results"], "strategy": state["strategy"], "balancedWeight": state["balancedWeight"]})
    # Below one vCPU a CPU-bound function costs the same at any size; from 1769 MB it only gets dearer.
    # 1536 MB is the cheapest here because 60 ms x 1769/1536 rounds to 69 ms.
    assert state["analysis"]["power"] == 1536
    assert client.get_function_configuration(FunctionName=NAME)["MemorySize"] == 512
    assert aliases(client) == {"live": "1"}
    assert len(invocations) == 15


def test_the_cleaner_handler_falls_back_to_the_default_values_when_the_initializer_failed_early(target):
    client, arn = target
    client.create_alias(FunctionName=NAME, Name="RAM3008", FunctionVersion="1")
    assert handler.clean({"lambdaARN": arn, "error": {"Error": "States.TaskFailed"}})["removedAliases"] == ["RAM3008"]


def test_the_handler_builds_its_client_once(monkeypatch):
    monkeypatch.setattr(handler, "_client", None)
    monkeypatch.setenv("AWS_REGION", REGION)
    first = handler.lambda_client()
    assert handler.lambda_client() is first


class SlowUpdates:
    """A client whose configuration updates take a few polls, as Lambda's do."""

    def __init__(self, statuses):
        self.statuses = list(statuses)

    def get_function_configuration(self, FunctionName):
        return {"LastUpdateStatus": self.statuses.pop(0), "LastUpdateStatusReason": "bad layer", "State": "Active"}


def test_waiting_polls_until_the_update_finishes():
    slept = []
    steps.wait_until_updated(SlowUpdates(["InProgress", "InProgress", "Successful"]), NAME, sleep=slept.append)
    assert slept == [steps.UPDATE_POLL_SECONDS] * 2


def test_waiting_reports_a_failed_update_and_gives_up_eventually(monkeypatch):
    with pytest.raises(steps.FunctionUpdateError, match="bad layer"):
        steps.wait_until_updated(SlowUpdates(["Failed"]), NAME, sleep=lambda _: None)
    monkeypatch.setattr(steps, "UPDATE_POLL_ATTEMPTS", 2)
    with pytest.raises(steps.FunctionUpdateError, match="still updating"):
        steps.wait_until_updated(SlowUpdates(["InProgress"] * 2), NAME, sleep=lambda _: None)
