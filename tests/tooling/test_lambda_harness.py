"""The one Lambda context fake and in-process invoker that the runner, the tuner, tests and benchmarks share."""
from __future__ import annotations

import io
import os
import time

import pytest

from tooling.lambda_harness import Invocation, LambdaContext, applied_environment, invoke, local_runtime_environment, resolve_handler


def test_the_context_has_what_handlers_and_powertools_read():
    context = LambdaContext("KinesisConsumer-local", memory_limit_in_mb=1024, timeout_seconds=2)
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:KinesisConsumer-local"
    assert context.log_group_name == "/aws/lambda/KinesisConsumer-local"
    assert (context.function_version, context.memory_limit_in_mb) == ("$LATEST", 1024)
    assert 1_000 < context.get_remaining_time_in_millis() <= 2_000
    assert LambdaContext().aws_request_id != LambdaContext().aws_request_id
    alias = LambdaContext("F", invoked_function_arn="arn:aws:lambda:eu-west-1:1:function:F:live")
    assert alias.invoked_function_arn.endswith(":F:live")


def test_remaining_time_counts_down_to_zero():
    context = LambdaContext(timeout_seconds=0)
    time.sleep(0.01)
    assert context.get_remaining_time_in_millis() == 0


def test_a_handler_runs_with_its_environment_which_is_put_back_afterwards(monkeypatch):
    monkeypatch.setenv("HARNESS_KEPT", "before")
    monkeypatch.delenv("HARNESS_NEW", raising=False)
    seen = {}

    def handler(event, context):
        seen.update({key: os.environ.get(key) for key in ("HARNESS_KEPT", "HARNESS_NEW")})
        print("a log line")
        return {"echo": event, "function": context.function_name}

    output = io.StringIO()
    invocation = invoke(handler, {"x": 1}, LambdaContext("F"), environment={"HARNESS_KEPT": "during", "HARNESS_NEW": "set"}, output=output)
    assert invocation.response == {"echo": {"x": 1}, "function": "F"}
    assert seen == {"HARNESS_KEPT": "during", "HARNESS_NEW": "set"}
    assert (os.environ["HARNESS_KEPT"], os.environ.get("HARNESS_NEW")) == ("before", None)
    assert output.getvalue() == "a log line\n"


def test_a_failing_handler_is_a_result_and_its_error_comes_back_on_request():
    def handler(event, context):
        raise RuntimeError("boom")

    ticks = iter([10.0, 10.25])
    invocation = invoke(handler, {}, LambdaContext(), timer=lambda: next(ticks))
    assert isinstance(invocation, Invocation) and isinstance(invocation.error, RuntimeError)
    assert invocation.seconds == 0.25 and invocation.result is None
    with pytest.raises(RuntimeError, match="boom"):
        invocation.response


def test_a_handler_path_is_imported_under_the_functions_environment(tmp_path, monkeypatch):
    """Powertools reads its settings when the handler module is imported, so the import must see them."""
    package = tmp_path / "harness_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "handler.py").write_text(
        "import os\nAT_IMPORT = os.environ.get('HARNESS_SERVICE')\n\ndef lambda_handler(event, context):\n    return AT_IMPORT\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("HARNESS_SERVICE", raising=False)
    result = invoke("harness_probe.handler.lambda_handler", {}, LambdaContext(), environment={"HARNESS_SERVICE": "probe"}).response
    assert result == "probe"
    assert resolve_handler("harness_probe.handler.lambda_handler")({}, None) == "probe"
    with pytest.raises(ValueError, match="is not <module>.<function>"):
        resolve_handler("lambda_handler")


def test_fresh_clients_are_built_under_the_functions_environment():
    from patternwatch_shared import aws

    aws._clients["sqs"] = "a client built for another function"
    invoke(lambda event, context: None, {}, LambdaContext(), fresh_clients=True)
    assert "sqs" not in aws._clients


def test_the_local_runtime_sets_what_lambda_would_and_points_at_the_emulator():
    context = LambdaContext("PatternDetector-local", memory_limit_in_mb=768)
    assert local_runtime_environment(context, region="eu-west-1") == {
        "AWS_LAMBDA_FUNCTION_NAME": "PatternDetector-local",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "768",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    emulated = local_runtime_environment(context, region="us-east-1", endpoint="http://127.0.0.1:5062")
    assert emulated["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5062"
    assert (emulated["AWS_ACCESS_KEY_ID"], emulated["AWS_SECRET_ACCESS_KEY"]) == ("test", "test")


def test_applied_environment_restores_even_when_the_block_fails(monkeypatch):
    monkeypatch.delenv("HARNESS_TEMP", raising=False)
    with pytest.raises(KeyError):
        with applied_environment({"HARNESS_TEMP": "1"}):
            raise KeyError("inside")
    assert "HARNESS_TEMP" not in os.environ
