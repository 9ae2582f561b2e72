"""The Lambda functions: one spec per function, from which every spelling of its name derives.

A spec is written once, as the function's CamelCase base name, its code package and entry point.
Everything else is derived, for the infrastructure and the handlers alike:

    base_name      KinesisConsumer                         KinesisConsumer-<s>, KinesisConsumerRole-<s>, alarms
    construct_id   kinesis_consumer                        the construct id, hence the Terraform address
    package        kinesis_consumer                        folder of lambda_src/, its zip, the stack outputs
    handler        kinesis_consumer.handler.lambda_handler
    service_name   kinesis-consumer                        POWERTOOLS_SERVICE_NAME, the metrics' `service`

`env_keys` must all be set by the infrastructure; `optional_env_keys` may be set (each has a default or
is only used locally). The handlers read settings only through these lists (patternwatch_shared.config
.EnvReader refuses any other key), and a test checks every deployed environment against them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from patternwatch_shared.names.metrics import METRICS_NAMESPACE

# --- Environment variable keys (set by the infrastructure, read by the handlers) --------------------
ENV_TRADING_PATTERNS_TABLE: Final = "TRADING_PATTERNS_TABLE"
ENV_APPROVAL_TABLE: Final = "APPROVAL_TRACKING_TABLE"
ENV_ALERT_QUEUE_URL: Final = "ALERT_QUEUE_URL"
ENV_PENDING_APPROVALS_QUEUE_URL: Final = "PENDING_APPROVALS_QUEUE_URL"
ENV_TRADING_ALERTS_TOPIC_ARN: Final = "TRADING_ALERTS_TOPIC_ARN"
ENV_APPROVAL_REQUESTS_TOPIC_ARN: Final = "APPROVAL_REQUESTS_TOPIC_ARN"
ENV_APPROVAL_EXPIRY_SECONDS: Final = "APPROVAL_EXPIRY_SECONDS"
# Base URL of the REST API stage that serves POST /approve/{token}, e.g.
# "https://abc123.execute-api.us-east-1.amazonaws.com/v1". The approve link is <base>/approve/<token>.
ENV_APPROVAL_API_BASE_URL: Final = "APPROVAL_API_BASE_URL"
# The environment's approvers as JSON, [{"id": ..., "name": ...}] (patternwatch_shared.approvers): who is
# sent an approval request, and whose link may still decide. E-mail addresses stay in the SNS subscriptions.
ENV_APPROVERS: Final = "APPROVERS"
# The data bucket: alert-processor writes each alert's evidence there, the approval page reads its chart
# (patternwatch_shared.evidence keys).
ENV_DATA_BUCKET: Final = "DATA_BUCKET_NAME"
# envs/*.json `alerts.confidence_threshold`: a detection alerts when its confidence is at or above it.
ENV_ALERT_CONFIDENCE_THRESHOLD: Final = "ALERT_CONFIDENCE_THRESHOLD"
# envs/*.json `alerts.threshold_check_min_breaches`: the threshold checker alerts at this many breaches.
ENV_THRESHOLD_CHECK_MIN_BREACHES: Final = "THRESHOLD_CHECK_MIN_BREACHES"
# Optional: how far back (minutes) the threshold checker looks on each run.
ENV_THRESHOLD_LOOKBACK_MINUTES: Final = "THRESHOLD_LOOKBACK_MINUTES"
# The name of the EventBridge rule whose scheduled events the threshold checker accepts (and no other).
ENV_THRESHOLD_CHECK_RULE_NAME: Final = "THRESHOLD_CHECK_RULE_NAME"
# Optional everywhere: the emulator's endpoint when the platform runs locally.
ENV_AWS_ENDPOINT_URL: Final = "AWS_ENDPOINT_URL"
ENV_POWERTOOLS_SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
ENV_POWERTOOLS_METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
ENV_POWERTOOLS_TRACE_DISABLED: Final = "POWERTOOLS_TRACE_DISABLED"

_BASE_NAME = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)*$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")


def snake_case(camel: str) -> str:
    """`KinesisConsumer` -> `kinesis_consumer`."""
    return _WORD_START.sub("_", camel).lower()


@dataclass(frozen=True)
class LambdaFunctionSpec:
    """How one function is deployed and named. Only the fields are written by hand."""

    base_name: str
    package: str
    entry_point: str = "lambda_handler"
    env_keys: tuple[str, ...] = ()
    optional_env_keys: tuple[str, ...] = (ENV_AWS_ENDPOINT_URL,)
    # Empty: snake_case(base_name). A package with several functions names their constructs itself.
    construct_id: str = field(default="")

    def __post_init__(self) -> None:
        if not _BASE_NAME.match(self.base_name):
            raise ValueError(f"base name {self.base_name!r} must be CamelCase, e.g. KinesisConsumer")
        if not self.construct_id:
            object.__setattr__(self, "construct_id", snake_case(self.base_name))
        for label, value in (("package", self.package), ("entry point", self.entry_point), ("construct id", self.construct_id)):
            if not _IDENTIFIER.match(value):
                raise ValueError(f"{self.base_name}: {label} {value!r} must be a snake_case identifier")
        if set(self.env_keys) & set(self.optional_env_keys):
            raise ValueError(f"{self.base_name}: a key cannot be both required and optional")

    @property
    def service_name(self) -> str:
        """`kinesis-consumer`: Powertools' service, the `service` dimension of every metric."""
        return snake_case(self.base_name).replace("_", "-")

    @property
    def handler(self) -> str:
        """The Lambda handler setting: `<package>.handler.<entry point>`."""
        return f"{self.package}.handler.{self.entry_point}"

    def powertools_environment(self) -> dict[str, str]:
        """The Powertools variables this function needs, ready to merge into its environment."""
        return {ENV_POWERTOOLS_SERVICE_NAME: self.service_name, ENV_POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE}


