"""Fault injection on the local platform: what tests/integration/test_faults.py and docs/reliability.md use.

Rules are set over the admin API (POST /_patternwatch/faults {"rules": [...]}, DELETE to clear, GET for what
fired) and apply to the AWS requests the emulator serves, the handlers' own included, until cleared:

- `throttle`: answer DynamoDB's ProvisionedThroughputExceededException (HTTP 400) instead of serving the call;
- `drop-before`: close the connection without serving the call (the caller never knows whether it happened);
- `drop-after`: serve the call, then close the connection without an answer (the write happened, the caller's
  SDK sends it again: the case a lost answer makes);
- `kill-worker`: serve the call, then kill the worker processes running an invocation of `function` (the
  handler dies mid-batch, with part of its writes done), as an out-of-memory kill or a crash would;
- `stall`: hold the call `seconds` before serving it;
- `timeout`: the next invocations of `function` get `seconds` instead of their configured timeout (with a
  `stall` the handler times out mid-batch, as Lambda would end it).

Rules are tried in order and the first that fires takes the request (the later ones do not see it). A rule
matches on `service` (the signing name: dynamodb, events, sqs, sns, ...), `operations` and `table`
(DynamoDB requests naming it), fires on every `every`-th match and at most `limit` times. Each rule counts
what it saw and what it did. Nothing here is on unless a rule is set.
"""
from __future__ import annotations

import io
import json
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

ACTIONS = ("throttle", "drop-before", "drop-after", "kill-worker", "stall", "timeout")
_THROTTLED = json.dumps({
    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "message": "The level of configured provisioned throughput for the table was exceeded (injected fault).",
}).encode()


@dataclass
class Rule:
    action: str
    service: str | None = None
    operations: list[str] = field(default_factory=list)
    table: str | None = None
    function: str | None = None
    every: int = 1
    limit: int | None = None
    seconds: float = 0.0
    seen: int = 0
    fired: int = 0

    @classmethod
    def parse(cls, raw: dict) -> "Rule":
        allowed = {"action", "service", "operations", "table", "function", "every", "limit", "seconds"}
        unknown = set(raw) - allowed
        if unknown:
            raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")
        rule = cls(**raw)
        if rule.action not in ACTIONS:
            raise ValueError(f"fault action must be one of {ACTIONS}, not {rule.action!r}")
        if rule.action in ("kill-worker", "timeout") and not rule.function:
            raise ValueError(f"a {rule.action} rule names its function")
        if rule.every < 1:
            raise ValueError("every must be at least 1")
        return rule

    def matches(self, service: str | None, operation: str | None, body: bytes) -> bool:
        if self.action == "timeout" or not service or (self.service and service != self.service):
            return False
        if self.operations and operation not in self.operations:
            return False
        return not self.table or _names_table(body, self.table)

    def take(self) -> bool:
        """Count one match; True when this one fires."""
        self.seen += 1
        if self.limit is not None and self.fired >= self.limit:
            return False
        if self.seen % self.every:
            return False
        self.fired += 1
        return True


_rules: list[Rule] = []
_lock = threading.Lock()


def configure(raw_rules: list[dict]) -> list[dict]:
    rules = [Rule.parse(raw) for raw in raw_rules]
    with _lock:
        _rules[:] = rules
    return report()


def clear() -> list[dict]:
    with _lock:
        cleared = [asdict(rule) for rule in _rules]
        _rules.clear()
    return cleared


def report() -> list[dict]:
    with _lock:
        return [asdict(rule) for rule in _rules]


def invocation_timeout(function_name: str) -> float | None:
    """A `timeout` rule's seconds for this invocation of `function_name`, None when no rule fires."""
    with _lock:
        for rule in _rules:
            if rule.action == "timeout" and rule.function == function_name and rule.take():
                return rule.seconds
    return None


def serve(environ, start_response, app, service: str | None, operation: str | None, body: bytes):
    """Serve one AWS request through `app` (a WSGI callable), with whatever fault a rule injects into it."""
    with _lock:
        fired = next((rule for rule in _rules if rule.matches(service, operation, body) and rule.take()), None)
    if fired is None:
        return app(environ, start_response)
    if fired.action == "throttle":
        start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(_THROTTLED))),
                                           ("x-amzn-ErrorType", "ProvisionedThroughputExceededException")])
        return [_THROTTLED]
    if fired.action == "stall":
        time.sleep(fired.seconds)
        return app(environ, start_response)
    if fired.action in ("drop-after", "kill-worker"):
        environ["wsgi.input"] = io.BytesIO(body)
        b"".join(app(environ, lambda *args, **kwargs: None))  # served; its answer is never sent
        if fired.action == "kill-worker":
            from .lambda_service import service as lambda_service

            lambda_service().kill_running(fired.function)
    return _drop(environ, start_response)


def _drop(environ, start_response):
    """Close the client's connection with no answer (the server then fails to write one, and moves on)."""
    connection = environ.get("werkzeug.socket")
    if connection is not None:
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    start_response("500 Internal Server Error", [("Content-Length", "0")])
    return [b""]


def _names_table(body: bytes, table: str) -> bool:
    try:
        request: Any = json.loads(body or b"{}")
    except ValueError:
        return False
    if not isinstance(request, dict):
        return False
    return request.get("TableName") == table or table in (request.get("RequestItems") or {})
