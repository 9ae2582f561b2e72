"""Tune a function's memory: run PowerTuningWorkflow, or on the emulator the same steps in process.

Usage:
  python -m tooling.power_tune --env dev --function PatternDetector-dev [--num 20] [--strategy balanced]
  python -m tooling.power_tune --env dev --workspace pr123 --function PatternDetector-dev-pr123
  python -m tooling.power_tune --env local --function PatternDetector-local

Only where envs/<env>.json enables the tuner (`power_tuner.enabled`: dev, staging and local; not prod).
Real environments start the workspace's PowerTuningWorkflow from the tuner's own stack (its ARN is the
output `power_tuning_state_machine_arn` of `patternwatch-<env>-power-tuner` in that workspace: deploy it
with `make deploy-tuner ENV=<env>`) and wait for its result. For `local` the tuner's own step functions
(lambda_src/power_tuning) run here against the emulator instead, so no tuner stack is needed: versions
and aliases are really published and cleaned up there, and each invocation runs the function's handler
in this process with the function's configured environment. A process on this machine does not get less
CPU at 512 MB than at 3008 MB, so local durations are modelled with Lambda's documented CPU share (one
vCPU at 1,769 MB, proportionally less below): measured time x max(1, 1769 / memory). The table says so.
Real runs measure real billed time.

Prints the result table (memory, average billed duration, cost per invocation and per million) and a
text chart; `--output FILE` also writes the result as JSON. It recommends: apply a result by setting
`lambda.memory_mb` in envs/<env>.json and deploying (the tuner has no permission to change memory for good).
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from patternwatch_shared.names.messages import (
    FIELD_ACTION, FIELD_BARS, FIELD_FAMILY, FIELD_SYMBOL, WORKFLOW_ACTION_DETECT,
)
from power_tuning import analysis, steps

from patternwatch_infra.config import ConfigError, EnvironmentConfig, load_environment

from .lambda_harness import LambdaContext, invoke, local_runtime_environment
from .stack_outputs import StackOutputsError, check_workspace, read_stack_outputs, selected_workspace

# Lambda gives a function one full vCPU at 1,769 MB and CPU in proportion to memory below that
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
FULL_VCPU_MEMORY_MB = 1769
POLL_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 1800
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def modelled_duration_ms(measured_ms: float, memory_mb: int) -> float:
    """What a single-threaded handler measured here would take with Lambda's CPU share at `memory_mb`."""
    return measured_ms * max(1.0, FULL_VCPU_MEMORY_MB / memory_mb)


class InProcessLambda:
    """A Lambda client for the tuner's steps whose `invoke` runs the handler in this process.

    Everything but `invoke` goes to the emulator's Lambda API. `invoke` reads the invoked alias's version
    (memory, handler, environment) from the emulator, runs the handler with that environment (its AWS
    calls also go to the emulator), and answers like Lambda: a payload, FunctionError on an exception, and
    a base64 log tail whose REPORT line carries the modelled billed duration.
    """

    def __init__(self, client: Any, endpoint: str | None, *, timer: Callable[[], float] = time.perf_counter) -> None:
        self._client = client
        self._endpoint = endpoint
        self._timer = timer
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def invoke(self, *, FunctionName: str, Payload: str | bytes, LogType: str = "None") -> dict[str, Any]:
        name, qualifier = FunctionName.split(":", 1)
        config = self._client.get_function_configuration(FunctionName=name, Qualifier=qualifier)
        memory = config["MemorySize"]
        context = LambdaContext(
            function_name=name,
            memory_limit_in_mb=memory,
            timeout_seconds=config.get("Timeout", 30),
            function_version=config.get("Version", "$LATEST"),
            invoked_function_arn=f"{config['FunctionArn'].split(':' + qualifier)[0]}:{qualifier}",
        )
        region = self._client.meta.region_name
        environment = {
            **config.get("Environment", {}).get("Variables", {}),
            **local_runtime_environment(context, region=region, endpoint=self._endpoint),
        }
        output = io.StringIO()
        # Handlers cache their AWS clients; fresh ones are built with this function's endpoint and settings.
        invocation = invoke(
            config["Handler"], json.loads(Payload), context, environment=environment, output=output, fresh_clients=True, timer=self._timer
        )
        # Microseconds are more than the timer can tell apart; rounding keeps float noise out of the billing.
        modelled = modelled_duration_ms(round(invocation.seconds * 1000.0, 3), memory)
        report = (
            f"REPORT RequestId: {context.aws_request_id}\tDuration: {modelled:.2f} ms\t"
            f"Billed Duration: {math.ceil(modelled)} ms\tMemory Size: {memory} MB"
        )
        response: dict[str, Any] = {"StatusCode": 200}
        if LogType == "Tail":
            tail = (output.getvalue()[-3000:] + "\n" + report + "\n").encode()
            response["LogResult"] = base64.b64encode(tail).decode()
        if invocation.error is not None:
            # A failing function is a result the tuner must see, not a crash here.
            response["FunctionError"] = "Unhandled"
            body = {"errorType": type(invocation.error).__name__, "errorMessage": str(invocation.error)}
        else:
            body = invocation.result
        response["Payload"] = io.BytesIO(json.dumps(body, default=str).encode())
        return response


