"""approval-expiry: PendingApprovals (SQS) is the timer that auto-rejects an approval nobody answered.

alert-processor queues one message per approval, `{"alertId", "deadline"}`, when it opens the approval.
Each delivery of that message asks the approval's item (the authority, not the message) what to do:
- decided already (or gone): nothing; the message succeeds and is deleted;
- still pending before its deadline: the message's visibility is set to the time left (at most SQS's
  12 hours per receive) and it is reported as a batch item failure, so SQS hands it back at the
  deadline. Lambda leaves a failed message's visibility alone, so this is the timer;
- still pending at or after its deadline: recorded as EXPIRED by the platform, the auto-reject goes to
  TradingAlerts, and ApprovalsProcessed is counted with Action=auto-reject.
A message that cannot be read, or whose approval cannot be read, fails too, comes back after the queue's
visibility timeout, and after maxReceiveCount receives lands in PendingApprovals-DLQ.
"""
from __future__ import annotations

import json
import math
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

# patternwatch_shared.batch (Powertools' batch utility) before anything that imports pydantic: when
# pydantic is already loaded, Powertools' batch types import every parser event model, for type hints only.
from patternwatch_shared.batch import batch_handler  # isort: skip
from patternwatch_shared import aws
from patternwatch_shared.approvals import ApprovalWorkflow
from patternwatch_shared.config import EnvReader
from patternwatch_shared.models import AlertMessage, build_validators, utc_now
from patternwatch_shared.names.functions import (
    APPROVAL_EXPIRY, ENV_APPROVAL_TABLE, ENV_PENDING_APPROVALS_QUEUE_URL, ENV_TRADING_ALERTS_TOPIC_ARN,
)
from patternwatch_shared.names.messages import ACTION_AUTO_REJECT
from patternwatch_shared.names.metrics import (
    DIMENSION_ACTION, METRIC_APPROVALS_PROCESSED, METRIC_RECORDS_REJECTED,
)
from patternwatch_shared.telemetry import DimensionedMetrics, powertools_for

SPEC = APPROVAL_EXPIRY
build_validators(AlertMessage)
logger, tracer, metrics = powertools_for(SPEC)
# ChangeMessageVisibility accepts at most 12 hours; a longer wait is re-armed on the next receive.
MAX_VISIBILITY_SECONDS = 12 * 3600


class BadTimerMessage(ValueError):
    pass


def alert_id_of(body: str) -> str:
    try:
        message = json.loads(body)
    except ValueError:
        raise BadTimerMessage("not JSON") from None
    alert_id = message.get("alertId") if isinstance(message, dict) else None
    if not isinstance(alert_id, str) or not alert_id:
        raise BadTimerMessage("no alertId")
    return alert_id


def visibility_for(due_in_seconds: int) -> int:
    """Seconds until SQS should hand the message back: the time left, whole seconds up, within SQS's range."""
    return max(1, min(MAX_VISIBILITY_SECONDS, math.ceil(due_in_seconds)))


@batch_handler("SQS", logger, tracer, metrics)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    env = EnvReader(SPEC)
    workflow = ApprovalWorkflow(aws.client("dynamodb"), env.require(ENV_APPROVAL_TABLE), sns=aws.client("sns"))
    queue_url = env.require(ENV_PENDING_APPROVALS_QUEUE_URL)
    results_topic_arn = env.require(ENV_TRADING_ALERTS_TOPIC_ARN)
    outcomes = DimensionedMetrics(SPEC.service_name)
    failures, rejected = [], 0
    for record in event["Records"]:
        message_id = record["messageId"]
        try:
            alert_id = alert_id_of(record["body"])
            check = workflow.expire(alert_id, now=utc_now(), results_topic_arn=results_topic_arn)
        except BadTimerMessage as error:
            rejected += 1
            logger.warning("timer message rejected", extra={"record_id": message_id, "reason": str(error)})
            failures.append(message_id)
            continue
        except Exception:
            logger.exception("timer message failed", extra={"record_id": message_id})
            failures.append(message_id)
            continue
        if check.recorded:
            outcomes.add(METRIC_APPROVALS_PROCESSED, MetricUnit.Count, DIMENSION_ACTION, ACTION_AUTO_REJECT, 1)
            logger.info("approval auto-rejected at its deadline", extra={"alert_id": alert_id})
        if check.due_in_seconds > 0:
            wait = visibility_for(check.due_in_seconds)
            try:
                aws.client("sqs").change_message_visibility(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=wait)
            except Exception:
                # It comes back after the queue's visibility timeout instead, and is re-armed then.
                logger.warning("timer not re-armed", extra={"record_id": message_id}, exc_info=True)
            failures.append(message_id)  # not done: SQS hands it back when the wait is over
    outcomes.flush()
    metrics.add_metric(name=METRIC_RECORDS_REJECTED, unit=MetricUnit.Count, value=rejected)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}
