"""Step Functions executions that really run, on moto's own ASL interpreter.

moto 5.2.1 ships the Amazon States Language interpreter ported from LocalStack (moto/stepfunctions/parser).
It is switched on by moto's configuration `{"stepfunctions": {"execute_state_machine": true}}`, which
must be set before Terraform creates the machines: the machines then live in the interpreter's backend
(`stepfunctions_parser_backends`), which validates every definition with the ASL parser on create.
Its Lambda tasks call the emulator's Lambda API at localhost:$MOTO_PORT, i.e. the local Lambda service;
its SNS and SQS integrations call the emulator the same way.

What this module adds around it:
- StartExecution without a name gets a generated one (the interpreter would name it "None"), and
  EXPRESS executions get Express ARNs (`...:express:<machine>:<name>:<id>`);
- StartSyncExecution (EXPRESS only), which moto's server does not route;
- when an execution ends: the AWS/States metrics (ExecutionsStarted at start; ExecutionsSucceeded,
  ExecutionsFailed, ExecutionsTimedOut or ExecutionsAborted and ExecutionTime at the end, per
  StateMachineArn), and the execution's history written to the machine's log group as Step Functions
  writes it with level ALL (one JSON event per history event), because on AWS an EXPRESS execution's
  history is only available there. GetExecutionHistory also keeps working on the emulator.
"""
from __future__ import annotations

import copy
import datetime
import json
import re
import time
import uuid

from . import clock, telemetry

_started: dict[str, float] = {}


def enable_interpreter() -> None:
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


def machine_type(machine) -> str:
    return getattr(machine, "sm_type", None) or getattr(machine, "type", "STANDARD")


def _log_group_name(machine) -> str | None:
    from moto.stepfunctions.parser.asl.eval.event.logging import CloudWatchLoggingConfiguration

    config = getattr(machine, "loggingConfiguration", None) or {}
    if config.get("level", "OFF") == "OFF":
        return None
    parts = CloudWatchLoggingConfiguration.extract_log_arn_parts_from(config)
    return parts[2] if parts else None


def _new_execution(backend, state_machine_arn: str, name: str | None, execution_input: str | None, *, sync: bool):
    from moto.stepfunctions.parser.api import InvalidExecutionInput, StateMachineTypeNotSupported
    from moto.stepfunctions.parser.backend.execution import Execution, SyncExecution

    machine = backend.describe_state_machine(state_machine_arn)
    express = machine_type(machine) == "EXPRESS"
    if sync and not express:
        raise StateMachineTypeNotSupported("This operation is not supported by this type of state machine")
    name = name or str(uuid.uuid4())
    if not express:
        existing = machine._handle_name_input_idempotency(name, execution_input)
        if existing is not None:
            return existing
    input_data = execution_input if execution_input is not None else "{}"
    try:
        json.loads(input_data)
    except ValueError as error:
        raise InvalidExecutionInput(str(error)) from None
    if express:
        arn = f"arn:{backend.partition}:states:{backend.region_name}:{backend.account_id}:express:{machine.name}:{name}:{uuid.uuid4()}"
    else:
        arn = f"arn:{backend.partition}:states:{backend.region_name}:{backend.account_id}:execution:{machine.name}:{name}"
    # The execution keeps the machine as it is now (a later update must not change a running execution);
    # a shallow copy, because the machine's past executions hold threads and locks.
    clone = copy.copy(machine)
    clone.executions = []
    clone.sm_type = machine_type(machine)
    execution = (SyncExecution if sync else Execution)(
        name=name,
        sm_type=clone.sm_type,
        role_arn=clone.roleArn,
        exec_arn=arn,
        account_id=backend.account_id,
        region_name=backend.region_name,
        state_machine=clone,
        start_date=clock.now_datetime(),
        cloud_watch_logging_session=None,
        input_data=input_data,
        trace_header=None,
        activity_store={},
    )
    machine.executions.append(execution)
    _started[arn] = time.monotonic()
    telemetry.put_metrics(backend.account_id, backend.region_name, "AWS/States",
                          [telemetry.metric("ExecutionsStarted", 1, "Count", {"StateMachineArn": machine.arn})])
    execution.start()
    return execution


def install() -> list[str]:
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    from moto.stepfunctions.models import StepFunctionBackend
    from moto.utilities.utils import ARN_PARTITION_REGEX

    enable_interpreter()
    # Express executions have their own ARN form; moto only accepts the Standard one.
    StepFunctionBackend.accepted_exec_arn_format = re.compile(
        ARN_PARTITION_REGEX + r":states:[-0-9a-zA-Z]+:(?P<account_id>[0-9]{12}):(execution|express):.+"
    )

    def start_execution(self, state_machine_arn, name=None, execution_input=None, trace_header=None):
        return _new_execution(self, state_machine_arn, name, execution_input, sync=False)

    def start_sync_execution(self, state_machine_arn, name=None, execution_input=None):
        return _new_execution(self, state_machine_arn, name, execution_input, sync=True)

    StepFunctionsParserBackend.start_execution = start_execution
    StepFunctionsParserBackend.start_sync_execution = start_sync_execution

    def start_sync_execution_response(self):
        execution = self.stepfunction_backend.start_sync_execution(
            self._get_param("stateMachineArn"), self._get_param("name"), self._get_param("input", if_none="{}")
        )
        return json.dumps(execution.to_start_sync_execution_output(), default=_json_default)

    StepFunctionResponse.start_sync_execution = start_sync_execution_response

    original_reflect = BaseExecutionWorkerCommunication._reflect_execution_status

    def reflect_execution_status(self):
        original_reflect(self)
        try:
            _finish(self.execution)
        except Exception as error:  # telemetry must never change how an execution ends
            print(f"states: could not record the end of {self.execution.exec_arn}: {type(error).__name__}: {error}", flush=True)

    BaseExecutionWorkerCommunication._reflect_execution_status = reflect_execution_status
    _lambda_service_error_names()
    _definite_json_paths()
    return ["states: executions run on moto's ASL interpreter (StartSyncExecution, Express ARNs, metrics, history logs)"]


