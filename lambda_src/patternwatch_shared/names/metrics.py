"""CloudWatch metrics: emitted as EMF by the handlers, graphed and alarmed on by the monitoring layer."""
from __future__ import annotations

from typing import Final

METRICS_NAMESPACE: Final = "StockPatternDetection"

# --- Metrics ------------------------------------------------------------------------------------
METRIC_PATTERN_DETECTION_DURATION: Final = "PatternDetectionDuration"
METRIC_CONFIDENCE_SCORE: Final = "ConfidenceScore"
METRIC_ALERT_PRIORITY: Final = "AlertPriority"
METRIC_APPROVALS_PROCESSED: Final = "ApprovalsProcessed"
METRIC_APPROVALS_REQUESTED: Final = "ApprovalsRequested"
METRIC_THRESHOLD_CHECKS: Final = "ThresholdChecks"
METRIC_THRESHOLD_BREACHES: Final = "ThresholdBreaches"
# Events the threshold checker refused: not its own schedule's (source, detail-type, rule, time).
METRIC_EVENTS_REJECTED: Final = "EventsRejected"
# RecentPatternsIndex items the threshold checker could not read (a field missing or of the wrong type).
METRIC_PATTERN_ITEMS_SKIPPED: Final = "PatternItemsSkipped"
METRIC_PATTERNS_EVALUATED: Final = "PatternsEvaluated"
METRIC_PATTERNS_DETECTED: Final = "PatternsDetected"
METRIC_RECORDS_PROCESSED: Final = "RecordsProcessed"
METRIC_RECORDS_REJECTED: Final = "RecordsRejected"
METRIC_BARS_STORED: Final = "BarsStored"
METRIC_STORAGE_FAILURES: Final = "StorageFailures"
METRIC_ALERTS_QUEUED: Final = "AlertsQueued"
METRIC_PATTERN_EVENTS_EMITTED: Final = "PatternEventsEmitted"  # PatternDetected events put on EventBridge
METRIC_DUPLICATE_ALERTS_SKIPPED: Final = "DuplicateAlertsSkipped"
METRIC_API_REQUESTS: Final = "ApiRequests"
METRIC_API_REQUESTS_REJECTED: Final = "ApiRequestsRejected"
METRIC_WORKFLOW_ACTIONS: Final = "WorkflowActions"

# --- Dimensions -----------------------------------------------------------------------------------
DIMENSION_SERVICE: Final = "service"  # added by Powertools Metrics to every metric (the spec's service name)
DIMENSION_PATTERN_TYPE: Final = "PatternType"  # a pattern name, or PATTERN_TYPE_ALL
DIMENSION_SEVERITY: Final = "Severity"  # an alert severity (names.messages.ALERT_SEVERITIES)
DIMENSION_ACTION: Final = "Action"  # an approval action (names.messages.ACTION_*)
PATTERN_TYPE_ALL: Final = "all"  # PatternType value for a detection pass over every pattern
