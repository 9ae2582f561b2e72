"""tooling.power_tune: the in-process run for the emulator (moto here), the workflow run, and the CLI."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from moto_lambda import REGION, live_function
from patternwatch_shared.names.functions import ENV_ALERT_QUEUE_URL, ENV_TRADING_PATTERNS_TABLE
from power_tuning import analysis, steps
from tooling import power_tune

NAME = "PatternDetector-local"


class SteppingTimer:
    """Every reading is 50 ms after the previous one, so every invocation measures exactly 50 ms."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.05
        return self.now


@pytest.fixture
def emulated(monkeypatch):
    """The pattern detector as `local` deploys it; InProcessLambda runs its handler from this checkout, not the (empty) zip."""
    environment = {ENV_TRADING_PATTERNS_TABLE: "TradingPatterns-local", ENV_ALERT_QUEUE_URL: "http://queue"}
    with live_function(monkeypatch, NAME, {"pattern_detector/handler.py": ""}, "pattern_detector.handler.lambda_handler",
                       Environment={"Variables": environment}) as function:
        yield function


def test_local_durations_follow_lambda_s_cpu_share():
    assert power_tune.modelled_duration_ms(50, 1769) == 50
    assert power_tune.modelled_duration_ms(50, 3008) == 50
    assert power_tune.modelled_duration_ms(50, 512) == pytest.approx(50 * 1769 / 512)


def test_in_process_run_publishes_measures_cleans_and_chooses(emulated):
    client, arn = emulated
    lam = power_tune.InProcessLambda(client, None, timer=SteppingTimer())
    payload = power_tune.default_payload(NAME)
    result = power_tune.run_in_process(lam, {"lambdaARN": arn, "num": 2, "payload": payload}, sleep=lambda _: None)
    # 50 ms measured: 512 MB -> 172.75 -> 173 billed, 1024 -> 87, 1536 -> 58, 2048 and 3008 -> 50.
    assert {r["value"]: r["averageDuration"] for r in result["results"]} == {512: 173, 1024: 87, 1536: 58, 2048: 50, 3008: 50}
    # 512 MB x 173 ms = 0.0865 GB-s is the least compute; 1024 x 87 = 0.087, 1536 x 58 = 0.087.
    assert result["power"] == 512
    assert {a["Name"] for a in client.list_aliases(FunctionName=NAME)["Aliases"]} == {"live"}
    assert client.get_function_configuration(FunctionName=NAME)["MemorySize"] == 512


def test_in_process_run_recommends_and_leaves_the_memory_to_the_configuration(emulated):
    """The tuner recommends; memory changes through envs/<env>.json and a deploy, never through the tuner."""
    client, arn = emulated
    lam = power_tune.InProcessLambda(client, None, timer=SteppingTimer())
    event = {"lambdaARN": arn, "num": 1, "payload": power_tune.default_payload(NAME), "strategy": "speed", "powerValues": [1024, 2048]}
    result = power_tune.run_in_process(lam, event, sleep=lambda _: None)
    assert result["power"] == 2048 and "optimization" not in result
    assert client.get_function_configuration(FunctionName=NAME)["MemorySize"] == 512
    with pytest.raises(analysis.TuningInputError, match="the tuner only recommends"):
        power_tune.run_in_process(lam, {**event, "autoOptimize": True}, sleep=lambda _: None)


def test_a_failing_function_stops_the_run_and_still_cleans_up(emulated):
    client, arn = emulated
    lam = power_tune.InProcessLambda(client, "http://127.0.0.1:1", timer=SteppingTimer())
    with pytest.raises(steps.InvocationError, match="InvalidInputError"):
        power_tune.run_in_process(lam, {"lambdaARN": arn, "num": 1, "payload": {"action": "nope"}}, sleep=lambda _: None)
    assert {a["Name"] for a in client.list_aliases(FunctionName=NAME)["Aliases"]} == {"live"}


def test_the_log_tail_carries_the_handler_output_and_the_report_line(emulated):
    client, arn = emulated
    steps.initialize(client, analysis.parse_input({"lambdaARN": arn, "powerValues": [1769]}), sleep=lambda _: None)
    lam = power_tune.InProcessLambda(client, None, timer=SteppingTimer())
    response = lam.invoke(FunctionName=f"{NAME}:RAM1769", Payload=json.dumps(power_tune.default_payload(NAME)), LogType="Tail")
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read())["family"] == "head-and-shoulders"
    assert analysis.billed_duration_from_log(response["LogResult"]) == 50
    quiet = lam.invoke(FunctionName=f"{NAME}:RAM1769", Payload="{}")
    assert "LogResult" not in quiet and quiet["FunctionError"] == "Unhandled"


