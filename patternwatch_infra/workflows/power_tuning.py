"""PowerTuningWorkflow: initialize -> execute every memory value in parallel (Map) -> clean -> analyze.
An error after the initializer still runs the cleaner, then fails. The result is a recommendation: nothing
applies it (memory is configuration, envs/<env>.json).

Input: {"lambdaARN", "powerValues"?, "num"?, "payload"?, "strategy"?, "balancedWeight"?,
"discardTopBottom"?}; the initializer validates it and fills the defaults (lambda_src/power_tuning).
Output: the analyzer's result {"power", "cost", "duration", "strategy", "results": [...]}.
"""
from __future__ import annotations

from typing import Any

from . import LAMBDA_SERVICE_ERRORS

INITIALIZER = "Initializer"
BRANCHING = "ExecuteEachMemoryValue"
EXECUTOR = "Executor"
CLEANER = "Cleaner"
ANALYZER = "Analyzer"
DONE = "TuningComplete"
CLEAN_UP_ON_ERROR = "CleanUpOnError"
FAILED = "TuningFailed"


def retry_policy() -> list[dict[str, Any]]:
    # Only Lambda's own transient errors: a failing function under test must stop the run, not repeat it.
    return [{"ErrorEquals": list(LAMBDA_SERVICE_ERRORS), "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2.0}]


def _clean_up_on_error() -> list[dict[str, Any]]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": CLEAN_UP_ON_ERROR}]


def definition(*, initializer_arn: str, executor_arn: str, cleaner_arn: str, analyzer_arn: str) -> dict[str, Any]:
    return {
        "Comment": "PatternWatch Lambda power tuning (after the open-source aws-lambda-power-tuning)",
        "StartAt": INITIALIZER,
        "States": {
            INITIALIZER: {
                "Type": "Task",
                "Resource": initializer_arn,
                "Retry": retry_policy(),
                "Catch": _clean_up_on_error(),
                "Next": BRANCHING,
            },
            BRANCHING: {
                "Type": "Map",
                "ItemsPath": "$.powerValues",
                "ItemSelector": {
                    "lambdaARN.$": "$.lambdaARN",
                    "value.$": "$$.Map.Item.Value",
                    "num.$": "$.num",
                    "payload.$": "$.payload",
                    "discardTopBottom.$": "$.discardTopBottom",
                },
                # 0 = no limit: every memory value is measured at the same time, as in the reference tool.
                "MaxConcurrency": 0,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": EXECUTOR,
                    "States": {EXECUTOR: {"Type": "Task", "Resource": executor_arn, "Retry": retry_policy(), "End": True}},
                },
                "ResultPath": "$.results",
                "Catch": _clean_up_on_error(),
                "Next": CLEANER,
            },
            CLEANER: {
                "Type": "Task",
                "Resource": cleaner_arn,
                "Parameters": {"lambdaARN.$": "$.lambdaARN", "powerValues.$": "$.powerValues"},
                "ResultPath": None,
                "Retry": retry_policy(),
                "Next": ANALYZER,
            },
            ANALYZER: {
                "Type": "Task",
                "Resource": analyzer_arn,
                "Parameters": {"results.$": "$.results", "strategy.$": "$.strategy", "balancedWeight.$": "$.balancedWeight"},
                "ResultPath": "$.analysis",
                "Retry": retry_policy(),
                "Next": DONE,
            },
            DONE: {"Type": "Succeed", "OutputPath": "$.analysis"},
            # Gets the failed state's input plus $.error; the cleaner falls back to the default values when
            # the initializer failed before normalising the input.
            CLEAN_UP_ON_ERROR: {
                "Type": "Task",
                "Resource": cleaner_arn,
                "ResultPath": "$.cleanup",
                "Retry": retry_policy(),
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.cleanupError", "Next": FAILED}],
                "Next": FAILED,
            },
            FAILED: {"Type": "Fail", "Error": "PowerTuningFailed", "Cause": "See the execution history; temporary aliases were cleaned up"},
        },
    }
