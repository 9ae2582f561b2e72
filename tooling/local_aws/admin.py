"""Python helpers for the emulator's admin endpoints (tooling/local_aws/server.py): for tests and tools.

    from tooling.local_aws import admin
    admin.advance_clock(endpoint, 3600)   # an hour passes for SQS, the Lambda workers, logs and metrics
    admin.flush_metrics(endpoint)         # before reading metrics: async invocations done, gauges published
"""
from __future__ import annotations

import json
import urllib.request


def _call(endpoint: str, method: str, path: str, body: dict | None = None, timeout: float = 600) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{endpoint}/_patternwatch/{path}", data=data, method=method,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def platform_clock(endpoint: str) -> dict:
    """{"offsetSeconds", "now"}: the platform clock's offset from real time, and its time (epoch seconds)."""
    return _call(endpoint, "GET", "clock")


def advance_clock(endpoint: str, seconds: float) -> float:
    """Move the platform clock forward; returns the new offset in seconds."""
    return _call(endpoint, "POST", "clock", {"advanceSeconds": seconds})["offsetSeconds"]


def reset_clock(endpoint: str) -> None:
    _call(endpoint, "POST", "clock", {"reset": True})


def flush_metrics(endpoint: str) -> dict:
    """Wait for queued asynchronous invocations, then publish the SQS and Kinesis metrics now."""
    return _call(endpoint, "POST", "metrics/flush", {})


def wait_for_async(endpoint: str, timeout: float = 300) -> bool:
    """Block until every EventBridge retry and queued asynchronous invocation (and its retries) has finished."""
    return _call(endpoint, "POST", "lambda/wait", {"timeout": timeout})["asyncDrained"]


def fire_rule(endpoint: str, rule: str, *, region: str | None = None, when: float | None = None, wait: bool = True) -> dict:
    """Deliver the event a scheduled rule would deliver now to its targets (and wait for what it started)."""
    body: dict = {"rule": rule, "wait": wait}
    if region:
        body["region"] = region
    if when is not None:
        body["time"] = when
    return _call(endpoint, "POST", "events/fire", body)


def lambda_stats(endpoint: str) -> dict:
    return _call(endpoint, "GET", "lambda/stats")


def events_stats(endpoint: str) -> dict:
    """{"retriesPending", "undeliverable"}: EventBridge retries still to run, events no dead-letter queue took."""
    return _call(endpoint, "GET", "events/stats")


def call_counts(endpoint: str) -> dict:
    """{"calls": {"service.Operation": n}, "dynamodb": {table: {"writeUnits", "readUnits", ...}}}: running totals."""
    return _call(endpoint, "GET", "calls")


def set_faults(endpoint: str, rules: list[dict]) -> list[dict]:
    """Replace the emulator's fault rules (tooling/local_aws/faults.py); returns them as set."""
    return _call(endpoint, "POST", "faults", {"rules": rules})["rules"]


def clear_faults(endpoint: str) -> list[dict]:
    """Remove every fault rule; returns them with what each saw (`seen`) and injected (`fired`)."""
    return _call(endpoint, "DELETE", "faults")["rules"]
