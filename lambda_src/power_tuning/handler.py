"""Entry points of the four tuner functions. One package, four functions, four roles.

Each function's handler setting names its entry point (e.g. `power_tuning.handler.execute`), so every
function runs the same tested code while its IAM role allows only its own step: only the executor may
invoke, only the cleaner may delete versions, and the analyzer may call no AWS API at all.
"""
from __future__ import annotations

import os
from typing import Any

from power_tuning import analysis, steps

_client = None


def lambda_client() -> Any:
    global _client
    if _client is None:
        import boto3  # the Lambda runtime provides it; imported late so the analyzer never loads it

        _client = boto3.client("lambda", region_name=os.environ.get("AWS_REGION"))
    return _client


def initialize(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return steps.initialize(lambda_client(), analysis.parse_input(event))


def execute(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return steps.execute(
        lambda_client(), event["lambdaARN"], int(event["value"]), int(event["num"]), event.get("payload", {}),
        float(event.get("discardTopBottom", analysis.DEFAULT_DISCARD_TOP_BOTTOM)),
    )


def clean(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    values = event.get("powerValues") or list(analysis.DEFAULT_POWER_VALUES)
    return steps.clean(lambda_client(), event["lambdaARN"], [int(v) for v in values])


def analyze(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return analysis.analyze(
        event["results"], event.get("strategy", analysis.DEFAULT_STRATEGY), float(event.get("balancedWeight", analysis.DEFAULT_BALANCED_WEIGHT))
    )