def _lambda_service_error_names() -> None:
    """A Lambda task whose Invoke call itself fails (a throttle, say) fails with `Lambda.<error code>` in
    Step Functions, e.g. Lambda.TooManyRequestsException; the interpreter reports a bare "Exception"."""
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = StateTaskLambda._from_error

    def from_error(self, env, ex):
        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        error = f"Lambda.{ex.response['Error'].get('Code') or 'AWSLambdaException'}"
        cause = ex.response["Error"].get("Message", "")
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(error),
            event_type=HistoryEventType.LambdaFunctionFailed,
            event_details=EventDetails(lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=error, cause=cause)),
        )

    StateTaskLambda._from_error = from_error


_INDEFINITE_PATH = re.compile(r"\[\s*(\*|\?|-?\d*\s*:)|\.\.|\.\*|\[[^\]]*,")


def _definite_json_paths() -> None:
    """A definite JsonPath such as `$[0].symbol` selects one value, and Step Functions passes that value
    (the Parallel state's ResultSelector in our analysis workflow relies on it). moto's interpreter wraps it
    in a list whenever an array index appears in the path, which AWS does only for indefinite paths
    (wildcards, filters, slices, unions, recursive descent)."""
    import importlib
    import pkgutil
    import sys

    from jsonpath_ng.ext import parse
    from moto.stepfunctions.parser.asl.utils import json_path

    for module in pkgutil.walk_packages(importlib.import_module("moto.stepfunctions.parser.asl").__path__, "moto.stepfunctions.parser.asl."):
        try:
            importlib.import_module(module.name)
        except ImportError:  # LocalStack leftovers that moto never loads (usage analytics)
            pass
    original = json_path.extract_json

    def extract_json(path: str, data):
        matches = parse(path).find(data)
        if not matches or len(matches) > 1 or _INDEFINITE_PATH.search(path):
            return original(path, data)
        return matches[0].value

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("moto.stepfunctions.parser") and getattr(module, "extract_json", None) is original:
            module.extract_json = extract_json


def _json_default(value):
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_END_METRIC = {"SUCCEEDED": "ExecutionsSucceeded", "FAILED": "ExecutionsFailed", "TIMED_OUT": "ExecutionsTimedOut", "ABORTED": "ExecutionsAborted"}


def _finish(execution) -> None:
    status = execution.exec_status.value if hasattr(execution.exec_status, "value") else str(execution.exec_status)
    machine = execution.state_machine
    machine_arn = getattr(machine, "source_arn", None) or machine.arn
    started = _started.pop(execution.exec_arn, None)
    elapsed_ms = (time.monotonic() - started) * 1000 if started is not None else 0.0
    data = [telemetry.metric("ExecutionTime", elapsed_ms, "Milliseconds", {"StateMachineArn": machine_arn})]
    # Every end state as a binary indicator, 1 for this execution's and 0 for the others, the way Lambda publishes
    # its invocation metrics: a "failures" widget then reads 0 after healthy traffic instead of "no data".
    if status in _END_METRIC:
        data += [telemetry.metric(metric, int(end == status), "Count", {"StateMachineArn": machine_arn}) for end, metric in _END_METRIC.items()]
    telemetry.put_metrics(execution.account_id, execution.region_name, "AWS/States", data)
    group = _log_group_name(machine)
    if group:
        history = execution.to_history_output()["events"]
        stream = f"states/{machine.name}/{clock.now_datetime():%Y-%m-%d-%H-%M}/{uuid.uuid4().hex[:8]}"
        events = [(int(_timestamp(e["timestamp"]) * 1000), json.dumps(_history_log(execution, e), default=str)) for e in history]
        telemetry.write_log_events(execution.account_id, execution.region_name, group, stream, events)


def _timestamp(value) -> float:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


def _history_log(execution, event: dict) -> dict:
    """The shape Step Functions writes to CloudWatch Logs for one history event."""
    details = {k: v for k, v in event.items() if k.endswith("EventDetails")}
    return {
        "id": str(event["id"]),
        "type": event["type"],
        "details": next(iter(details.values()), {}),
        "previous_event_id": str(event.get("previousEventId", 0)),
        "event_timestamp": str(int(_timestamp(event["timestamp"]) * 1000)),
        "execution_arn": execution.exec_arn,
    }

