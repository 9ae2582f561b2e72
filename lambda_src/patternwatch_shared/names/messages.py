"""Fields and values of the events and messages the functions exchange.

Producers (the stream feed, the handlers, the state machine, EventBridge rules) and consumers read
these; the pydantic models in patternwatch_shared.models validate the messages themselves.
"""
from __future__ import annotations

from typing import Final

# --- Pattern detection requests -------------------------------------------------------------------
# The engine's default window (pattern_engine.WINDOW, not imported here: it would load numpy).
DETECTION_WINDOW_BARS: Final = 38
# Step Functions runs one parallel branch per family; each family is one engine pattern name.
PATTERN_FAMILIES: Final = ("head-and-shoulders", "double-top", "ascending-triangle")

# --- Alerts (AlertQueue message body, patternwatch_shared.models.AlertMessage) ----------------------
ALERT_SOURCE_STREAM: Final = "stream"  # kinesis-consumer
ALERT_SOURCE_WORKFLOW: Final = "workflow"  # pattern-detector's decide step
ALERT_SOURCE_THRESHOLD: Final = "threshold"  # threshold-checker

SEVERITY_CRITICAL: Final = "CRITICAL"
SEVERITY_HIGH: Final = "HIGH"
SEVERITY_MEDIUM: Final = "MEDIUM"
SEVERITY_LOW: Final = "LOW"
SEVERITIES: Final = (SEVERITY_CRITICAL, SEVERITY_HIGH, SEVERITY_MEDIUM, SEVERITY_LOW)
# Matches strictly above this confidence go to AlertQueue ("confidence > 0.9").
ALERT_CONFIDENCE_THRESHOLD: Final = 0.9
# Confidence at or above this makes an alert CRITICAL, i.e. it needs a human approval.
CRITICAL_CONFIDENCE_THRESHOLD: Final = 0.95

# --- Approvals ------------------------------------------------------------------------------------
ACTION_APPROVE: Final = "approve"
ACTION_REJECT: Final = "reject"
ACTION_AUTO_REJECT: Final = "auto-reject"  # recorded by the platform when an approval reaches its deadline
APPROVAL_STATUS_PENDING: Final = "PENDING"
APPROVAL_STATUS_APPROVED: Final = "APPROVED"
APPROVAL_STATUS_REJECTED: Final = "REJECTED"
APPROVAL_STATUS_EXPIRED: Final = "EXPIRED"  # auto-rejected
APPROVAL_TOKEN_BYTES: Final = 16  # 128 bits, sent as 32 lowercase hex characters
# Who decided an approval that expired: no person, the platform (its expiry timer or a too-late link).
DECIDED_BY_PLATFORM: Final = "platform"
DECIDED_BY_PLATFORM_NAME: Final = "the platform"
# AlertApprovalRequests message attribute naming the approver a request is for; each approver's
# subscription filters on it, so everyone receives only their own link.
APPROVER_MESSAGE_ATTRIBUTE: Final = "approver"
# The longest approval: SQS holds a message invisible for at most 12 hours per receive, and PendingApprovals'
# visibility is the expiry timer (one re-arm per receive; see docs/approvals.md).
MAX_APPROVAL_EXPIRY_SECONDS: Final = 12 * 3600
MAX_APPROVAL_COMMENT_CHARS: Final = 500

# --- Step Functions task input: {"action": <one of WORKFLOW_ACTIONS>, ...} --------------------------
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
WORKFLOW_ACTIONS: Final = (WORKFLOW_ACTION_VALIDATE, WORKFLOW_ACTION_DETECT, WORKFLOW_ACTION_SCORE, WORKFLOW_ACTION_DECIDE)
# Error names a Step Functions Catch/Retry can match (Lambda reports the exception class name).
WORKFLOW_ERROR_INVALID_INPUT: Final = "InvalidInputError"

# --- EventBridge: pattern events that start PatternAnalysisWorkflow ---------------------------------
# A producer puts {"Source": EVENT_SOURCE_PATTERNS, "DetailType": EVENT_DETAIL_TYPE_PATTERN_DETECTED,
# "Detail": {"symbol", "bars", "confidence", ...}} on the default bus; the rule matches confidence
# at or above the configured threshold and hands the detail to the workflow as its input.
EVENT_SOURCE_PATTERNS: Final = "patternwatch.patterns"
EVENT_DETAIL_TYPE_PATTERN_DETECTED: Final = "PatternDetected"
EVENT_FIELD_CONFIDENCE: Final = "confidence"
