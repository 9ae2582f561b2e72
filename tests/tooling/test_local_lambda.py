"""The local Lambda service on an emulator of its own: functions from small zips, invoked as Lambda would."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from local_aws_helpers import log_messages, zip_of
from tooling.local_aws import admin
from tooling.local_aws.function_code import third_party_top_levels

HANDLERS = '''
import json, os, sys, time

COLD = {"count": 0}

def echo(event, context):
    COLD["count"] += 1
    print("handling", json.dumps(event))
    return {"event": event, "setting": os.environ.get("SETTING"), "function": context.function_name,
            "arn": context.invoked_function_arn, "remaining": context.get_remaining_time_in_millis(),
            "calls": COLD["count"], "pid": os.getpid(), "now": time.time(), "path": sys.path}

def fail(event, context):
    raise KeyError("no such thing")

def slow(event, context):
    time.sleep(30)

def crash(event, context):
    os._exit(3)

def emf(event, context):
    print(json.dumps({"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
        "Namespace": "LocalTest", "Dimensions": [["service"], ["service", "Kind"]],
        "Metrics": [{"Name": "Widgets", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}]}]},
        "service": "svc", "Kind": "blue", "Widgets": 3, "Latency": [10, 20, 30]}))
    return "ok"

def numbers(event, context):
    import numpy
    return {"numpy": numpy.__version__, "where": numpy.__file__}

def shared(event, context):
    import mylib, json
    try:
        import fakewheel
        fake = "importable"
    except ImportError:
        fake = "missing"
    return {"mylib": mylib.NAME, "fakewheel": fake}

def flaky(event, context):
    raise RuntimeError("always fails")
'''


def create(aws, handler: str, *, files: dict[str, str] | None = None, timeout: int = 5, environment=None, layers=None) -> str:
    name = f"{handler}-{uuid.uuid4().hex[:8]}"
    code = files if files is not None else {"app/__init__.py": "", "app/handler.py": HANDLERS}
    aws.lambda_.create_function(
        FunctionName=name, Runtime="python3.12", Role=aws.role_arn, Handler=f"app.handler.{handler}",
        Code={"ZipFile": zip_of(code)}, Timeout=timeout, MemorySize=256,
        Environment={"Variables": environment or {}}, Layers=layers or [],
    )
    return name


def invoke(aws, name: str, event=None, **kwargs) -> tuple[dict, object]:
    response = aws.lambda_.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **kwargs)
    return response, json.loads(response["Payload"].read() or b"null")


def test_a_function_runs_its_deployed_handler_with_its_environment_in_a_warm_worker(aws):
    name = create(aws, "echo", environment={"SETTING": "configured"})
    first, result = invoke(aws, name, {"hello": 1})
    assert "FunctionError" not in first and first["StatusCode"] == 200
    assert result["event"] == {"hello": 1} and result["setting"] == "configured" and result["function"] == name
    assert 0 < result["remaining"] <= 5000
    _, again = invoke(aws, name, {"hello": 2})
    assert again["pid"] == result["pid"] and again["calls"] == 2  # the same execution environment, kept warm
    # The source tree and the project are not on the worker's path: only the unpacked zip and the environment.
    assert not any(p.rstrip("/").endswith(("/lambda_src", "/runtime")) for p in result["path"])
    assert ".local/lambda-code/function/" in result["path"][0]


def test_each_invocation_logs_start_end_and_report_around_its_lines(aws):
    name = create(aws, "echo")
    invoke(aws, name, {"marker": "first-call"})
    messages = log_messages(aws, name)
    start = next(i for i, m in enumerate(messages) if m.startswith("START RequestId:"))
    assert '"marker": "first-call"' in messages[start + 1]
    assert messages[start + 2].startswith("END RequestId:")
    report = messages[start + 3]
    assert report.startswith("REPORT RequestId:") and "Duration:" in report and "Memory Size: 256 MB" in report and "Init Duration:" in report
    stream = aws.logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"][0]["logStreamName"]
    assert "/[$LATEST]" in stream


def test_an_unhandled_exception_answers_like_lambda(aws):
    name = create(aws, "fail")
    response, error = invoke(aws, name)
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "KeyError" and "no such thing" in error["errorMessage"]
    assert any("app/handler.py" in frame and "in fail" in frame for frame in error["stackTrace"])
    assert not any("worker.py" in frame for frame in error["stackTrace"])


def test_an_overrun_is_killed_and_answered_as_a_timeout(aws):
    name = create(aws, "slow", timeout=1)
    started = time.monotonic()
    response, error = invoke(aws, name)
    assert time.monotonic() - started < 10
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout" and "Task timed out after 1.00 seconds" in error["errorMessage"]
    assert any("Task timed out after 1.00 seconds" in m for m in log_messages(aws, name))


def test_a_crashed_worker_answers_runtime_exit_error(aws):
    name = create(aws, "crash")
    response, error = invoke(aws, name)
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ExitError" and "exit status 3" in error["errorMessage"]


def test_a_zip_missing_a_module_fails_locally_with_import_module_error(aws):
    """The handler imports the project's shared package, which this zip does not carry: it must not be found."""
    files = {"app/__init__.py": "", "app/handler.py": "from patternwatch_shared import names\n\ndef echo(event, context):\n    return names.METRICS_NAMESPACE\n"}
    name = create(aws, "echo", files=files)
    response, error = invoke(aws, name)
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == "Unable to import module 'app.handler': No module named 'patternwatch_shared'"


def test_third_party_packages_come_from_the_project_environment(aws):
    name = create(aws, "numbers")
    response, result = invoke(aws, name)
    assert "FunctionError" not in response, result
    assert "/site-packages/numpy/" in result["where"]


