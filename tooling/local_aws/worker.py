"""One Lambda execution environment: the process the local Lambda service starts for a function version.

Run as `<venv python> -I -S worker.py` by tooling/local_aws/lambda_service.py, never imported. `-I` keeps
the script's folder, the current directory and PYTHON* variables off sys.path; `-S` skips site, so no
.pth file runs and neither the source tree nor an editable install of this project can be imported. The
path is then built the way the Lambda runtime builds it: the function's code (LAMBDA_TASK_ROOT), then
each layer's `python/` folder, then the project environment's site-packages for the third-party
packages (the layer carries them for arm64, which this machine cannot load).

Protocol (one JSON object per line): the service writes requests on the file descriptor in
_PATTERNWATCH_REQUEST_FD and reads answers on _PATTERNWATCH_RESPONSE_FD. stdout and stderr are the
function's log: everything the code prints, as in Lambda. After each invocation the worker writes an
end marker to stdout, so the service knows every line of that invocation has arrived.
"""
import json
import os
import sys
import time
import traceback

MARKER = "\x1epatternwatch-end "  # never printed by function code: a record separator starts it


def _setup_path(spec):
    sys.path[:] = [p for p in sys.path if p]  # stdlib only at this point (-I -S)
    sys.path.insert(0, spec["task_root"])
    for layer in spec["layer_roots"]:
        sys.path.append(layer)
    for site_packages in spec["third_party"]:
        sys.path.append(site_packages)
    # Belt and braces: a finder an editable install registered can never be active here, drop any anyway.
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
    sys.meta_path.insert(0, _DeployedCodeOnly(spec["own_packages"], [spec["task_root"], *spec["layer_roots"]]))


class _DeployedCodeOnly:
    """This project's own packages load only from the function's zip or its layers, never from the environment.

    Were the project ever installed into the environment, a module missing from the zip would otherwise
    be found there, and a packaging mistake would pass locally.
    """

    def __init__(self, names, roots):
        self._names = set(names)
        self._roots = list(roots)

    def find_spec(self, fullname, path=None, target=None):
        if path is not None or fullname not in self._names:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, self._roots)
        if spec is None:
            raise ModuleNotFoundError(f"No module named '{fullname}'", name=fullname)
        return spec


def _error(exc, error_type=None, message=None):
    return {
        "errorMessage": message if message is not None else str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        # Only the function's own frames, as Lambda shows them (never this bootstrap's).
        "stackTrace": traceback.format_list([f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__])
        if exc is not None else [],
    }


class Context:
    """The Lambda context object (the attributes and method handlers and Powertools read)."""

    def __init__(self, request):
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.invoked_function_arn = request["invoked_function_arn"]
        self.aws_request_id = request["request_id"]
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + request["remaining_ms"] / 1000.0

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _send(channel, message):
    channel.write(json.dumps(message, separators=(",", ":")) + "\n")
    channel.flush()


def _end_marker(request_id):
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, f"{MARKER}{request_id}\n".encode())


def _load_handler(handler):
    module_name, _, attribute = handler.rpartition(".")
    if not module_name:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)")
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    except SyntaxError as exc:
        raise _InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}") from exc
    function = getattr(module, attribute, None)
    if function is None:
        raise _InitError("Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_name}'")
    return function


class _InitError(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


def _travel(offset_seconds):
    """The platform clock: the function sees now + the offset the service was told (tooling/local_aws/clock.py)."""
    if not offset_seconds:
        return None
    import time_machine

    traveller = time_machine.travel(time.time() + offset_seconds, tick=True)
    traveller.start()
    return traveller


def main():
    requests = os.fdopen(int(os.environ.pop("_PATTERNWATCH_REQUEST_FD")), "r", encoding="utf-8")
    responses = os.fdopen(int(os.environ.pop("_PATTERNWATCH_RESPONSE_FD")), "w", encoding="utf-8")
    spec = json.loads(os.environ.pop("_PATTERNWATCH_WORKER_SPEC"))
    _setup_path(spec)
    os.chdir(spec["task_root"])

    started = time.perf_counter()
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except _InitError as exc:
        print(f"[ERROR] {exc.error_type}: {exc}", flush=True)
        _send(responses, {"init": "error", "error": _error(exc, exc.error_type), "init_ms": (time.perf_counter() - started) * 1000})
        return 0
    except BaseException as exc:  # the code failed while it ran at import time
        traceback.print_exc()
        _send(responses, {"init": "error", "error": _error(exc, f"Runtime.Unknown"), "init_ms": (time.perf_counter() - started) * 1000})
        return 0
    _send(responses, {"init": "ok", "init_ms": (time.perf_counter() - started) * 1000})

    for line in requests:
        request = json.loads(line)
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id", "")
        traveller = _travel(request.get("clock_offset", 0))
        try:
            result = handler(json.loads(request["event"]), Context(request))
            try:
                answer = {"id": request["request_id"], "ok": True, "payload": json.dumps(result)}
            except (TypeError, ValueError) as exc:
                error = _error(exc, "Runtime.MarshalError", f"Unable to marshal response: {exc}")
                answer = {"id": request["request_id"], "ok": False, "error": error}
        except Exception as exc:  # an unhandled exception in the function: Lambda reports it, the environment lives on
            error = _error(exc)
            error["requestId"] = request["request_id"]
            print(json.dumps({"timestamp": _iso_now(), "level": "ERROR", "message": error["errorMessage"],
                              "errorType": error["errorType"], "requestId": request["request_id"],
                              "stackTrace": error["stackTrace"]}), flush=True)
            answer = {"id": request["request_id"], "ok": False, "error": error}
        finally:
            if traveller is not None:
                traveller.stop()
        _end_marker(request["request_id"])
        _send(responses, answer)
    return 0


def _iso_now():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


if __name__ == "__main__":
    sys.exit(main())
