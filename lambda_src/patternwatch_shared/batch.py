"""Batch handlers: the decorator every one wears, and the Powertools BatchProcessor set up the way they use it."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from patternwatch_shared.decoding import RecordRejected
from patternwatch_shared.names.metrics import METRIC_RECORDS_PROCESSED

BatchHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class ReportingBatchProcessor(BatchProcessor):
    """BatchProcessor that logs each failed record in one line and counts rejections.

    raise_on_entire_batch_failure is off: a batch whose every record is bad is still answered with
    item failures, so the event source retries or dead-letters record by record instead of
    retrying the whole batch as a function error.
    """

    def __init__(self, event_type: EventType, logger: Logger):
        super().__init__(event_type=event_type, raise_on_entire_batch_failure=False)
        self._log = logger
        self.rejected = 0  # records refused as invalid in the current batch

    def _prepare(self):
        super()._prepare()
        self.rejected = 0

    def failure_handler(self, record: Any, exception: Any):
        error = exception[1]
        identifier = record_identifier(record)
        if isinstance(error, RecordRejected):
            self.rejected += 1
            self._log.warning("record rejected", extra={"record_id": identifier, "reason": str(error)})
        else:
            self._log.error("record failed", extra={"record_id": identifier}, exc_info=exception)
        return super().failure_handler(record, exception)


def record_identifier(record: Any) -> str | None:
    """The id a partial batch response uses: Kinesis sequence number or SQS message id.

    The processor hands over Powertools data classes, which wrap the raw record dict.
    """
    raw = getattr(record, "raw_event", record)
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("kinesis"), dict):
        return raw["kinesis"].get("sequenceNumber")
    return raw.get("messageId")


class InvalidBatchEvent(ValueError):
    """The invocation is not a batch from the expected event source (a wiring mistake)."""


def batch_handler(source: str, logger: Logger, tracer: Tracer, metrics: Metrics) -> Callable[[BatchHandler], BatchHandler]:
    """Makes a function the handler of batches from `source` ("SQS", "Kinesis"), instrumented like every
    batch handler here: Lambda context in the logs, traced, metrics flushed. Before the function runs, an
    event without a `Records` list is refused (InvalidBatchEvent: a wiring mistake), the records are
    counted as processed, and an empty batch is answered, so the function only sees records."""

    def decorate(handler: BatchHandler) -> BatchHandler:
        @functools.wraps(handler)
        def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
            records = event.get("Records") if isinstance(event, dict) else None
            if not isinstance(records, list):
                raise InvalidBatchEvent(f"Invalid event format: not a {source} batch (no 'Records' list)")
            metrics.add_metric(name=METRIC_RECORDS_PROCESSED, unit=MetricUnit.Count, value=len(records))
            if not records:
                logger.warning(f"empty {source} batch")
                return {"batchItemFailures": []}
            return handler(event, context)

        traced = tracer.capture_lambda_handler(capture_response=False)(metrics.log_metrics(handle_batch))
        return logger.inject_lambda_context(clear_state=True)(traced)

    return decorate
