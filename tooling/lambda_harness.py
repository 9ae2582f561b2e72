"""Run Lambda handlers in this process: the one Lambda context fake and the one in-process invoker.

The local trigger runner, the power tuner's local mode, the tests and the benchmarks all use these,
so a handler sees the same context object and the same environment handling everywhere it runs
outside Lambda:

- `LambdaContext`: the attributes of Lambda's context object that handlers and Powertools read, with
  a real deadline for `get_remaining_time_in_millis`;
- `invoke`: runs a handler (a callable or a `module.function` path) with a function's environment
  variables applied for the call only and its stdout (JSON logs, EMF metrics) sent where you say, and
  returns an `Invocation`: the response or the exception, and how long the handler ran;
- `local_runtime_environment`: what the Lambda runtime itself would set, for a function running
  against the local emulator.

Tooling, tests and benchmarks may import this; the product (patternwatch_infra, lambda_src) never does.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from patternwatch_shared.names.functions import ENV_AWS_ENDPOINT_URL, ENV_POWERTOOLS_TRACE_DISABLED

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
# Emulator credentials: moto accepts any, and these can never be mistaken for real ones.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


@dataclass
class LambdaContext:
    """Lambda's context object, as far as handlers and Powertools read it."""

    function_name: str = "patternwatch-test"
    memory_limit_in_mb: int = 512
    timeout_seconds: int = 30
    function_version: str = "$LATEST"
    invoked_function_arn: str = ""  # default: the unqualified ARN of function_name
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""  # default: /aws/lambda/<function_name>
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.invoked_function_arn = self.invoked_function_arn or (
            f"arn:aws:lambda:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:function:{self.function_name}"
        )
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Invocation:
    """What one in-process invocation gave: the handler's return value, or the exception it raised."""

    result: Any
    error: BaseException | None
    seconds: float  # the handler call only, without environment set-up or the handler's import

    @property
    def response(self) -> Any:
        """The return value; re-raises the handler's exception, as a synchronous Lambda invoke would fail."""
        if self.error is not None:
            raise self.error
        return self.result


def resolve_handler(handler: str | Callable[..., Any]) -> Callable[..., Any]:
    """`kinesis_consumer.handler.lambda_handler` -> the function (imported once, then from sys.modules)."""
    if callable(handler):
        return handler
    module_name, _, attribute = handler.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {handler!r} is not <module>.<function>")
    return getattr(importlib.import_module(module_name), attribute)


@contextlib.contextmanager
def applied_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set `variables` in os.environ for the block, then put every one of them back as it was."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def invoke(
    handler: str | Callable[..., Any],
    event: Any,
    context: LambdaContext,
    *,
    environment: Mapping[str, str] | None = None,
    output: TextIO | None = None,
    fresh_clients: bool = False,
    timer: Callable[[], float] = time.perf_counter,
) -> Invocation:
    """Run `handler(event, context)` with `environment` applied and stdout going to `output` (if given).

    `fresh_clients` drops patternwatch_shared's cached boto3 clients first, so they are built again
    under this function's environment (endpoint, region, credentials).
    """
    redirect = contextlib.redirect_stdout(output) if output is not None else contextlib.nullcontext()
    with applied_environment(environment or {}), redirect:
        # Imported here, under the function's environment: Powertools reads its settings at import.
        function = resolve_handler(handler)
        if fresh_clients:
            from patternwatch_shared import aws

            aws.reset_clients()
        started = timer()
        try:
            result, error = function(event, context), None
        except Exception as exc:  # the caller decides: a failed invocation is a result, not a crash here
            result, error = None, exc
        seconds = timer() - started
        if output is not None:
            output.flush()
    return Invocation(result=result, error=error, seconds=seconds)


def local_runtime_environment(context: LambdaContext, *, region: str, endpoint: str | None = None) -> dict[str, str]:
    """What the Lambda runtime sets for a function, for running it here (against the emulator at `endpoint`).

    No X-Ray daemon runs locally, so tracing is off: traces would only produce connection warnings.
    """
    variables = {
        "AWS_LAMBDA_FUNCTION_NAME": context.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(context.memory_limit_in_mb),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        ENV_POWERTOOLS_TRACE_DISABLED: "true",
    }
    if endpoint:
        variables.update({ENV_AWS_ENDPOINT_URL: endpoint, **EMULATOR_CREDENTIALS})
    return variables