def test_a_layer_supplies_our_packages_but_not_its_third_party_wheels(aws):
    layer = zip_of({
        "python/mylib/__init__.py": "NAME = 'from the layer'\n",
        "python/fakewheel/__init__.py": "raise SystemExit('the layer copy of a wheel must never load')\n",
        "python/fakewheel-1.0.dist-info/RECORD": "fakewheel/__init__.py,,\nfakewheel-1.0.dist-info/RECORD,,\n",
    })
    layer_arn = aws.lambda_.publish_layer_version(LayerName=f"layer-{uuid.uuid4().hex[:6]}", Content={"ZipFile": layer},
                                                  CompatibleRuntimes=["python3.12"])["LayerVersionArn"]
    name = create(aws, "shared", layers=[layer_arn])
    response, result = invoke(aws, name)
    assert "FunctionError" not in response, result
    assert result == {"mylib": "from the layer", "fakewheel": "missing"}


def test_third_party_names_are_read_from_pip_records():
    import io
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(zip_of({
        "python/numpy/__init__.py": "", "python/numpy.libs/x.so": "",
        "python/numpy-2.0.dist-info/RECORD": "numpy/__init__.py,,\nnumpy.libs/x.so,,\n../../bin/f2py,,\n",
        "python/patternwatch_shared/__init__.py": "",
    })))
    assert third_party_top_levels(archive, "python/") == {"numpy", "numpy.libs", "numpy-2.0.dist-info"}


def test_emf_lines_become_cloudwatch_metrics_for_every_dimension_set(aws):
    name = create(aws, "emf")
    invoke(aws, name)
    metrics = aws.cloudwatch.list_metrics(Namespace="LocalTest")["Metrics"]
    dimension_sets = {(m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]))) for m in metrics}
    assert ("Widgets", (("service", "svc"),)) in dimension_sets
    assert ("Widgets", (("Kind", "blue"), ("service", "svc"))) in dimension_sets
    assert ("Latency", (("service", "svc"),)) in dimension_sets
    stats = aws.cloudwatch.get_metric_statistics(
        Namespace="LocalTest", MetricName="Latency", Dimensions=[{"Name": "service", "Value": "svc"}],
        StartTime=time.time() - 600, EndTime=time.time() + 600, Period=60, Statistics=["Sum", "SampleCount"],
    )["Datapoints"]
    assert sum(p["Sum"] for p in stats) == 60 and sum(p["SampleCount"] for p in stats) == 3


def test_lambda_metrics_carry_function_and_alias_dimensions(aws):
    name = create(aws, "fail")
    version = aws.lambda_.publish_version(FunctionName=name)["Version"]
    aws.lambda_.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    invoke(aws, f"{name}:live")
    # ListMetrics pages at 500 metrics, and the session's emulator holds every earlier test's functions.
    pages = aws.cloudwatch.get_paginator("list_metrics").paginate(Namespace="AWS/Lambda")
    found = {(m["MetricName"], tuple(sorted(d["Value"] for d in m["Dimensions"]))) for page in pages for m in page["Metrics"]}
    for metric in ("Invocations", "Errors", "Duration"):
        assert (metric, (name,)) in found
        assert (metric, tuple(sorted((name, f"{name}:live")))) in found


def test_reserved_concurrency_zero_throttles(aws):
    name = create(aws, "echo")
    aws.lambda_.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(aws.lambda_.exceptions.TooManyRequestsException):
        invoke(aws, name)


def test_failed_async_events_are_retried_then_sent_to_the_on_failure_destination(aws):
    name = create(aws, "flaky")
    queue_url = aws.sqs.create_queue(QueueName=f"failures-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.lambda_.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=2,
                                                 DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    response = aws.lambda_.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"keep": "me"}')
    assert response["StatusCode"] == 202
    admin.wait_for_async(aws.endpoint)
    (message,) = aws.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestPayload"] == {"keep": "me"}
    assert record["requestContext"]["condition"] == "RetriesExhausted" and record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert sum(m.startswith("START RequestId:") for m in log_messages(aws, name)) == 3


def test_the_platform_clock_moves_the_workers_and_sqs_visibility_together(aws):
    name = create(aws, "echo")
    queue_url = aws.sqs.create_queue(QueueName=f"clock-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    aws.sqs.send_message(QueueUrl=queue_url, MessageBody="timer")
    assert aws.sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=3600)["Messages"]
    assert "Messages" not in aws.sqs.receive_message(QueueUrl=queue_url)
    before = time.time()
    try:
        offset = admin.advance_clock(aws.endpoint, 3601)
        assert offset >= 3601
        (message,) = aws.sqs.receive_message(QueueUrl=queue_url)["Messages"]  # visible again: an hour has passed
        assert message["Body"] == "timer"
        _, result = invoke(aws, name)
        assert result["now"] - before >= 3600
    finally:
        admin.reset_clock(aws.endpoint)
    _, result = invoke(aws, name)
    assert abs(result["now"] - time.time()) < 60


def test_reserved_concurrency_applies_to_every_version_and_alias(aws):
    name = create(aws, "echo")
    version = aws.lambda_.publish_version(FunctionName=name)["Version"]
    aws.lambda_.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    aws.lambda_.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(aws.lambda_.exceptions.TooManyRequestsException):
        invoke(aws, f"{name}:live")
    aws.lambda_.delete_function_concurrency(FunctionName=name)
    response, _ = invoke(aws, f"{name}:live")
    assert "FunctionError" not in response and response["ExecutedVersion"] == version


def test_log_type_tail_returns_the_invocations_log_with_its_report_line(aws):
    import base64

    name = create(aws, "echo")
    response, _ = invoke(aws, name, {"tail": "me"}, LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    assert tail.startswith("START RequestId:") and '"tail": "me"' in tail
    assert "REPORT RequestId:" in tail and "Billed Duration:" in tail
