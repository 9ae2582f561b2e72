"""The local Lambda service: every invocation on the emulator runs the deployed code in a worker process.

moto answers Invoke by starting a Docker container, which this machine does not have. The emulator
replaces that (install() in this package) with this service, so everything that invokes a function
goes through it: `lambda.invoke` from any client (the trigger runner's event source mappings, the
power tuner's executor), Step Functions Lambda tasks, EventBridge targets, API Gateway proxy routes
and moto's own internal callers (SNS subscriptions, for one).

How it behaves like Lambda:
- One execution environment (worker process, tooling/local_aws/worker.py) per function version and
  configuration, kept warm between invocations; overlapping invocations start more. Workers idle for
  IDLE_SECONDS are stopped.
- A worker starts with the version's handler, environment variables, memory size and timeout, and the
  code of that version's zip and layers as stored in the emulator (function_code.py), never the source
  tree. Third-party packages come from the project's environment (the layer's are built for arm64).
- Results and errors are Lambda's: FunctionError=Unhandled with errorMessage/errorType/stackTrace for
  an exception; `Sandbox.Timedout` ("Task timed out after N seconds", the worker is killed);
  `Runtime.ExitError` when the process dies; `Runtime.ImportModuleError` and friends when the handler
  cannot be loaded (the environment is discarded, the next invocation starts a new one).
- Reserved concurrency throttles (TooManyRequestsException); the local account allows
  ACCOUNT_CONCURRENCY environments at once.
- Asynchronous invocations (InvocationType=Event) are queued and retried twice on error (after RETRY_DELAYS
  seconds: Lambda waits about one and two minutes); after that the event goes to the function's
  on-failure destination or dead-letter queue, and otherwise is counted in AsyncEventsDropped and kept
  in `dropped_events` (admin endpoint), so no event is lost silently.
- Each invocation's log lines go to /aws/lambda/<name> (one stream per environment, named as Lambda
  names them) between START and END/REPORT lines; EMF lines become metrics; AWS/Lambda metrics
  (Invocations, Errors, Throttles, Duration, ConcurrentExecutions, async counters) are put per
  invocation with the FunctionName and FunctionName+Resource dimensions.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import clock, faults, function_code, telemetry

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CODE_CACHE = PROJECT_ROOT / ".local" / "lambda-code"
WORKER_SCRIPT = Path(__file__).with_name("worker.py")
IDLE_SECONDS = float(os.environ.get("PATTERNWATCH_LAMBDA_IDLE_SECONDS", "300"))
ACCOUNT_CONCURRENCY = int(os.environ.get("PATTERNWATCH_LAMBDA_CONCURRENCY", "16"))
RETRY_DELAYS = (1.0, 2.0)
# Lambda gives the init phase 10 s (more when the function's timeout is longer, as it then re-runs init on invoke).
INIT_SECONDS = 10.0
DEFAULT_RETRY_ATTEMPTS = 2
END_MARKER = "\x1epatternwatch-end "
# Top-level packages of this repository: inside a worker they may only come from the deployed code.
OWN_PACKAGES = tuple(sorted({p.name for p in (PROJECT_ROOT / "lambda_src").iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
                            | {"patternwatch_infra", "tooling", "tests"}))


class ServiceError(Exception):
    """An error of the Lambda API itself (not of the function): answered as an HTTP error."""

    def __init__(self, status: int, error_type: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message, self.extra = status, error_type, message, extra


@dataclasses.dataclass
class InvokeResult:
    status: int
    payload: bytes
    function_error: str | None = None
    executed_version: str = "$LATEST"
    log_tail: str = ""
    request_id: str = ""


@dataclasses.dataclass(frozen=True)
class Target:
    """One invocation's function version, resolved from the emulator's Lambda state."""

    account: str
    region: str
    name: str
    version: str
    alias: str | None
    invoked_arn: str
    unqualified_arn: str
    handler: str
    timeout: int
    memory: int
    environment: tuple[tuple[str, str], ...]
    code_sha256: str
    layer_arns: tuple[str, ...]
    reserved_concurrency: int | None

    @property
    def key(self) -> str:
        config = json.dumps([self.unqualified_arn, self.version, self.handler, self.timeout, self.memory, self.environment,
                             self.code_sha256, self.layer_arns])
        return hashlib.sha256(config.encode()).hexdigest()

    @property
    def resource(self) -> str | None:
        """The `Resource` metric dimension: Name:alias or Name:version when the caller qualified the name."""
        if self.alias:
            return f"{self.name}:{self.alias}"
        return f"{self.name}:{self.version}" if self.invoked_arn.count(":") == 7 else None


def _backend(account: str, region: str):
    from moto.awslambda.models import lambda_backends

    return lambda_backends[account][region]


def resolve(account: str, region: str, name_or_arn: str, qualifier: str | None = None) -> tuple[Target, Any]:
    """The function version an invocation runs; an alias with a routing config picks by weight, as Lambda does."""
    from moto.awslambda.exceptions import UnknownFunctionException

    backend = _backend(account, region)
    name, arn_qualifier = _split_name(name_or_arn)
    qualifier = arn_qualifier or qualifier
    alias = None
    try:
        if qualifier and qualifier != "$LATEST" and not qualifier.isdigit():
            aliases = backend._lambdas._get_function_aliases(name)
            if qualifier not in aliases:
                raise backend._lambdas.construct_unknown_function_exception(name, qualifier)
            alias_object = aliases[qualifier]
            alias = qualifier
            version = _weighted_version(alias_object)
            fn = backend.get_function(name, version)
        else:
            fn = backend.get_function(name, qualifier)
    except UnknownFunctionException as error:
        raise ServiceError(404, "ResourceNotFoundException", error.message) from None
    unqualified = fn.function_arn.split(":function:")[0] + f":function:{fn.function_name}"
    invoked = f"{unqualified}:{qualifier}" if qualifier else unqualified
    layers = tuple(layer["Arn"] for layer in (fn.layers or []))
    # Reserved concurrency belongs to the function, not to a version: moto keeps it on $LATEST.
    reserved = backend.get_function(fn.function_name).reserved_concurrency
    target = Target(
        account=account,
        region=region,
        name=fn.function_name,
        version=str(fn.version),
        alias=alias,
        invoked_arn=invoked,
        unqualified_arn=unqualified,
        handler=fn.handler,
        timeout=int(fn.timeout or 3),
        memory=int(fn.memory_size or 128),
        environment=tuple(sorted((fn.environment_vars or {}).items())),
        code_sha256=fn.code_sha_256,
        layer_arns=layers,
        reserved_concurrency=int(reserved) if reserved not in (None, "") else None,
    )
    return target, fn


def _split_name(name_or_arn: str) -> tuple[str, str | None]:
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        return parts[6], (parts[7] if len(parts) > 7 else None)
    if ":" in name_or_arn:
        name, qualifier = name_or_arn.split(":", 1)
        return name, qualifier
    return name_or_arn, None


def _weighted_version(alias) -> str:
    routing = alias.routing_config or {}
    if isinstance(routing, str):
        routing = json.loads(routing or "{}")
    weights = (routing or {}).get("AdditionalVersionWeights") or {}
    draw = random.random()
    for version, weight in weights.items():
        if draw < float(weight):
            return str(version)
        draw -= float(weight)
    return str(alias.function_version)


# --- Execution environments -----------------------------------------------------------------------

class _Outcome:
    def __init__(self, ok: bool, payload: bytes, error_type: str | None = None, status_note: str | None = None) -> None:
        self.ok, self.payload, self.error_type, self.status_note = ok, payload, error_type, status_note


class Worker:
    """A worker process: started once, then serves one invocation at a time."""

    def __init__(self, target: Target, code_dir: Path, layer_dirs: list[Path], endpoint: str) -> None:
        self.target = target
        self.stream_name = f"{clock.now_datetime():%Y/%m/%d}/[{target.version}]{uuid.uuid4().hex}"
        self.last_used = time.monotonic()
        self._lines: list[tuple[int, str]] = []
        self._lines_lock = threading.Lock()
        self._markers: dict[str, threading.Event] = {}
        self._eof = threading.Event()
        self.init_ms: float | None = None
        self.init_error: dict | None = None
        request_read, self._request_write = os.pipe()
        self._response_read, response_write = os.pipe()
        third_party = [p for p in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])]
        spec = {"task_root": str(code_dir), "layer_roots": [str(d / "python") for d in layer_dirs], "third_party": third_party,
                "own_packages": list(OWN_PACKAGES)}
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_SESSION_TOKEN": "test",
            # The emulator: Lambda has no such variable, the handlers' clients honour it (patternwatch_shared.aws).
            "AWS_ENDPOINT_URL": endpoint,
            # No X-Ray daemon runs locally; traces would only produce connection warnings.
            "POWERTOOLS_TRACE_DISABLED": "true",
            **dict(target.environment),
            "_HANDLER": target.handler,
            "AWS_REGION": target.region,
            "AWS_DEFAULT_REGION": target.region,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "AWS_LAMBDA_FUNCTION_NAME": target.name,
            "AWS_LAMBDA_FUNCTION_VERSION": target.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(target.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(target.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{target.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": self.stream_name,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": str(code_dir),
            "PYTHONUNBUFFERED": "1",
            "_PATTERNWATCH_REQUEST_FD": str(request_read),
            "_PATTERNWATCH_RESPONSE_FD": str(response_write),
            "_PATTERNWATCH_WORKER_SPEC": json.dumps(spec),
        }
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(WORKER_SCRIPT)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=(request_read, response_write), env=env, cwd=code_dir,
        )
        os.close(request_read)
        os.close(response_write)
        self._buffer = b""
        threading.Thread(target=self._read_log, name=f"lambda-log-{target.name}", daemon=True).start()
        try:
            init = self._read_message(time.monotonic() + max(INIT_SECONDS, float(target.timeout)))
        except TimeoutError:
            self.stop()
            init = {"init": "error", "error": {"errorType": "Sandbox.Timedout", "errorMessage": "INIT phase timed out"}}
        self.init_ms = (time.perf_counter() - started) * 1000
        if init is None:
            self.init_error = {"errorType": "Runtime.ExitError", "errorMessage": f"Error: Runtime exited with error: {self._exit_status()}"}
        elif init.get("init") != "ok":
            self.init_error = init.get("error")
        else:
            self.init_ms = float(init.get("init_ms", self.init_ms))

    # -- plumbing -----------------------------------------------------------------------------------

    def _read_log(self) -> None:
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith(END_MARKER):
                self._markers.setdefault(line[len(END_MARKER):], threading.Event()).set()
                continue
            with self._lines_lock:
                self._lines.append((int(clock.now() * 1000), line))
        self._eof.set()

    def take_lines(self) -> list[tuple[int, str]]:
        with self._lines_lock:
            lines, self._lines = self._lines, []
        return lines

    def _read_message(self, deadline: float) -> dict | None:
        """One JSON line from the response pipe; None on EOF; TimeoutError past the deadline."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self._response_read], [], [], remaining)
            if not ready:
                raise TimeoutError
            chunk = os.read(self._response_read, 1 << 20)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def _exit_status(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "unknown"
        return f"signal: {signal.Signals(-code).name.lower().removeprefix('sig')}" if code < 0 else f"exit status {code}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and self.init_error is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self._request_write, self._response_read):
            try:
                os.close(fd)
            except OSError:
                pass

    def max_memory_mb(self) -> int:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return max(1, int(line.split()[1]) // 1024)
        except OSError:
            pass
        return 0

    # -- one invocation -----------------------------------------------------------------------------

    def invoke(self, request_id: str, event: bytes, invoked_arn: str, timeout: float | None = None) -> _Outcome:
        """One invocation; `timeout` (an injected fault, faults.py) replaces the function's configured one."""
        timeout = self.target.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        request = {
            "request_id": request_id,
            "event": event.decode("utf-8") if event else "{}",
            "invoked_function_arn": invoked_arn,
            "remaining_ms": timeout * 1000,
            "clock_offset": clock.offset(),
            "trace_id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0",
        }
        try:
            os.write(self._request_write, (json.dumps(request) + "\n").encode())
            answer = self._read_message(deadline)
        except TimeoutError:
            self.stop()
            self._eof.wait(2)
            message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
            return _Outcome(False, _json({"errorType": "Sandbox.Timedout", "errorMessage": message}), "Unhandled", "timeout")
        except (BrokenPipeError, OSError):
            answer = None
        if answer is None:  # the process died during the invocation
            status = self._exit_status()
            self._eof.wait(2)
            message = f"RequestId: {request_id} Error: Runtime exited with error: {status}"
            return _Outcome(False, _json({"errorType": "Runtime.ExitError", "errorMessage": message}), "Unhandled", "error")
        marker = self._markers.setdefault(request_id, threading.Event())
        marker.wait(5)  # every line the invocation printed has been read once the marker arrives
        self._markers.pop(request_id, None)
        self.last_used = time.monotonic()
        if answer.get("ok"):
            return _Outcome(True, answer["payload"].encode("utf-8"))
        return _Outcome(False, _json(answer["error"]), "Unhandled")


def _json(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


# --- The service -------------------------------------------------------------------------------

@dataclasses.dataclass
class _AsyncEvent:
    account: str
    region: str
    name_or_arn: str
    qualifier: str | None
    payload: bytes
    request_id: str
    received: float
    attempts: int = 0


class LambdaService:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._idle: dict[str, list[Worker]] = {}
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._running: dict[str, set[Worker]] = {}
        self._total_in_flight = 0
        self._async = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lambda-async")
        self._async_pending = 0
        self._async_idle = threading.Condition(self._lock)
        self.invocations = 0
        self.cold_starts = 0
        self.errors = 0
        self.dropped_events: list[dict] = []
        self._stopped = False
        threading.Thread(target=self._reap_idle, name="lambda-reaper", daemon=True).start()

    # -- API ----------------------------------------------------------------------------------------

    def invoke(self, account: str, region: str, name_or_arn: str, qualifier: str | None, payload: bytes,
               invocation_type: str = "RequestResponse", log_type: str | None = None) -> InvokeResult:
        if invocation_type == "DryRun":
            target, _ = resolve(account, region, name_or_arn, qualifier)
            return InvokeResult(204, b"", executed_version=target.version)
        if invocation_type == "Event":
            target, _ = resolve(account, region, name_or_arn, qualifier)  # unknown functions fail at once, as in Lambda
            request_id = str(uuid.uuid4())
            self._enqueue(_AsyncEvent(account, region, name_or_arn, qualifier, payload, request_id, time.monotonic()))
            self._put_lambda_metrics(target, {"AsyncEventsReceived": (1, "Count")})
            return InvokeResult(202, b"", executed_version=target.version, request_id=request_id)
        return self._run(account, region, name_or_arn, qualifier, payload, log_type=log_type)

    def wait_for_async(self, timeout: float = 120.0) -> bool:
        """Block until every queued asynchronous invocation (with its retries) has finished."""
        deadline = time.monotonic() + timeout
        with self._async_idle:
            while self._async_pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._async_idle.wait(remaining)
        return True

    def stats(self) -> dict:
        with self._lock:
            workers = {key: len(v) for key, v in self._idle.items() if v}
            return {"invocations": self.invocations, "coldStarts": self.cold_starts, "errors": self.errors,
                    "idleWorkers": sum(workers.values()), "inFlight": self._total_in_flight,
                    "asyncPending": self._async_pending, "droppedEvents": list(self.dropped_events)}

    def kill_running(self, function_name: str | None) -> int:
        """Kill the worker processes in an invocation of `function_name` (an injected fault); how many."""
        with self._lock:
            workers = list(self._running.get(function_name or "", ()))
        for worker in workers:
            worker.process.kill()
        return len(workers)

    def shutdown(self) -> None:
        self._stopped = True
        with self._lock:
            workers = [w for pool in self._idle.values() for w in pool]
            self._idle.clear()
        for worker in workers:
            worker.stop()

    # -- synchronous invocation -----------------------------------------------------------------------

    def _run(self, account: str, region: str, name_or_arn: str, qualifier: str | None, payload: bytes, *,
             log_type: str | None = None, request_id: str | None = None) -> InvokeResult:
        target, fn = resolve(account, region, name_or_arn, qualifier)
        request_id = request_id or str(uuid.uuid4())
        self._admit(target)
        try:
            worker, cold = self._checkout(target, fn)
            started_ms = clock.now() * 1000
            started = time.perf_counter()
            if worker.init_error is not None:
                outcome = _Outcome(False, _json(worker.init_error), "Unhandled", "error")
            else:
                with self._lock:
                    self._running.setdefault(target.name, set()).add(worker)
                try:
                    outcome = worker.invoke(request_id, payload, target.invoked_arn, faults.invocation_timeout(target.name))
                finally:
                    with self._lock:
                        self._running[target.name].discard(worker)
            duration_ms = (time.perf_counter() - started) * 1000
            lines = worker.take_lines()
            memory = worker.max_memory_mb()
            self._checkin(target, worker)
        finally:
            self._release(target)
        logged = self._record(target, worker, request_id, cold, started_ms, duration_ms, memory, outcome, lines)
        tail = ""
        if log_type == "Tail":  # the last 4 KB of the invocation's log, REPORT line included, as Lambda returns it
            tail = base64.b64encode(("\n".join(line for _, line in logged) + "\n").encode()[-4096:]).decode()
        return InvokeResult(200, outcome.payload, None if outcome.ok else outcome.error_type, target.version, tail, request_id)

    def _admit(self, target: Target) -> None:
        with self._lock:
            running = self._in_flight.get(target.name, 0)
            limit = target.reserved_concurrency
            throttled = (limit is not None and running >= limit) or self._total_in_flight >= ACCOUNT_CONCURRENCY
            if not throttled:
                self._in_flight[target.name] = running + 1
                self._total_in_flight += 1
                concurrent = running + 1
        if throttled:
            self._put_lambda_metrics(target, {"Throttles": (1, "Count")})
            reason = "ReservedFunctionConcurrentInvocationLimitExceeded" if limit is not None and running >= limit else "ConcurrentInvocationLimitExceeded"
            raise ServiceError(429, "TooManyRequestsException", "Rate Exceeded.", Reason=reason, Type="User")
        self._put_lambda_metrics(target, {"ConcurrentExecutions": (concurrent, "Count")})

    def _release(self, target: Target) -> None:
        with self._lock:
            self._in_flight[target.name] -= 1
            self._total_in_flight -= 1

    def _checkout(self, target: Target, fn) -> tuple[Worker, bool]:
        key = target.key
        with self._lock:
            pool = self._idle.get(key, [])
            while pool:
                worker = pool.pop()
                if worker.alive:
                    return worker, False
                worker.stop()
        code_dir, layer_dirs = self._code(target, fn)
        worker = Worker(target, code_dir, layer_dirs, self.endpoint)
        with self._lock:
            self.cold_starts += 1
        return worker, True

    def _checkin(self, target: Target, worker: Worker) -> None:
        if not worker.alive or self._stopped:
            worker.stop()
            return
        with self._lock:
            self._idle.setdefault(target.key, []).append(worker)

    def _code(self, target: Target, fn) -> tuple[Path, list[Path]]:
        if not fn.code_bytes:
            raise ServiceError(400, "InvalidParameterValueException", f"{target.name} has no zip package the local service can run")
        code_dir = function_code.unpacked(CODE_CACHE, "function", fn.code_bytes)
        backend = _backend(target.account, target.region)
        layer_dirs = []
        for arn in target.layer_arns:
            layer = backend.layers_versions_by_arn(arn)
            layer_dirs.append(function_code.unpacked(CODE_CACHE, "layer", layer.code_bytes, skip_third_party=True))
        return code_dir, layer_dirs

    def _reap_idle(self) -> None:
        while not self._stopped:
            time.sleep(min(30.0, IDLE_SECONDS))
            cutoff = time.monotonic() - IDLE_SECONDS
            with self._lock:
                stale = [w for pool in self._idle.values() for w in pool if w.last_used < cutoff]
                for key in list(self._idle):
                    self._idle[key] = [w for w in self._idle[key] if w.last_used >= cutoff]
            for worker in stale:
                worker.stop()

    # -- logs and metrics ---------------------------------------------------------------------------

    def _record(self, target: Target, worker: Worker, request_id: str, cold: bool, started_ms: float, duration_ms: float,
                memory_mb: int, outcome: _Outcome, lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
        with self._lock:
            self.invocations += 1
            if not outcome.ok:
                self.errors += 1
        end_ms = int(clock.now() * 1000)
        events = [(int(started_ms), f"START RequestId: {request_id} Version: {target.version}")]
        events += [(max(ts, int(started_ms)), line) for ts, line in lines]
        if outcome.status_note == "timeout":
            events.append((end_ms, f"{clock.now_datetime():%Y-%m-%dT%H:%M:%S.%f}Z {request_id} Task timed out after {target.timeout:.2f} seconds"))
        elif outcome.status_note == "error":
            error = json.loads(outcome.payload)
            events.append((end_ms, f"{error.get('errorMessage')}\n{error.get('errorType')}"))
        events.append((end_ms, f"END RequestId: {request_id}"))
        report = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {max(1, int(-(-duration_ms // 1)))} ms\t"
                  f"Memory Size: {target.memory} MB\tMax Memory Used: {memory_mb} MB")
        if cold and worker.init_ms is not None:
            report += f"\tInit Duration: {worker.init_ms:.2f} ms"
        if outcome.status_note:
            report += f"\tStatus: {outcome.status_note}"
        events.append((end_ms, report))
        group = f"/aws/lambda/{target.name}"
        telemetry.write_log_events(target.account, target.region, group, worker.stream_name, events)
        telemetry.publish_emf(target.account, target.region, (line for _, line in lines))
        self._put_lambda_metrics(target, {
            "Invocations": (1, "Count"),
            "Errors": (0 if outcome.ok else 1, "Count"),
            "Duration": (duration_ms, "Milliseconds"),
        }, executed_version=target.version)
        return events

    def _put_lambda_metrics(self, target: Target, values: dict[str, tuple[float, str]], executed_version: str | None = None) -> None:
        dimension_sets = [{"FunctionName": target.name}]
        if target.resource:
            dimension_sets.append({"FunctionName": target.name, "Resource": target.resource})
            if target.alias and executed_version:
                dimension_sets.append({"FunctionName": target.name, "Resource": target.resource, "ExecutedVersion": executed_version})
        if "ConcurrentExecutions" in values:
            dimension_sets.append({})
        data = [telemetry.metric(name, value, unit, dims) for name, (value, unit) in values.items() for dims in dimension_sets
                if dims or name == "ConcurrentExecutions"]
        telemetry.put_metrics(target.account, target.region, "AWS/Lambda", data)

    # -- asynchronous invocation ----------------------------------------------------------------------

    def _enqueue(self, event: _AsyncEvent, delay: float = 0.0) -> None:
        with self._lock:
            self._async_pending += 1
        self._async.submit(self._run_async, event, delay)

    def _run_async(self, event: _AsyncEvent, delay: float) -> None:
        try:
            if delay:
                time.sleep(delay)
            self._attempt_async(event)
        finally:
            with self._async_idle:
                self._async_pending -= 1
                self._async_idle.notify_all()

    def _attempt_async(self, event: _AsyncEvent) -> None:
        event.attempts += 1
        try:
            result = self._run(event.account, event.region, event.name_or_arn, event.qualifier, event.payload, request_id=event.request_id)
            error = None if result.function_error is None else json.loads(result.payload or b"{}")
            version = result.executed_version
        except ServiceError as failure:
            if failure.status == 404:
                self._drop(event, {"errorType": failure.error_type, "errorMessage": failure.message}, None)
                return
            error, version = {"errorType": failure.error_type, "errorMessage": failure.message}, "$LATEST"
        target, fn = resolve(event.account, event.region, event.name_or_arn, event.qualifier)
        config = _event_invoke_config(fn)
        if error is None:
            on_success = config.get("DestinationConfig", {}).get("OnSuccess", {}).get("Destination")
            if on_success:
                self._send_record(target, on_success, _invocation_record(target, event, "Success", version, None, json.loads(result.payload or b"null")))
            return
        retries = int(config.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS))
        max_age = float(config.get("MaximumEventAgeInSeconds", 21600))
        if event.attempts <= retries and time.monotonic() - event.received < max_age:
            self._enqueue(event, RETRY_DELAYS[min(event.attempts - 1, len(RETRY_DELAYS) - 1)])
            return
        self._fail_async(target, fn, config, event, error, version)

    def _fail_async(self, target: Target, fn, config: dict, event: _AsyncEvent, error: dict, version: str) -> None:
        on_failure = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        dead_letter = (getattr(fn, "dead_letter_config", None) or {}).get("TargetArn")
        if on_failure:
            self._send_record(target, on_failure, _invocation_record(target, event, "RetriesExhausted", version, error, None))
        elif dead_letter:
            self._send_dead_letter(target, dead_letter, event, error)
        else:
            self._drop(event, error, target)

    def _drop(self, event: _AsyncEvent, error: dict, target: Target | None) -> None:
        record = {"function": event.name_or_arn, "requestId": event.request_id, "attempts": event.attempts, "error": error,
                  "event": event.payload.decode("utf-8", "replace")}
        with self._lock:
            self.dropped_events.append(record)
        print(f"local lambda: dropped async event {event.request_id} for {event.name_or_arn} after {event.attempts} attempt(s): "
              f"{error.get('errorType')}", flush=True)
        if target is not None:
            self._put_lambda_metrics(target, {"AsyncEventsDropped": (1, "Count")})

    def _send_record(self, target: Target, destination: str, record: dict) -> None:
        deliver_to_arn(target.account, target.region, destination, json.dumps(record), self)

    def _send_dead_letter(self, target: Target, destination: str, event: _AsyncEvent, error: dict) -> None:
        attributes = {"RequestID": event.request_id, "ErrorCode": "200", "ErrorMessage": str(error.get("errorMessage", ""))[:256]}
        deliver_to_arn(target.account, target.region, destination, event.payload.decode("utf-8"), self, attributes=attributes)


def _event_invoke_config(fn) -> dict:
    """The retry limits and destinations for asynchronous invocations. moto keeps them on $LATEST whatever
    the qualifier they were put for (our stacks put them on `live`), as it does reserved concurrency."""
    latest = _backend(fn.account_id, fn.region).get_function(fn.function_name)
    configs = getattr(latest, "event_invoke_config", None) or []
    return configs[-1].config if configs else {}


def _invocation_record(target: Target, event: _AsyncEvent, condition: str, version: str, error: dict | None, response: Any) -> dict:
    return {
        "version": "1.0",
        "timestamp": clock.now_datetime().isoformat().replace("+00:00", "Z"),
        "requestContext": {"requestId": event.request_id, "functionArn": target.invoked_arn, "condition": condition,
                           "approximateInvokeCount": event.attempts},
        "requestPayload": json.loads(event.payload or b"null"),
        "responseContext": {"statusCode": 200, "executedVersion": version, **({"functionError": "Unhandled"} if error else {})},
        "responsePayload": error if error is not None else response,
    }


def deliver_to_arn(account: str, region: str, arn: str, message: str, service: LambdaService, *, attributes: dict | None = None) -> None:
    """Send a message to an SQS queue, SNS topic, Lambda function or EventBridge bus, as destinations do."""
    parts = arn.split(":")
    kind = parts[2]
    if kind == "sqs":
        from moto.sqs.models import sqs_backends

        message_attributes = {k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()}
        sqs_backends[parts[4]][parts[3]].send_message(parts[5], message, message_attributes=message_attributes)
    elif kind == "sns":
        from moto.sns.models import sns_backends

        message_attributes = {k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()}
        sns_backends[parts[4]][parts[3]].publish(message, arn=arn, message_attributes=message_attributes)
    elif kind == "lambda":
        service.invoke(parts[4], parts[3], arn, None, message.encode(), invocation_type="Event")
    elif kind == "events":
        from moto.events.models import events_backends

        events_backends[parts[4]][parts[3]].put_events(
            [{"Source": "lambda", "DetailType": "Lambda Function Invocation Result", "Detail": message, "EventBusName": arn}]
        )
    else:
        raise ServiceError(400, "InvalidParameterValueException", f"unsupported destination {arn}")


_service: LambdaService | None = None
_service_lock = threading.Lock()


def service() -> LambdaService:
    global _service
    with _service_lock:
        if _service is None:
            host = os.environ.get("MOTO_HOST", "127.0.0.1")
            _service = LambdaService(f"http://{host}:{os.environ.get('MOTO_PORT', '5000')}")
        return _service


