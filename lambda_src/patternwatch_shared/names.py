"""Names that the infrastructure and the handlers must agree on, defined once.

The CDKTF constructs import this module to set environment variables, key schemas and dashboard
metrics; the handlers import it to read them. Changing a name here changes both sides together.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# --- Environment variable keys (set by the compute layer, read by the handlers) -------------
ENV_TRADING_PATTERNS_TABLE: Final = "TRADING_PATTERNS_TABLE"
ENV_APPROVAL_TABLE: Final = "APPROVAL_TRACKING_TABLE"
ENV_ALERT_QUEUE_URL: Final = "ALERT_QUEUE_URL"
ENV_PENDING_APPROVALS_QUEUE_URL: Final = "PENDING_APPROVALS_QUEUE_URL"
ENV_TRADING_ALERTS_TOPIC_ARN: Final = "TRADING_ALERTS_TOPIC_ARN"
ENV_APPROVAL_REQUESTS_TOPIC_ARN: Final = "APPROVAL_REQUESTS_TOPIC_ARN"
ENV_APPROVAL_EXPIRY_SECONDS: Final = "APPROVAL_EXPIRY_SECONDS"
ENV_ERROR_THRESHOLD: Final = "ERROR_THRESHOLD"
ENV_PATTERN_CONFIDENCE_THRESHOLD: Final = "PATTERN_CONFIDENCE_THRESHOLD"
ENV_ENVIRONMENT_SUFFIX: Final = "ENVIRONMENT_SUFFIX"
ENV_POWERTOOLS_SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
ENV_POWERTOOLS_METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
ENV_AWS_ENDPOINT_URL: Final = "AWS_ENDPOINT_URL"

# --- CloudWatch metrics (emitted as EMF by the handlers, graphed and alarmed by monitoring) ---
METRICS_NAMESPACE: Final = "StockPatternDetection"
METRIC_PATTERN_DETECTION_DURATION: Final = "PatternDetectionDuration"
METRIC_CONFIDENCE_SCORE: Final = "ConfidenceScore"
METRIC_ALERT_PRIORITY: Final = "AlertPriority"
METRIC_APPROVALS_PROCESSED: Final = "ApprovalsProcessed"
METRIC_THRESHOLD_CHECKS: Final = "ThresholdChecks"
METRIC_PATTERNS_EVALUATED: Final = "PatternsEvaluated"
METRIC_RECORDS_REJECTED: Final = "RecordsRejected"

DIMENSION_PATTERN_TYPE: Final = "PatternType"
DIMENSION_SEVERITY: Final = "Severity"
DIMENSION_ACTION: Final = "Action"

# --- DynamoDB key design (see README "Data model") --------------------------------------------
# TradingPatterns is a single table:
#   bars               PK = BAR#<symbol>        SK = <timestamp, zero-padded epoch seconds>
#   detected patterns  PK = PATTERN#<symbol>    SK = <end timestamp>#<pattern>
#   recent patterns    GSI1PK = RECENT#<yyyy-mm-dd> (UTC day of detection)
#                      GSI1SK = <detected-at ISO 8601>#<symbol>#<pattern>
TABLE_PARTITION_KEY: Final = "PK"
TABLE_SORT_KEY: Final = "SK"
RECENT_PATTERNS_INDEX: Final = "RecentPatternsIndex"
RECENT_PATTERNS_INDEX_PARTITION_KEY: Final = "GSI1PK"
RECENT_PATTERNS_INDEX_SORT_KEY: Final = "GSI1SK"

BAR_PARTITION_PREFIX: Final = "BAR#"
PATTERN_PARTITION_PREFIX: Final = "PATTERN#"
RECENT_PARTITION_PREFIX: Final = "RECENT#"

# ApprovalTracking: one item per approval, keyed by the SHA-256 of its token; expires by TTL.
APPROVAL_PARTITION_KEY: Final = "tokenHash"
APPROVAL_TTL_ATTRIBUTE: Final = "expiresAt"

# =============================================================================================
# Added for the Lambda functions (issue 4). Everything above this line is unchanged.
# =============================================================================================

# --- More environment variable keys -----------------------------------------------------------
# Base URL of the REST API stage that serves POST /approve/{token}, e.g.
# "https://abc123.execute-api.us-east-1.amazonaws.com/prod". The approve link is <base>/approve/<token>.
ENV_APPROVAL_API_BASE_URL: Final = "APPROVAL_API_BASE_URL"
# Optional: how far back (minutes) the threshold checker looks on each run; defaults below.
ENV_THRESHOLD_LOOKBACK_MINUTES: Final = "THRESHOLD_LOOKBACK_MINUTES"
ENV_POWERTOOLS_TRACE_DISABLED: Final = "POWERTOOLS_TRACE_DISABLED"
ENV_POWERTOOLS_LOG_LEVEL: Final = "POWERTOOLS_LOG_LEVEL"

DEFAULT_APPROVAL_EXPIRY_SECONDS: Final = 3600
DEFAULT_THRESHOLD_LOOKBACK_MINUTES: Final = 5

# --- Powertools service names, one per function (POWERTOOLS_SERVICE_NAME) ---------------------
SERVICE_KINESIS_CONSUMER: Final = "kinesis-consumer"
SERVICE_PATTERN_DETECTOR: Final = "pattern-detector"
SERVICE_ALERT_PROCESSOR: Final = "alert-processor"
SERVICE_THRESHOLD_CHECKER: Final = "threshold-checker"
SERVICE_APPROVAL_PROCESSOR: Final = "approval-processor"

# --- Additional metrics and dimensions ---------------------------------------------------------
METRIC_RECORDS_PROCESSED: Final = "RecordsProcessed"
METRIC_BARS_STORED: Final = "BarsStored"
METRIC_PATTERNS_DETECTED: Final = "PatternsDetected"
METRIC_ALERTS_QUEUED: Final = "AlertsQueued"
METRIC_ALERTS_FAILED: Final = "AlertsFailed"
METRIC_APPROVALS_REQUESTED: Final = "ApprovalsRequested"
METRIC_THRESHOLD_BREACHES: Final = "ThresholdBreaches"
METRIC_STORAGE_FAILURES: Final = "StorageFailures"
METRIC_API_REQUESTS_REJECTED: Final = "ApiRequestsRejected"
METRIC_API_REQUESTS: Final = "ApiRequests"
METRIC_DUPLICATE_ALERTS_SKIPPED: Final = "DuplicateAlertsSkipped"
METRIC_WORKFLOW_ACTIONS: Final = "WorkflowActions"

DIMENSION_SERVICE: Final = "service"  # added by Powertools Metrics to every metric
PATTERN_TYPE_ALL: Final = "all"  # PatternType value for a detection pass over every pattern

# --- Alert severities (AlertPriority's Severity dimension) ------------------------------------
SEVERITY_CRITICAL: Final = "CRITICAL"
SEVERITY_HIGH: Final = "HIGH"
SEVERITY_MEDIUM: Final = "MEDIUM"
SEVERITY_LOW: Final = "LOW"
SEVERITIES: Final = (SEVERITY_CRITICAL, SEVERITY_HIGH, SEVERITY_MEDIUM, SEVERITY_LOW)
# Matches strictly above this confidence go to AlertQueue (issue 4: "confidence > 0.9").
ALERT_CONFIDENCE_THRESHOLD: Final = 0.9
# Confidence at or above this makes an alert CRITICAL, i.e. it needs a human approval.
CRITICAL_CONFIDENCE_THRESHOLD: Final = 0.95

# --- Approval actions (ApprovalsProcessed's Action dimension) and states -----------------------
ACTION_APPROVE: Final = "approve"
ACTION_REJECT: Final = "reject"
ACTION_AUTO_REJECT: Final = "auto-reject"  # recorded when a decision arrives after expiry
APPROVAL_STATUS_PENDING: Final = "PENDING"
APPROVAL_STATUS_APPROVED: Final = "APPROVED"
APPROVAL_STATUS_REJECTED: Final = "REJECTED"
APPROVAL_STATUS_EXPIRED: Final = "EXPIRED"  # auto-rejected
APPROVAL_TOKEN_BYTES: Final = 16  # 128 bits, sent as 32 lowercase hex characters
APPROVAL_ROUTE: Final = "/approve/<token>"  # Powertools route syntax
APPROVAL_RESOURCE_PATH: Final = "/approve/{token}"  # API Gateway resource syntax (POST)

# --- API routes served by pattern-detector -----------------------------------------------------
PATTERNS_ROUTE: Final = "/patterns"  # POST; also the API Gateway resource path
PATTERNS_BY_SYMBOL_ROUTE: Final = "/patterns/<symbol>"  # Powertools route syntax
PATTERNS_BY_SYMBOL_RESOURCE_PATH: Final = "/patterns/{symbol}"  # API Gateway resource syntax (GET)

# --- Pattern detection ------------------------------------------------------------------------
DETECTION_WINDOW_BARS: Final = 38  # the engine's default window; the consumer reads this many bars
# Step Functions runs one parallel branch per family; each family is one engine pattern name.
PATTERN_FAMILIES: Final = ("head-and-shoulders", "double-top", "ascending-triangle")

# --- Event schemas: field names shared by producers, the state machine and the handlers -------
# Kinesis record data (base64 JSON), one bar:
BAR_FIELDS: Final = ("symbol", "timestamp", "open", "high", "low", "close", "volume")
# Step Functions task input: {"action": <one of WORKFLOW_ACTIONS>, ...}
FIELD_ACTION: Final = "action"
FIELD_SYMBOL: Final = "symbol"
FIELD_BARS: Final = "bars"
FIELD_FAMILY: Final = "family"
FIELD_RESULTS: Final = "results"
FIELD_MATCHES: Final = "matches"
FIELD_CORRELATION_ID: Final = "correlationId"
WORKFLOW_ACTION_VALIDATE: Final = "validate"
WORKFLOW_ACTION_DETECT: Final = "detect"
WORKFLOW_ACTION_SCORE: Final = "score"
WORKFLOW_ACTION_DECIDE: Final = "decide"
WORKFLOW_ACTIONS: Final = (
    WORKFLOW_ACTION_VALIDATE,
    WORKFLOW_ACTION_DETECT,
    WORKFLOW_ACTION_SCORE,
    WORKFLOW_ACTION_DECIDE,
)
# Error names a Step Functions Catch/Retry can match (Lambda reports the exception class name).
WORKFLOW_ERROR_INVALID_INPUT: Final = "InvalidInputError"

# Alert message (AlertQueue body, JSON):
ALERT_FIELDS: Final = (
    "alertId", "source", "symbol", "pattern", "confidence", "severity",
    "startTimestamp", "endTimestamp", "detectedAt", "details",
)
ALERT_SOURCE_STREAM: Final = "stream"  # kinesis-consumer
ALERT_SOURCE_WORKFLOW: Final = "workflow"  # pattern-detector's decide step
ALERT_SOURCE_THRESHOLD: Final = "threshold"  # threshold-checker

# --- More key design ---------------------------------------------------------------------------
TIMESTAMP_KEY_DIGITS: Final = 12  # SK of a bar: epoch seconds zero-padded to this width
KEY_SEPARATOR: Final = "#"
# Pattern items: alert bookkeeping so a retried batch re-sends an alert that was stored but not queued.
PATTERN_ALERT_STATE_ATTRIBUTE: Final = "alertState"
ALERT_STATE_NOT_REQUIRED: Final = "NOT_REQUIRED"
ALERT_STATE_PENDING: Final = "PENDING"
ALERT_STATE_QUEUED: Final = "QUEUED"
APPROVAL_STATUS_ATTRIBUTE: Final = "status"
# alert-processor's delivery ledger lives in ApprovalTracking too: tokenHash = "delivered#<alertId>"
# (never a 64-hex token hash), expiring after a day, so a redelivered or duplicated alert is skipped.
DELIVERED_ALERT_KEY_PREFIX: Final = "delivered#"
DELIVERED_ALERT_RETENTION_SECONDS: Final = 86_400


# --- The five functions: one description each, read by the infrastructure and by the tests -------
@dataclass(frozen=True)
class LambdaFunctionSpec:
    """How one function is deployed: its code location, service name and environment.

    `env_keys` must all be set by the infrastructure; `optional_env_keys` may be set (each has a
    default or is only used locally). The handlers read their settings only through these lists
    (patternwatch_shared.config.EnvReader refuses any other key), so the two cannot drift.
    """

    name: str
    package: str
    handler: str
    service_name: str
    env_keys: tuple[str, ...]
    optional_env_keys: tuple[str, ...] = (ENV_AWS_ENDPOINT_URL,)

    def powertools_environment(self) -> dict[str, str]:
        """The Powertools variables this function needs, ready to merge into its environment."""
        return {
            ENV_POWERTOOLS_SERVICE_NAME: self.service_name,
            ENV_POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        }


def _spec(package: str, service_name: str, env_keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> LambdaFunctionSpec:
    return LambdaFunctionSpec(
        name=service_name,
        package=package,
        handler=f"{package}.handler.lambda_handler",
        service_name=service_name,
        env_keys=env_keys,
        optional_env_keys=(ENV_AWS_ENDPOINT_URL, *optional),
    )


LAMBDA_FUNCTIONS: Final[dict[str, LambdaFunctionSpec]] = {
    spec.name: spec
    for spec in (
        _spec(
            "kinesis_consumer",
            SERVICE_KINESIS_CONSUMER,
            (ENV_TRADING_PATTERNS_TABLE, ENV_ALERT_QUEUE_URL),
        ),
        _spec(
            "pattern_detector",
            SERVICE_PATTERN_DETECTOR,
            (ENV_TRADING_PATTERNS_TABLE, ENV_ALERT_QUEUE_URL),
        ),
        _spec(
            "alert_processor",
            SERVICE_ALERT_PROCESSOR,
            (
                ENV_APPROVAL_TABLE,
                ENV_PENDING_APPROVALS_QUEUE_URL,
                ENV_TRADING_ALERTS_TOPIC_ARN,
                ENV_APPROVAL_REQUESTS_TOPIC_ARN,
                ENV_APPROVAL_EXPIRY_SECONDS,
                ENV_APPROVAL_API_BASE_URL,
            ),
        ),
        _spec(
            "threshold_checker",
            SERVICE_THRESHOLD_CHECKER,
            (
                ENV_TRADING_PATTERNS_TABLE,
                ENV_ALERT_QUEUE_URL,
                ENV_ERROR_THRESHOLD,
                ENV_PATTERN_CONFIDENCE_THRESHOLD,
            ),
            optional=(ENV_THRESHOLD_LOOKBACK_MINUTES,),
        ),
        _spec(
            "approval_processor",
            SERVICE_APPROVAL_PROCESSOR,
            (ENV_APPROVAL_TABLE, ENV_TRADING_ALERTS_TOPIC_ARN),
        ),
    )
}


# =============================================================================================
# Added for orchestration and monitoring (issue 6). Everything above this line is unchanged.
# =============================================================================================

# --- Power tuner: one code package, five functions (one per step, each with its own role) ----------
POWER_TUNING_PACKAGE: Final = "power_tuning"
SERVICE_POWER_TUNING_INITIALIZER: Final = "power-tuning-initializer"
SERVICE_POWER_TUNING_EXECUTOR: Final = "power-tuning-executor"
SERVICE_POWER_TUNING_CLEANER: Final = "power-tuning-cleaner"
SERVICE_POWER_TUNING_ANALYZER: Final = "power-tuning-analyzer"
SERVICE_POWER_TUNING_OPTIMIZER: Final = "power-tuning-optimizer"


def _power_tuning_spec(service_name: str, entry_point: str) -> LambdaFunctionSpec:
    return LambdaFunctionSpec(
        name=service_name,
        package=POWER_TUNING_PACKAGE,
        handler=f"{POWER_TUNING_PACKAGE}.handler.{entry_point}",
        service_name=service_name,
        env_keys=(),
    )


POWER_TUNING_FUNCTIONS: Final[dict[str, LambdaFunctionSpec]] = {
    spec.name: spec
    for spec in (
        _power_tuning_spec(SERVICE_POWER_TUNING_INITIALIZER, "initialize"),
        _power_tuning_spec(SERVICE_POWER_TUNING_EXECUTOR, "execute"),
        _power_tuning_spec(SERVICE_POWER_TUNING_CLEANER, "clean"),
        _power_tuning_spec(SERVICE_POWER_TUNING_ANALYZER, "analyze"),
        _power_tuning_spec(SERVICE_POWER_TUNING_OPTIMIZER, "optimize"),
    )
}

# --- EventBridge: pattern events that start PatternAnalysisWorkflow ---------------------------
# A producer puts {"Source": EVENT_SOURCE_PATTERNS, "DetailType": EVENT_DETAIL_TYPE_PATTERN_DETECTED,
# "Detail": {"symbol", "bars", "confidence", ...}} on the default bus; the rule matches confidence
# at or above the configured threshold and hands the detail to the workflow as its input.
EVENT_SOURCE_PATTERNS: Final = "patternwatch.patterns"
EVENT_DETAIL_TYPE_PATTERN_DETECTED: Final = "PatternDetected"
EVENT_FIELD_CONFIDENCE: Final = "confidence"
