"""alert-processor: AlertQueue (SQS) -> CRITICAL alerts start a human approval, others go to TradingAlerts.

Each message succeeds or fails on its own (partial batch response); failed messages are redelivered
by SQS and dead-lettered after the queue's maxReceiveCount.
"""
from __future__ import annotations

import math
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from patternwatch_shared import aws
from patternwatch_shared.approvals import ApprovalWorkflow, DeliveryLedger
from patternwatch_shared.batch import ReportingBatchProcessor, empty_batch_response, require_records
from patternwatch_shared.config import EnvReader
from patternwatch_shared.decoding import decode_alert_body
from patternwatch_shared.messaging import alert_json
from patternwatch_shared.models import AlertMessage, utc_now
from patternwatch_shared.names.functions import (
    ALERT_PROCESSOR, ENV_APPROVAL_API_BASE_URL, ENV_APPROVAL_EXPIRY_SECONDS, ENV_APPROVAL_REQUESTS_TOPIC_ARN,
    ENV_APPROVAL_TABLE, ENV_PENDING_APPROVALS_QUEUE_URL, ENV_TRADING_ALERTS_TOPIC_ARN,
)
from patternwatch_shared.names.messages import SEVERITY_CRITICAL
from patternwatch_shared.names.metrics import (
    DIMENSION_SEVERITY, METRIC_ALERT_PRIORITY, METRIC_APPROVALS_REQUESTED, METRIC_DUPLICATE_ALERTS_SKIPPED,
    METRIC_RECORDS_PROCESSED, METRIC_RECORDS_REJECTED,
)
from patternwatch_shared.telemetry import DimensionedMetrics, powertools_for

SPEC = ALERT_PROCESSOR
logger, tracer, metrics = powertools_for(SPEC)
processor = ReportingBatchProcessor(EventType.SQS, logger)


class AlertRouter:
    """Routes one invocation's alerts; built per invocation so settings are read when they apply."""

    def __init__(self, context: LambdaContext) -> None:
        env = EnvReader(SPEC)
        # A claim on an alert lasts as long as this invocation can: if it dies mid-delivery, the
        # redelivered message (after the queue's visibility timeout, longer than this) delivers it.
        self.lease_seconds = max(1, math.ceil(context.get_remaining_time_in_millis() / 1000))
        table = env.require(ENV_APPROVAL_TABLE)
        self.approvals = ApprovalWorkflow(aws.client("dynamodb"), table, sqs=aws.client("sqs"), sns=aws.client("sns"))
        self.ledger = DeliveryLedger(aws.client("dynamodb"), table)
        self.expiry_seconds = int(env.require_float(ENV_APPROVAL_EXPIRY_SECONDS, minimum=60, maximum=7 * 24 * 3600))
        self.api_base_url = env.require(ENV_APPROVAL_API_BASE_URL)
        self.pending_queue_url = env.require(ENV_PENDING_APPROVALS_QUEUE_URL)
        self.requests_topic_arn = env.require(ENV_APPROVAL_REQUESTS_TOPIC_ARN)
        self.alerts_topic_arn = env.require(ENV_TRADING_ALERTS_TOPIC_ARN)
        self.priorities = DimensionedMetrics(SPEC.service_name)

    def handle(self, record: SQSRecord) -> None:
        logger.set_correlation_id(record.message_id)
        logger.remove_keys(["alert_id"])  # the previous message's, if it failed
        alert = decode_alert_body(record.body)
        logger.append_keys(alert_id=alert.alertId)
        if not self.ledger.claim(alert.alertId, now=utc_now(), lease_seconds=self.lease_seconds):
            logger.info("alert already delivered; skipped")
            metrics.add_metric(name=METRIC_DUPLICATE_ALERTS_SKIPPED, unit=MetricUnit.Count, value=1)
            return
        try:
            self.deliver(alert)
        except Exception:
            try:
                self.ledger.release(alert.alertId)
            except Exception:
                # The claim lapses with this invocation; the message is retried after that.
                logger.warning("could not release the claim on a failed alert", exc_info=True)
            raise
        try:
            self.ledger.mark_delivered(alert.alertId, now=utc_now())
        except Exception:
            # Delivered already: failing the message now would only deliver it twice.
            logger.warning("alert delivered but not recorded in the ledger", exc_info=True)
        self.priorities.add(METRIC_ALERT_PRIORITY, MetricUnit.Count, DIMENSION_SEVERITY, alert.severity, 1)

    def deliver(self, alert: AlertMessage) -> None:
        if alert.severity == SEVERITY_CRITICAL:
            started = self.approvals.start(
                alert,
                now=utc_now(),
                expiry_seconds=self.expiry_seconds,
                api_base_url=self.api_base_url,
                pending_queue_url=self.pending_queue_url,
                requests_topic_arn=self.requests_topic_arn,
            )
            metrics.add_metric(name=METRIC_APPROVALS_REQUESTED, unit=MetricUnit.Count, value=1)
            logger.info("approval requested", extra={"token_hash": started.token_hash, "expires_at": started.expires_at})
        else:
            publish_alert(alert, self.alerts_topic_arn)


def publish_alert(alert: AlertMessage, topic_arn: str) -> None:
    subject = f"{alert.severity} {alert.pattern or 'threshold'} {alert.symbol or ''}".strip()
    aws.client("sns").publish(
        TopicArn=topic_arn,
        Subject=subject[:100],
        Message=alert_json(alert),
        MessageAttributes={"severity": {"DataType": "String", "StringValue": alert.severity}},
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = require_records(event, "SQS")
    metrics.add_metric(name=METRIC_RECORDS_PROCESSED, unit=MetricUnit.Count, value=len(records))
    if not records:
        logger.warning("empty SQS batch")
        return empty_batch_response()
    router = AlertRouter(context)
    try:
        response = process_partial_response(event=event, record_handler=router.handle, processor=processor, context=context)
    finally:
        router.priorities.flush()
    metrics.add_metric(name=METRIC_RECORDS_REJECTED, unit=MetricUnit.Count, value=processor.rejected)
    return response
