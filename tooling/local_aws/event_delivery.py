"""EventBridge rule targets that moto does not deliver: Step Functions state machines and Lambda functions.

moto matches PutEvents entries against each rule's pattern (numeric matchers included) and delivers to
SQS, log groups, other buses and API destinations. This adds, for a matching event on an ENABLED rule:
- a `states` target: StartExecution of the machine (on the ASL interpreter, step_functions.py), with
  the target's input: Input, else InputPath, else InputTransformer, else the whole event;
- a `lambda` target: an asynchronous invoke through the local Lambda service (retries, on-failure
  destination or dead-letter queue as Lambda does them).

A delivery the target refuses (no such function or machine, a failing StartExecution) is retried as the
target's RetryPolicy says (MaximumRetryAttempts, MaximumEventAgeInSeconds on the platform clock; EventBridge's
defaults, 185 and 24 h, without one), in the background and after short delays rather than EventBridge's
minutes of backoff. Then the event goes to the target's DeadLetterConfig queue with EventBridge's message
attributes (RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION, RETRY_ATTEMPTS), or,
without one, is kept in `undeliverable` (GET /_patternwatch/events/stats) and logged: never dropped silently.
AWS/Events metrics per rule: MatchedEvents, TriggeredRules, Invocations, RetryInvocationAttempts,
FailedInvocations (failed for good), InvocationsSentToDlq, InvocationsFailedToBeSentToDlq.

Schedules: moto never fires a rule on a schedule. `fire_rule` delivers the Scheduled Event a schedule
would, through the same targets; the local trigger runner calls it (admin endpoint) when a rule's period
has elapsed on its clock.
"""
from __future__ import annotations

import copy
import datetime
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import clock, telemetry
from .lambda_service import deliver_to_arn, service


OUR_TARGETS = ("states", "lambda")
# EventBridge's retry policy when a target sets none.
DEFAULT_MAX_RETRY_ATTEMPTS = 185
DEFAULT_MAX_EVENT_AGE_SECONDS = 24 * 3600
# Locally a retry follows after these delays (then the last, again): the same count and order as EventBridge,
# in seconds instead of its minutes of exponential backoff.
RETRY_DELAYS = (0.1, 0.2, 0.4, 0.8)

_retries = ThreadPoolExecutor(max_workers=2, thread_name_prefix="events-retry")
_pending = 0
_idle = threading.Condition()
# Events that failed every retry and had no dead-letter queue (or could not reach it): kept, never dropped silently.
undeliverable: list[dict] = []


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


def deliver(rule, target: dict, event: dict, *, retries: int = 0, first_attempt: float | None = None) -> str | None:
    """Deliver one event to one states/lambda target; returns the execution ARN or request id, None if not ours
    or if this attempt failed (it is then retried, or dead-lettered, in the background)."""
    arn = target["Arn"]
    service_name = arn.split(":")[2]
    if service_name not in OUR_TARGETS:
        return None
    first_attempt = clock.now() if first_attempt is None else first_attempt
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
    except Exception as error:  # EventBridge retries, then dead-letters; nothing here may break PutEvents
        print(f"events: rule {rule.name} could not deliver to {arn} (attempt {retries + 1}): {type(error).__name__}: {error}", flush=True)
        _after_failure(rule, target, event, error, retries, first_attempt)
        return None


def _error_code(error: Exception) -> str:
    return getattr(error, "error_type", None) or getattr(error, "code", None) or type(error).__name__


def _after_failure(rule, target: dict, event: dict, error: Exception, retries: int, first_attempt: float) -> None:
    """Retry while the target's policy allows, else send the event to its dead-letter queue."""
    policy = target.get("RetryPolicy") or {}
    max_retries = int(policy.get("MaximumRetryAttempts", DEFAULT_MAX_RETRY_ATTEMPTS))
    max_age = float(policy.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_SECONDS))
    if retries >= max_retries:
        _dead_letter(rule, target, event, error, retries, "MaximumRetryAttemptsExhausted")
    elif clock.now() - first_attempt >= max_age:
        _dead_letter(rule, target, event, error, retries, "MaximumEventAgeExhausted")
    else:
        _schedule_retry(rule, target, event, retries + 1, first_attempt)


def _schedule_retry(rule, target: dict, event: dict, retries: int, first_attempt: float) -> None:
    global _pending
    with _idle:
        _pending += 1

    def attempt() -> None:
        global _pending
        try:
            time.sleep(RETRY_DELAYS[min(retries - 1, len(RETRY_DELAYS) - 1)])
            _rule_metrics(rule, {"RetryInvocationAttempts": 1})
            deliver(rule, target, event, retries=retries, first_attempt=first_attempt)
        finally:
            with _idle:
                _pending -= 1
                _idle.notify_all()

    _retries.submit(attempt)


def _dead_letter(rule, target: dict, event: dict, error: Exception, retries: int, condition: str) -> None:
    """What EventBridge sends to a target's DLQ: the event itself, and why in the message attributes."""
    _rule_metrics(rule, {"FailedInvocations": 1})
    body = json.dumps(delivered_event(event))
    attributes = {
        "RULE_ARN": rule.arn,
        "TARGET_ARN": target["Arn"],
        "ERROR_CODE": _error_code(error),
        "ERROR_MESSAGE": str(error)[:256],
        "EXHAUSTED_RETRY_CONDITION": condition,
        "RETRY_ATTEMPTS": str(retries),
    }
    dead_letter_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    if dead_letter_arn:
        try:
            deliver_to_arn(rule.account_id, rule.region_name, dead_letter_arn, body, service(), attributes=attributes)
            _rule_metrics(rule, {"InvocationsSentToDlq": 1})
            return
        except Exception as failure:  # a missing DLQ must not lose the event either
            print(f"events: rule {rule.name} could not dead-letter to {dead_letter_arn}: {failure}", flush=True)
            _rule_metrics(rule, {"InvocationsFailedToBeSentToDlq": 1})
    undeliverable.append({"rule": rule.name, "target": target["Arn"], "event": json.loads(body), **attributes})
    print(f"events: rule {rule.name} gave up on an event for {target['Arn']} ({condition}) and has no dead-letter queue", flush=True)


def wait_for_retries(timeout: float = 120.0) -> bool:
    """Block until every scheduled retry has run (and dead-lettered where it failed for good)."""
    deadline = time.monotonic() + timeout
    with _idle:
        while _pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            _idle.wait(remaining)
    return True


def stats() -> dict:
    with _idle:
        return {"retriesPending": _pending, "undeliverable": list(undeliverable)}


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