def run_in_process(client: Any, event: dict[str, Any], *, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """The workflow's steps, in its order, with the same error handling: clean up whatever happens."""
    request = analysis.parse_input(event)
    state = steps.initialize(client, request, sleep=sleep)
    try:
        results = [steps.execute(client, **item) for item in _executor_kwargs(state)]
    finally:
        steps.clean(client, state["lambdaARN"], state["powerValues"])
    return analysis.analyze(results, state["strategy"], state["balancedWeight"])


def _executor_kwargs(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "lambda_arn": item["lambdaARN"],
            "value": item["value"],
            "num": item["num"],
            "payload": item["payload"],
            "discard_top_bottom": item["discardTopBottom"],
        }
        for item in steps.executor_items(state)
    ]


class WorkflowFailed(RuntimeError):
    pass


def run_workflow(
    sfn: Any, machine_arn: str, event: dict[str, Any], *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep, say: Callable[[str], None] = print,
) -> dict[str, Any]:
    execution = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(event))["executionArn"]
    say(f"started {execution}")
    waited = 0.0
    while True:
        described = sfn.describe_execution(executionArn=execution)
        status = described["status"]
        if status == "SUCCEEDED":
            return json.loads(described["output"])
        if status != "RUNNING":
            raise WorkflowFailed(f"{execution} ended {status}: {described.get('error', '')} {described.get('cause', '')}".strip())
        if waited >= timeout:
            raise WorkflowFailed(f"{execution} still running after {timeout:.0f} s (it keeps running; see the console)")
        sleep(POLL_SECONDS)
        waited += POLL_SECONDS


DEFAULT_PAYLOAD_BARS = 1_000
# Step Functions passes at most 256 KB between states, and the payload rides along in every Map item.
MAX_WORKFLOW_INPUT_BYTES = 256 * 1024


def default_payload(function_name: str) -> dict[str, Any] | None:
    """A side-effect-free, CPU-bound request for PatternDetector: one family's detection over 1,000 bars
    (about 80 KB of JSON, well inside what Step Functions carries between states)."""
    if not function_name.startswith("PatternDetector-"):
        return None
    from pattern_engine.synthetic import random_walk

    series = random_walk(DEFAULT_PAYLOAD_BARS, seed=7)
    bars = [
        {key: (int(series[key][i]) if key == "timestamp" else round(float(series[key][i]), 4)) for key in ("timestamp", "open", "high", "low", "close", "volume")}
        for i in range(DEFAULT_PAYLOAD_BARS)
    ]
    return {FIELD_ACTION: WORKFLOW_ACTION_DETECT, FIELD_FAMILY: "head-and-shoulders", FIELD_SYMBOL: "TUNE", FIELD_BARS: bars}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tooling.power_tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="environment name (envs/<env>.json)")
    parser.add_argument("--workspace", default=selected_workspace(), help="Terraform workspace (default: $TF_WORKSPACE, else default)")
    parser.add_argument("--function", required=True, help="function name, e.g. PatternDetector-dev")
    parser.add_argument("--power-values", default=",".join(map(str, analysis.DEFAULT_POWER_VALUES)), help="memory sizes in MB, comma-separated")
    parser.add_argument("--num", type=int, default=analysis.DEFAULT_INVOCATIONS, help="invocations per memory size")
    parser.add_argument("--strategy", choices=analysis.STRATEGIES, default=analysis.DEFAULT_STRATEGY)
    parser.add_argument("--balanced-weight", type=float, default=analysis.DEFAULT_BALANCED_WEIGHT, help="balanced: 1 = cost only, 0 = speed only")
    parser.add_argument("--payload", help="JSON event, or @file.json (default for PatternDetector: a detect request)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds to wait for the workflow")
    parser.add_argument("--output", type=Path, help="also write the result as JSON here")
    return parser.parse_args(argv)


