"""The local platform's clock: one offset from real time, shared by the emulator and the Lambda workers.

A test advances it (`tooling.local_aws.admin.advance_clock(endpoint, 3600)`, i.e. POST /_patternwatch/clock)
instead of sleeping. Inside the emulator the offset moves:
- SQS: visibility timeouts, delivery delays, message retention and the Sent/FirstReceive timestamps
  (moto's SQS reads the time through `unix_time`/`unix_time_millis`, which are replaced here);
- the Lambda workers: each invocation runs under `time_machine.travel(now + offset)`, so `time.time()`
  and `datetime.now()` in function code see the platform clock (monotonic clocks keep real time, so
  timeouts still measure real seconds);
- log event and metric timestamps written by the local Lambda service, the gateway and the workflows, and
  the time CloudWatch gives a metric datum that names none (PutMetricData from the trigger runner);
- scheduled events the runner fires (their `time` field).
DynamoDB TTL is not enforced by moto at all, so it has no clock to move.

The offset only grows or is reset: time never runs backwards for code that already saw it.
"""
from __future__ import annotations

import datetime as _dt
import threading
import time

_lock = threading.Lock()
_offset_seconds = 0.0


def offset() -> float:
    return _offset_seconds


def now() -> float:
    """Epoch seconds on the platform clock."""
    return time.time() + _offset_seconds


def now_datetime() -> _dt.datetime:
    return _dt.datetime.fromtimestamp(now(), _dt.timezone.utc)


def advance(seconds: float) -> float:
    global _offset_seconds
    if seconds < 0:
        raise ValueError("the platform clock only moves forward; reset it instead")
    with _lock:
        _offset_seconds += seconds
        return _offset_seconds


def reset() -> None:
    global _offset_seconds
    with _lock:
        _offset_seconds = 0.0


def install_moto_clock() -> None:
    """moto's SQS asks these two functions for the time; answer with the platform clock."""
    from moto.sqs import models

    models.unix_time = lambda dt=None: now() if dt is None else _real_unix_time(dt)
    models.unix_time_millis = lambda dt=None: now() * 1000.0 if dt is None else _real_unix_time(dt) * 1000.0


def install_logs_clock() -> None:
    """CloudWatch Logs accepts events up to 2 h ahead of its own clock: let that clock be the platform's. CloudWatch
    stamps a PutMetricData datum that names no time (the trigger runner's IteratorAge, say) with its own clock too."""
    from moto.cloudwatch import models as cloudwatch_models
    from moto.logs import models

    models.utcnow = lambda: now_datetime().replace(tzinfo=None)
    cloudwatch_models.utcnow = lambda: now_datetime().replace(tzinfo=None)


def _real_unix_time(value: _dt.datetime) -> float:
    from moto.core.utils import unix_time

    return unix_time(value)
