"""kinesis-consumer: bars from Kinesis -> TradingPatterns, detection per symbol, PatternDetected events.

A new match at or above the alert threshold becomes a PatternDetected event on the default EventBridge
bus; the analysis workflow it starts queues the alert. Bad records become batch item failures (with
bisect, bounded retries and the on-failure destination set on the event source mapping); valid records
in the same batch are still stored. A symbol whose event could not be put fails all its records, so
Kinesis retries them and the event is emitted then.
"""
from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from patternwatch_shared import aws
from patternwatch_shared.batch import ReportingBatchProcessor, batch_handler
from patternwatch_shared.config import EnvReader, alert_confidence_threshold
from patternwatch_shared.decoding import decode_bar_record
from patternwatch_shared.ingest import BarIngestor, IngestResult
from patternwatch_shared.models import Bar, PatternDetectedDetail, build_validators
from patternwatch_shared.names.functions import ENV_TRADING_PATTERNS_TABLE, KINESIS_CONSUMER
from patternwatch_shared.names.messages import DETECTION_CONTEXT_BARS
from patternwatch_shared.names.metrics import (
    DIMENSION_PATTERN_TYPE, METRIC_BARS_STORED, METRIC_CONFIDENCE_SCORE, METRIC_PATTERN_EVENTS_EMITTED,
    METRIC_PATTERNS_DETECTED, METRIC_PATTERN_DETECTION_DURATION,
    METRIC_RECORDS_REJECTED, METRIC_STORAGE_FAILURES, PATTERN_TYPE_ALL,
)
from patternwatch_shared.pattern_events import PatternEvents
from patternwatch_shared.storage import TradingPatternsTable
from patternwatch_shared.telemetry import DimensionedMetrics, powertools_for
from patternwatch_shared.window_cache import WindowCache

SPEC = KINESIS_CONSUMER
build_validators(Bar, PatternDetectedDetail)
logger, tracer, metrics = powertools_for(SPEC)
processor = ReportingBatchProcessor(EventType.KinesisDataStreams, logger)
# Each symbol's newest bars, kept between invocations of this execution environment so that a batch
# whose bars follow them reads nothing from DynamoDB (patternwatch_shared.window_cache). A batch of
# n bars of a symbol needs the DETECTION_CONTEXT_BARS - 1 before them. Bound: about 9 KB a symbol,
# so 4,096 symbols take about 40 MB (docs/lambda.md, "Detection in the consumer").
WINDOW_CACHE_SYMBOLS = 4096
window_cache = WindowCache(max_symbols=WINDOW_CACHE_SYMBOLS, bars_per_symbol=DETECTION_CONTEXT_BARS - 1)


class AcceptedBars:
    """Collects the bars the record handler accepted, with their sequence numbers."""

    def __init__(self) -> None:
        self.bars: list[Bar] = []
        self.sequence_numbers: list[str] = []

    def accept(self, record: KinesisStreamRecord) -> None:
        bar = decode_bar_record(record.kinesis.data)
        self.bars.append(bar)
        self.sequence_numbers.append(record.kinesis.sequence_number)


def build_ingestor(function_version: str) -> BarIngestor:
    env = EnvReader(SPEC)
    table_name = env.require(ENV_TRADING_PATTERNS_TABLE)
    table = TradingPatternsTable(aws.client("dynamodb"), table_name)
    events = PatternEvents(aws.client("events"))
    window_cache.bind((table_name, function_version))
    return BarIngestor(
        table, events, tracer.provider, alert_threshold=alert_confidence_threshold(env), window_cache=window_cache
    )


@batch_handler("Kinesis", logger, tracer, metrics)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event["Records"]
    # The first record's eventID (shard and sequence number) identifies this batch in every log line.
    logger.set_correlation_id(records[0].get("eventID") if isinstance(records[0], dict) else None)
    accepted = AcceptedBars()
    response = process_partial_response(event=event, record_handler=accepted.accept, processor=processor, context=context)
    rejected = processor.rejected
    if accepted.bars:
        result = build_ingestor(context.function_version).ingest(accepted.bars)
        retry = []
        for seq, bar in zip(accepted.sequence_numbers, accepted.bars):
            refusal = result.refused_bars.get((bar.symbol, bar.timestamp))
            if refusal is not None:
                rejected += 1
                logger.warning("record rejected", extra={"record_id": seq, "reason": refusal})
            if refusal is not None or bar.symbol in result.failed_symbols:
                retry.append(seq)
        # Kinesis resumes from the lowest reported sequence number; listing every record of a
        # failed symbol keeps the response honest even though only the first one matters.
        response["batchItemFailures"].extend({"itemIdentifier": seq} for seq in retry)
        record_ingest_metrics(result)
        logger.info(
            "batch ingested",
            extra={
                "records": len(records),
                "bars_stored": result.bars_stored,
                "patterns_detected": len(result.new_detections),
                "events_emitted": result.events_emitted,
                "failed_symbols": sorted(result.failed_symbols),
                "bars_refused": len(result.refused_bars),
                "window_cache_hits": result.window_cache_hits,
                "history_queries": result.history_queries,
                "window_cache_symbols": len(window_cache),
            },
        )
    metrics.add_metric(name=METRIC_RECORDS_REJECTED, unit=MetricUnit.Count, value=rejected)
    return response


def record_ingest_metrics(result: IngestResult) -> None:
    metrics.add_metric(name=METRIC_BARS_STORED, unit=MetricUnit.Count, value=result.bars_stored)
    metrics.add_metric(name=METRIC_PATTERNS_DETECTED, unit=MetricUnit.Count, value=len(result.new_detections))
    metrics.add_metric(name=METRIC_PATTERN_EVENTS_EMITTED, unit=MetricUnit.Count, value=result.events_emitted)
    if result.failed_symbols:
        metrics.add_metric(name=METRIC_STORAGE_FAILURES, unit=MetricUnit.Count, value=len(result.failed_symbols))
    dimensioned = DimensionedMetrics(SPEC.service_name)
    dimensioned.extend(
        METRIC_PATTERN_DETECTION_DURATION, MetricUnit.Milliseconds,
        DIMENSION_PATTERN_TYPE, PATTERN_TYPE_ALL, result.detection_ms,
    )
    for detection in result.new_detections:
        dimensioned.add(
            METRIC_CONFIDENCE_SCORE, MetricUnit.Percent,
            DIMENSION_PATTERN_TYPE, detection.pattern, detection.confidence * 100.0,
        )
    dimensioned.flush()