def test_only_pattern_detector_has_a_default_payload():
    assert power_tune.default_payload("AlertProcessor-dev") is None
    payload = power_tune.default_payload("PatternDetector-dev")
    assert (payload["action"], len(payload["bars"])) == ("detect", power_tune.DEFAULT_PAYLOAD_BARS)
    # It must fit, with the rest of the input, into what Step Functions passes between states.
    assert len(json.dumps(payload)) < power_tune.MAX_WORKFLOW_INPUT_BYTES // 2


def stubbed_sfn():
    sfn = boto3.client("stepfunctions", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return sfn, Stubber(sfn)


def stubbed_sts():
    """STS whose first get_caller_identity answers with the account envs/dev.json allows."""
    sts = boto3.client("sts", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(sts)
    stub.add_response("get_caller_identity", {"Account": "111111111111", "Arn": "arn:aws:iam::111111111111:user/me", "UserId": "me"})
    return sts, stub


MACHINE = "arn:aws:states:us-east-1:111111111111:stateMachine:PowerTuningWorkflow-dev"
EXECUTION = "arn:aws:states:us-east-1:111111111111:execution:PowerTuningWorkflow-dev:run-1"
RESULT = {"power": 1024, "cost": 1.5e-6, "duration": 100.0, "strategy": "cost",
          "results": [{"value": 512, "averageDuration": 250.0, "averagePrice": 1.9e-6}, {"value": 1024, "averageDuration": 100.0, "averagePrice": 1.5e-6}]}


def _described(status: str, **extra):
    return {"executionArn": EXECUTION, "stateMachineArn": MACHINE, "status": status, "startDate": "2026-11-28T00:00:00Z", **extra}


def test_the_workflow_run_waits_for_the_result():
    sfn, stub = stubbed_sfn()
    stub.add_response("start_execution", {"executionArn": EXECUTION, "startDate": "2026-11-28T00:00:00Z"},
                      {"stateMachineArn": MACHINE, "input": json.dumps({"lambdaARN": "a"})})
    stub.add_response("describe_execution", _described("RUNNING"), {"executionArn": EXECUTION})
    stub.add_response("describe_execution", _described("SUCCEEDED", output=json.dumps(RESULT)), {"executionArn": EXECUTION})
    slept = []
    with stub:
        assert power_tune.run_workflow(sfn, MACHINE, {"lambdaARN": "a"}, sleep=slept.append, say=lambda _: None) == RESULT
    assert slept == [power_tune.POLL_SECONDS]


@pytest.mark.parametrize("timeout, statuses, message", [
    (60, [_described("FAILED", error="PowerTuningFailed", cause="RAM512 failed")], "ended FAILED: PowerTuningFailed RAM512 failed"),
    (0, [_described("RUNNING")], "still running"),
])
def test_a_failed_or_slow_workflow_is_reported(timeout, statuses, message):
    sfn, stub = stubbed_sfn()
    stub.add_response("start_execution", {"executionArn": EXECUTION, "startDate": "2026-11-28T00:00:00Z"})
    for described in statuses:
        stub.add_response("describe_execution", described)
    with stub, pytest.raises(power_tune.WorkflowFailed, match=message):
        power_tune.run_workflow(sfn, MACHINE, {}, timeout=timeout, sleep=lambda _: None, say=lambda _: None)


def test_cli_runs_in_process_for_local_and_prints_the_table_and_chart(emulated, capsys, tmp_path, monkeypatch):
    client, _ = emulated
    sts = boto3.client("sts", region_name=REGION)
    out = tmp_path / "result.json"
    code = power_tune.main(["--env", "local", "--function", NAME, "--num", "1", "--power-values", "1024,2048", "--output", str(out)],
                           clients=lambda config: (client, None, sts))
    printed = capsys.readouterr().out
    assert code == power_tune.EXIT_OK
    assert "memory MB" in printed and "avg billed duration (ms)" in printed and "local run: durations measured in this process" in printed
    assert json.loads(out.read_text())["power"] in (1024, 2048)


def _cli_on_a_stubbed_workflow(function: str, machine: str, workspace: str) -> int:
    """main() for dev, tuning `function`: the workflow must be started on `machine`, which the outputs of
    `workspace` name, and succeeds at once."""
    sfn, stub = stubbed_sfn()
    stub.add_response("start_execution", {"executionArn": EXECUTION, "startDate": "2026-11-28T00:00:00Z"}, {"stateMachineArn": machine, "input": ANY})
    stub.add_response("describe_execution", _described("SUCCEEDED", output=json.dumps(RESULT)))
    sts, sts_stub = stubbed_sts()
    with stub, sts_stub:
        return power_tune.main(["--env", "dev", "--function", function, "--payload", '{"action": "validate"}'],
                               clients=lambda config: (None, sfn, sts), stack_outputs=workspace_outputs(workspace))


def test_cli_starts_the_workflow_for_a_real_environment(capsys):
    code = _cli_on_a_stubbed_workflow("PatternDetector-dev", MACHINE, "default")
    printed = capsys.readouterr().out
    assert code == power_tune.EXIT_OK
    assert f"starting {MACHINE}" in printed and "set lambda.memory_mb in envs/<env>.json" in printed and "local run" not in printed


def workspace_outputs(expected_workspace: str):
    """Stack outputs as `terraform output -json` gives them for the workspace the CLI must ask for."""
    def outputs(env: str, *, workspace: str, stack_name: str, **_) -> dict:
        # The tuner's own stack, never the platform's.
        assert (env, workspace, stack_name) == ("dev", expected_workspace, "patternwatch-dev-power-tuner")
        return {"power_tuning_state_machine_arn": MACHINE if workspace == "default" else f"{MACHINE}-{workspace}"}
    return outputs


def test_cli_starts_the_workflow_of_the_workspace_it_is_given(capsys, monkeypatch):
    """The machine's ARN is the workspace's stack output, never a name spelled here."""
    monkeypatch.setenv("TF_WORKSPACE", "pr123")
    code = _cli_on_a_stubbed_workflow("PatternDetector-dev-pr123", f"{MACHINE}-pr123", "pr123")
    assert code == power_tune.EXIT_OK
    assert f"starting {MACHINE}-pr123" in capsys.readouterr().out


def test_cli_reports_a_workspace_without_the_tuner(capsys):
    code = power_tune.main(["--env", "dev", "--function", "PatternDetector-dev", "--payload", "{}"],
                           clients=None, stack_outputs=lambda env, **_: {})
    assert code == power_tune.EXIT_USAGE
    assert "has no output power_tuning_state_machine_arn" in capsys.readouterr().err


def test_cli_refuses_an_environment_without_the_tuner(capsys):
    code = power_tune.main(["--env", "prod", "--function", "PatternDetector-prod", "--payload", "{}"], clients=None, stack_outputs=None)
    assert code == power_tune.EXIT_USAGE
    assert "the power tuner is not enabled for prod (envs/prod.json: power_tuner.enabled is false)" in capsys.readouterr().err


def test_cli_refuses_to_guess_a_payload_and_reports_bad_input_and_aws_errors(capsys, tmp_path):
    assert power_tune.main(["--env", "dev", "--function", "AlertProcessor-dev"], clients=None) == power_tune.EXIT_USAGE
    assert "--payload is required" in capsys.readouterr().err
    big = json.dumps({"bars": ["x" * 100] * 3000})
    assert power_tune.main(["--env", "dev", "--function", "AlertProcessor-dev", "--payload", big], clients=None) == power_tune.EXIT_USAGE
    assert "Step Functions carries at most 256 KB" in capsys.readouterr().err
    payload = tmp_path / "event.json"
    payload.write_text("{}")
    sts, stub = stubbed_sts()
    stub.add_client_error("get_caller_identity", "ExpiredToken", "token expired")
    with stub:
        args = ["--env", "dev", "--function", "ApprovalProcessor-dev", "--payload", f"@{payload}"]
        tuned = {"clients": lambda config: (None, None, sts), "stack_outputs": workspace_outputs("default")}
        assert power_tune.main([*args, "--num", "0"], **tuned) == power_tune.EXIT_FAILED
        assert "num must be" in capsys.readouterr().err
        assert power_tune.main(args, **tuned) == power_tune.EXIT_FAILED
        assert "AWS error: " in capsys.readouterr().err