# --- The platform's six functions ----------------------------------------------------------------
KINESIS_CONSUMER: Final = LambdaFunctionSpec(
    "KinesisConsumer", "kinesis_consumer", env_keys=(ENV_TRADING_PATTERNS_TABLE, ENV_ALERT_CONFIDENCE_THRESHOLD)
)
PATTERN_DETECTOR: Final = LambdaFunctionSpec(
    "PatternDetector",
    "pattern_detector",
    env_keys=(ENV_TRADING_PATTERNS_TABLE, ENV_ALERT_QUEUE_URL, ENV_ALERT_CONFIDENCE_THRESHOLD),
)
ALERT_PROCESSOR: Final = LambdaFunctionSpec(
    "AlertProcessor",
    "alert_processor",
    env_keys=(
        ENV_APPROVAL_TABLE,
        ENV_PENDING_APPROVALS_QUEUE_URL,
        ENV_TRADING_ALERTS_TOPIC_ARN,
        ENV_APPROVAL_REQUESTS_TOPIC_ARN,
        ENV_APPROVAL_EXPIRY_SECONDS,
        ENV_APPROVAL_API_BASE_URL,
        ENV_APPROVERS,
        ENV_TRADING_PATTERNS_TABLE,
        ENV_DATA_BUCKET,
    ),
)
THRESHOLD_CHECKER: Final = LambdaFunctionSpec(
    "ThresholdChecker",
    "threshold_checker",
    env_keys=(
        ENV_TRADING_PATTERNS_TABLE,
        ENV_ALERT_QUEUE_URL,
        ENV_ALERT_CONFIDENCE_THRESHOLD,
        ENV_THRESHOLD_CHECK_MIN_BREACHES,
        ENV_THRESHOLD_CHECK_RULE_NAME,
    ),
    optional_env_keys=(ENV_AWS_ENDPOINT_URL, ENV_THRESHOLD_LOOKBACK_MINUTES),
)
APPROVAL_PROCESSOR: Final = LambdaFunctionSpec(
    "ApprovalProcessor",
    "approval_processor",
    env_keys=(ENV_APPROVAL_TABLE, ENV_TRADING_ALERTS_TOPIC_ARN, ENV_APPROVERS, ENV_DATA_BUCKET),
)
# PendingApprovals' consumer: the timer that auto-rejects an approval nobody answered by its deadline.
APPROVAL_EXPIRY: Final = LambdaFunctionSpec(
    "ApprovalExpiry",
    "approval_expiry",
    env_keys=(ENV_APPROVAL_TABLE, ENV_TRADING_ALERTS_TOPIC_ARN, ENV_PENDING_APPROVALS_QUEUE_URL),
)
PLATFORM_FUNCTIONS: Final = (
    KINESIS_CONSUMER, PATTERN_DETECTOR, ALERT_PROCESSOR, THRESHOLD_CHECKER, APPROVAL_PROCESSOR, APPROVAL_EXPIRY,
)


# --- The power tuner: one code package, four functions (one per step, each with its own role) -------
# It recommends a memory size and never applies one: memory is configuration (envs/<env>.json).
POWER_TUNING_PACKAGE: Final = "power_tuning"


def _power_tuning_step(step: str, entry_point: str) -> LambdaFunctionSpec:
    """`Initializer` -> PowerTuningInitializer-<s>, construct `tuner_initializer`, `power_tuning.handler.initialize`."""
    return LambdaFunctionSpec(
        f"PowerTuning{step}", POWER_TUNING_PACKAGE, entry_point, construct_id=f"tuner_{snake_case(step)}"
    )


POWER_TUNING_INITIALIZER: Final = _power_tuning_step("Initializer", "initialize")
POWER_TUNING_EXECUTOR: Final = _power_tuning_step("Executor", "execute")
POWER_TUNING_CLEANER: Final = _power_tuning_step("Cleaner", "clean")
POWER_TUNING_ANALYZER: Final = _power_tuning_step("Analyzer", "analyze")
POWER_TUNING_FUNCTIONS: Final = (POWER_TUNING_INITIALIZER, POWER_TUNING_EXECUTOR, POWER_TUNING_CLEANER, POWER_TUNING_ANALYZER)
