"""EventBridge rule targets that moto does not deliver: Step Functions state machines and Lambda functions.

moto matches PutEvents entries against each rule's pattern (numeric matchers included) and delivers to
SQS, log groups, other buses and API destinations. This adds, for a matching event on an ENABLED rule:
- a `states` target: StartExecution of the machine (on the ASL interpreter, step_functions.py), with
  the target's input: Input, else InputPath, else InputTransformer, else the whole event;
- a `lambda` target: an asynchronous invoke through the local Lambda service (retries, on-failure
  destination or dead-letter queue as Lambda does them).
Both also count AWS/Events metrics per rule (MatchedEvents, Invocations, FailedInvocations, TriggeredRules).

Schedules: moto never fires a rule on a schedule. `fire_rule` delivers the Scheduled Event a schedule
would, through the same targets; the local trigger runner calls it (admin endpoint) when a rule's period
has elapsed on its clock.
"""
from __future__ import annotations

import copy
import datetime
import json
import uuid
from typing import Any

from . import clock, telemetry
from .lambda_service import service


OUR_TARGETS = ("states", "lambda")


def _iso(value: Any) -> str:
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def delivered_event(event: dict) -> dict:
    """The event as EventBridge hands it to a target: ISO time, no internal fields."""
    shaped = {k: v for k, v in event.items() if k != "ingestion-time"}
    shaped["time"] = _iso(shaped.get("time", clock.now()))
    return shaped


def target_input(target: dict, event: dict) -> str:
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse

        matches = parse(target["InputPath"]).find(delivered_event(event))
        return json.dumps(matches[0].value if matches else None)
    if target.get("InputTransformer"):
        from moto.events.utils import EventTemplateParser

        transformer = target["InputTransformer"]
        return json.dumps(EventTemplateParser.parse(transformer.get("InputTemplate"), transformer.get("InputPathsMap", {}), event))
    return json.dumps(delivered_event(event))


def deliver(rule, target: dict, event: dict) -> str | None:
    """Deliver one event to one states/lambda target; returns the execution ARN or request id, None if not ours."""
    arn = target["Arn"]
    service_name = arn.split(":")[2]
    if service_name not in OUR_TARGETS:
        return None
    account, region = arn.split(":")[4], arn.split(":")[3]
    payload = target_input(target, event)
    try:
        if service_name == "states":
            from moto.stepfunctions.responses import get_backend

            result = get_backend(account, region).start_execution(arn, None, payload).execution_arn
        else:
            result = service().invoke(account, region, arn, None, payload.encode(), invocation_type="Event").request_id
        _rule_metrics(rule, {"Invocations": 1})
        return result
    except Exception as error:  # EventBridge records a failed invocation; nothing here may break PutEvents
        print(f"events: rule {rule.name} could not deliver to {arn}: {type(error).__name__}: {error}", flush=True)
        _rule_metrics(rule, {"FailedInvocations": 1})
        return None


def _rule_metrics(rule, values: dict[str, float]) -> None:
    telemetry.put_metrics(rule.account_id, rule.region_name, "AWS/Events",
                          [telemetry.metric(name, value, "Count", {"RuleName": rule.name}) for name, value in values.items()])


def install() -> list[str]:
    from moto.events.models import Rule

    original = Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input: bool = True) -> None:
        if self.state != "ENABLED":
            return
        ours = [t for t in self.targets if t["Arn"].split(":")[2] in OUR_TARGETS]
        if len(ours) < len(self.targets):  # moto delivers the rest (and raises on a kind it does not know)
            theirs = copy.copy(self)
            theirs.targets = [t for t in self.targets if t not in ours]
            original(theirs, original_event, transform_input)
        if not self.event_pattern.matches_event(original_event):
            return
        _rule_metrics(self, {"MatchedEvents": 1, "TriggeredRules": 1})
        for target in ours:
            deliver(self, target, original_event)

    Rule.send_to_targets = send_to_targets
    return ["events: rule targets of type states (StartExecution) and lambda (async invoke) are delivered"]


def fire_rule(account: str, region: str, rule_name: str, bus: str = "default", when: float | None = None) -> dict:
    """Deliver the Scheduled Event a rule's schedule would produce now (or at `when`) to its targets."""
    from moto.events.models import events_backends

    backend = events_backends[account][region]
    rule = backend.describe_rule(rule_name, bus)
    if not rule.scheduled_expression:
        raise ValueError(f"rule {rule_name} has no schedule")
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": when if when is not None else clock.now(),
        "region": region,
        "resources": [rule.arn],
        "detail": {},
        "ingestion-time": clock.now(),
    }
    if rule.state != "ENABLED":
        return {"rule": rule_name, "delivered": []}
    delivered = []
    _rule_metrics(rule, {"TriggeredRules": 1})
    for target in rule.targets:
        result = deliver(rule, target, copy.deepcopy(event))
        delivered.append({"target": target["Arn"], "id": result})
    return {"rule": rule_name, "event": delivered_event(event), "delivered": delivered}
