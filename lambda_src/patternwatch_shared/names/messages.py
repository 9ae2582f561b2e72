"""Fields and values of the events and messages the functions exchange.

Producers (the stream feed, the handlers, the state machine, EventBridge rules) and consumers read
these; the pydantic models in patternwatch_shared.models validate the messages themselves.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Final

# --- Pattern detection requests -------------------------------------------------------------------
# The engine's default window (pattern_engine.WINDOW, not imported here: it would load numpy).
DETECTION_WINDOW_BARS: Final = 38
# Bars a streaming detection reads: the window plus pattern_engine.CONFIRM_BARS + 1 earlier windows
# (patternwatch_shared.detection.context_bars(); a test keeps the two equal). A PatternDetected event
# carries exactly this context, so the workflow re-detects what the stream saw.
DETECTION_CONTEXT_BARS: Final = 43
# PatternAnalysisWorkflow runs one parallel branch per family; together the families cover each of
# the engine's 13 patterns exactly once (a test checks this against pattern_engine.PATTERN_NAMES).
# Each family is named after the seed's pattern that heads it:
# - head-and-shoulders: the five-turn reversals ordered by their turns (the paper's patterns);
# - double-top: tops and bottoms at equal levels (two turns, or three on each side of a range);
# - ascending-triangle: the trendline triangles (a least-squares line through each side).
PATTERN_FAMILIES: Final = MappingProxyType({
    "head-and-shoulders": (
        "head-and-shoulders", "inverse-head-and-shoulders", "broadening-top", "broadening-bottom",
        "triangle-top", "triangle-bottom",
    ),
    "double-top": ("double-top", "double-bottom", "rectangle-top", "rectangle-bottom"),
    "ascending-triangle": ("ascending-triangle", "descending-triangle", "symmetric-triangle"),
})

# --- Alerts (AlertQueue message body, patternwatch_shared.models.AlertMessage) ----------------------
# kinesis-consumer queued its alerts itself before they went through the workflow; still accepted, so
# messages queued before that change are delivered.
ALERT_SOURCE_STREAM: Final = "stream"
ALERT_SOURCE_WORKFLOW: Final = "workflow"  # pattern-detector's decide step: every pattern alert
ALERT_SOURCE_THRESHOLD: Final = "threshold"  # threshold-checker

# AlertMessage.details key of a pattern alert's turns, [[epoch seconds, close], ...] (the evidence chart marks them).
ALERT_DETAIL_EXTREMA: Final = "extrema"

SEVERITY_CRITICAL: Final = "CRITICAL"
SEVERITY_HIGH: Final = "HIGH"
SEVERITY_MEDIUM: Final = "MEDIUM"
SEVERITY_LOW: Final = "LOW"
# The severities an alert can have: an alerting match is CRITICAL or HIGH (detection.severity_for), a threshold
# alert HIGH. MEDIUM and LOW only describe stored matches under the alert threshold, which never alert.
ALERT_SEVERITIES: Final = (SEVERITY_CRITICAL, SEVERITY_HIGH)
# Which detections alert is configuration (envs/*.json `alerts.confidence_threshold`, reaching the
# functions as ALERT_CONFIDENCE_THRESHOLD). Which alerts need a human is policy, one value for every
# environment: confidence at or above this makes an alert CRITICAL, i.e. it waits for an approval.
# It is a constant so that staging rehearses exactly production's approval rule; see README "Alerts".
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
FIELD_DETAIL: Final = "detail"  # validate's input: the whole PatternDetected detail
FIELD_CANDIDATE: Final = "candidate"  # the stream's match the workflow confirms (detail without symbol and bars)
FIELD_CONFIRMED: Final = "confirmed"  # the workflow's own re-detection of the candidate, or null
FIELD_OTHER_MATCHES: Final = "otherMatches"  # everything else re-detection found in the window
FIELD_DECISION: Final = "decision"
DECISION_ALERT: Final = "ALERT"
DECISION_NO_ALERT: Final = "NO_ALERT"
WORKFLOW_ACTION_VALIDATE: Final = "validate"
WORKFLOW_ACTION_DETECT: Final = "detect"
WORKFLOW_ACTION_SCORE: Final = "score"
WORKFLOW_ACTION_DECIDE: Final = "decide"
WORKFLOW_ACTIONS: Final = (WORKFLOW_ACTION_VALIDATE, WORKFLOW_ACTION_DETECT, WORKFLOW_ACTION_SCORE, WORKFLOW_ACTION_DECIDE)
# Error names a Step Functions Catch/Retry can match (Lambda reports the exception class name).
WORKFLOW_ERROR_INVALID_INPUT: Final = "InvalidInputError"

# --- EventBridge: the threshold checker's schedule -------------------------------------------------
# The rule is `<this>-<suffix>`; its name reaches the function as THRESHOLD_CHECK_RULE_NAME, and the
# function accepts only that rule's scheduled events.
THRESHOLD_CHECK_RULE_BASE_NAME: Final = "threshold-check"
SCHEDULED_EVENT_SOURCE: Final = "aws.events"
SCHEDULED_EVENT_DETAIL_TYPE: Final = "Scheduled Event"

# --- EventBridge: pattern events that start PatternAnalysisWorkflow ---------------------------------
# kinesis-consumer puts {"Source": EVENT_SOURCE_PATTERNS, "DetailType": EVENT_DETAIL_TYPE_PATTERN_DETECTED,
# "Detail": <PATTERN_DETECTED_FIELDS>} on the default bus for every new match at or above the alert
# threshold; the `pattern-detected` rule matches confidence at or above the same threshold and hands the
# detail to the workflow as its input. Schema: patternwatch_shared.models.PatternDetectedDetail and
# README "The PatternDetected event".
EVENT_SOURCE_PATTERNS: Final = "patternwatch.patterns"
EVENT_DETAIL_TYPE_PATTERN_DETECTED: Final = "PatternDetected"
EVENT_FIELD_SYMBOL: Final = FIELD_SYMBOL
EVENT_FIELD_PATTERN: Final = "pattern"
EVENT_FIELD_CONFIDENCE: Final = "confidence"
EVENT_FIELD_START_TIMESTAMP: Final = "startTimestamp"
EVENT_FIELD_END_TIMESTAMP: Final = "endTimestamp"
EVENT_FIELD_DETECTED_AT: Final = "detectedAt"
EVENT_FIELD_ALERT_ID: Final = "alertId"
EVENT_FIELD_EXTREMA: Final = "extrema"  # [[epoch seconds, close], ...] of the match's turns, in time order
EVENT_FIELD_BARS: Final = FIELD_BARS  # the DETECTION_CONTEXT_BARS bars ending at the match's end bar, oldest first
PATTERN_DETECTED_FIELDS: Final = (
    EVENT_FIELD_SYMBOL, EVENT_FIELD_PATTERN, EVENT_FIELD_CONFIDENCE, EVENT_FIELD_START_TIMESTAMP,
    EVENT_FIELD_END_TIMESTAMP, EVENT_FIELD_DETECTED_AT, EVENT_FIELD_ALERT_ID, EVENT_FIELD_EXTREMA, EVENT_FIELD_BARS,
)