def _payload(args: argparse.Namespace) -> Any:
    if args.payload is None:
        payload = default_payload(args.function)
        if payload is None:
            raise ValueError(f"--payload is required for {args.function} (only PatternDetector has a safe default)")
        return payload
    text = Path(args.payload[1:]).read_text() if args.payload.startswith("@") else args.payload
    return json.loads(text)


def aws_clients(config: EnvironmentConfig) -> tuple[Any, Any, Any]:
    """Lambda, Step Functions and STS clients for the environment (the emulator's for `local`)."""
    import boto3

    kwargs: dict[str, Any] = {"region_name": config.region}
    if config.emulator is not None:
        from patternwatch_infra.emulator import EMULATOR_ACCESS_KEY, EMULATOR_SECRET_KEY

        kwargs.update(endpoint_url=config.emulator.endpoint, aws_access_key_id=EMULATOR_ACCESS_KEY, aws_secret_access_key=EMULATOR_SECRET_KEY)
    return boto3.client("lambda", **kwargs), boto3.client("stepfunctions", **kwargs), boto3.client("sts", **kwargs)


def report(result: dict[str, Any], *, modelled: bool) -> str:
    lines = [analysis.result_table(result), "", analysis.text_chart(result), ""]
    lines.append(f"chosen: {result['power']} MB by {result['strategy']} "
                 f"({result['duration']:.1f} ms, {result['cost'] * 1e6:.2f} USD per million invocations)")
    lines.append("to apply it: set lambda.memory_mb in envs/<env>.json and deploy")
    if modelled:
        lines.append(f"local run: durations measured in this process, scaled by Lambda's CPU share (1 vCPU at {FULL_VCPU_MEMORY_MB} MB)")
    return "\n".join(lines)


def main(
    argv: list[str] | None = None,
    *,
    clients: Callable[[EnvironmentConfig], tuple[Any, Any, Any]] = aws_clients,
    stack_outputs: Callable[..., dict[str, Any]] = read_stack_outputs,
) -> int:
    args = parse_args(argv)
    say = lambda message: print(f"power-tune: {message}", flush=True)  # noqa: E731
    try:
        config = load_environment(args.env)
        workspace = check_workspace(args.workspace)
        event = {
            "powerValues": [int(v) for v in args.power_values.split(",") if v.strip()],
            "num": args.num,
            "payload": _payload(args),
            "strategy": args.strategy,
            "balancedWeight": args.balanced_weight,
        }
        if not config.power_tuner.enabled:
            raise ValueError(f"the power tuner is not enabled for {config.name} ({config.source}: power_tuner.enabled is false)")
        size = len(json.dumps(event))
        if config.emulator is None and size > MAX_WORKFLOW_INPUT_BYTES - 1024:
            raise ValueError(f"the payload makes a {size / 1024:.0f} KB workflow input; Step Functions carries at most 256 KB")
        machine = None
        if config.emulator is None:
            stack = config.power_tuner_stack_name
            outputs = stack_outputs(
                config.name, workspace=workspace, stack_name=stack, deploy_command="make deploy-tuner", hint="deploy the tuner's stack first"
            )
            machine = outputs.get("power_tuning_state_machine_arn")
            if not machine:
                raise ValueError(
                    f"{stack} (workspace {workspace}) has no output power_tuning_state_machine_arn: `make deploy-tuner ENV={config.name}` first"
                )
    except (ConfigError, ValueError, OSError, StackOutputsError) as error:
        print(f"power-tune: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    lambda_client, sfn, sts = clients(config)
    try:
        account = sts.get_caller_identity()["Account"]
        event["lambdaARN"] = f"arn:aws:lambda:{config.region}:{account}:function:{args.function}"
        analysis.parse_input(event)
        started = time.monotonic()
        if config.emulator is not None:
            say(f"{args.function} on the emulator: running the tuner's steps in process ({len(event['powerValues'])} sizes x {args.num})")
            result = run_in_process(InProcessLambda(lambda_client, config.emulator.endpoint), event)
        else:
            say(f"{args.function}: starting {machine}")
            result = run_workflow(sfn, machine, event, timeout=args.timeout, say=say)
        say(f"done in {time.monotonic() - started:.1f} s")
    except (analysis.TuningInputError, steps.InvocationError, steps.FunctionUpdateError, WorkflowFailed) as error:
        print(f"power-tune: failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (BotoCoreError, ClientError) as error:
        hint = " (is it running? make emulator-start)" if config.emulator is not None else ""
        print(f"power-tune: AWS error{hint}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(report(result, modelled=config.emulator is not None))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
