"""State machine definitions (Amazon States Language) as Python data, rendered to JSON for Terraform.

Each module builds a plain dict from the ARNs it is given (Terraform references at synth time, so no
ARN is ever written here), which keeps the definitions testable as data: `states`, `reachable_states`
and `transitions` walk any definition, including nested Parallel branches and Map processors.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)


def render(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, sort_keys=False)


def state_machines(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The definition itself and every nested machine (Parallel branches, Map item processors)."""
    yield definition
    for state in definition["States"].values():
        for branch in state.get("Branches", []):
            yield from state_machines(branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from state_machines(processor)


def transitions(state: dict[str, Any]) -> list[str]:
    """Every state name this state can move to: Next, Default, Choice rules and Catch targets."""
    targets = [state[key] for key in ("Next", "Default") if key in state]
    targets += [rule["Next"] for rule in state.get("Choices", [])]
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    return targets


def reachable_states(machine: dict[str, Any]) -> set[str]:
    """States of one (sub)machine reachable from its StartAt."""
    seen, pending = set(), [machine["StartAt"]]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(transitions(machine["States"][name]))
    return seen


def task_states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for machine in state_machines(definition):
        for name, state in machine["States"].items():
            if state["Type"] == "Task":
                yield name, state
