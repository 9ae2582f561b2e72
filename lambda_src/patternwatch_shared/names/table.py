"""DynamoDB key design (see README "Data model").

TradingPatterns is a single table:
  bars               PK = BAR#<symbol>        SK = <timestamp, zero-padded epoch seconds>
  detected patterns  PK = PATTERN#<symbol>    SK = <end timestamp>#<pattern>
  recent patterns    GSI1PK = RECENT#<yyyy-mm-dd> (UTC day of detection)
                     GSI1SK = <detected-at ISO 8601>#<symbol>#<pattern>
ApprovalTracking (partition key tokenHash, items expire by TTL on expiresAt) holds three kinds of item:
  approval           tokenHash = approval#<alertId>   one per CRITICAL alert: status, deadline, the decision
                                                      (who, when, source IP, user agent, comment)
  approval link      tokenHash = <SHA-256 of a token> one per approver and approval: alertId, approver id
  delivery claim     tokenHash = delivered#<alertId>  alert-processor's claim on an alert, taken before any
                                                      side effect (CLAIMED with a lease, then DELIVERED)

patternwatch_shared.keys builds the key values from these parts.
"""
from __future__ import annotations

from typing import Final

# --- TradingPatterns ------------------------------------------------------------------------------
TABLE_PARTITION_KEY: Final = "PK"
TABLE_SORT_KEY: Final = "SK"
RECENT_PATTERNS_INDEX: Final = "RecentPatternsIndex"
RECENT_PATTERNS_INDEX_PARTITION_KEY: Final = "GSI1PK"
RECENT_PATTERNS_INDEX_SORT_KEY: Final = "GSI1SK"

BAR_PARTITION_PREFIX: Final = "BAR#"
PATTERN_PARTITION_PREFIX: Final = "PATTERN#"
RECENT_PARTITION_PREFIX: Final = "RECENT#"
KEY_SEPARATOR: Final = "#"
TIMESTAMP_KEY_DIGITS: Final = 12  # SK of a bar: epoch seconds zero-padded to this width

# Pattern items: alert bookkeeping, so a retried batch re-emits the PatternDetected event of a match
# that was stored but whose event was not put. NOT_REQUIRED: below the alert threshold; PENDING: stored,
# event not yet emitted; EVENT_EMITTED: the event is on the bus (items written before the workflow
# carried alerts say QUEUED, which the consumer treats the same way: not pending).
PATTERN_ALERT_STATE_ATTRIBUTE: Final = "alertState"
ALERT_STATE_NOT_REQUIRED: Final = "NOT_REQUIRED"
ALERT_STATE_PENDING: Final = "PENDING"
ALERT_STATE_EVENT_EMITTED: Final = "EVENT_EMITTED"

# --- ApprovalTracking -----------------------------------------------------------------------------
APPROVAL_PARTITION_KEY: Final = "tokenHash"
APPROVAL_TTL_ATTRIBUTE: Final = "expiresAt"  # DynamoDB TTL: when the item may be deleted
APPROVAL_STATUS_ATTRIBUTE: Final = "status"  # one of names.messages.APPROVAL_STATUS_*
APPROVAL_DEADLINE_ATTRIBUTE: Final = "deadline"  # epoch seconds: after this the approval is auto-rejected
APPROVAL_KEY_PREFIX: Final = "approval#"
# Decided approvals are the audit trail of who approved which trade: kept this long after their deadline.
APPROVAL_RECORD_RETENTION_SECONDS: Final = 90 * 86_400
# alert-processor's claim: tokenHash = "delivered#<alertId>" (never a 64-hex token hash), expiring after a
# day, so a redelivered or duplicated alert is delivered once.
DELIVERED_ALERT_KEY_PREFIX: Final = "delivered#"
DELIVERED_ALERT_RETENTION_SECONDS: Final = 86_400
# A ledger item is a claim while one invocation delivers the alert (until `leaseUntil`, epoch
# seconds), then the mark that it was delivered. Marks written before states existed have no state.
DELIVERY_STATE_ATTRIBUTE: Final = "deliveryState"
DELIVERY_LEASE_ATTRIBUTE: Final = "leaseUntil"
DELIVERY_STATE_CLAIMED: Final = "CLAIMED"
DELIVERY_STATE_DELIVERED: Final = "DELIVERED"
