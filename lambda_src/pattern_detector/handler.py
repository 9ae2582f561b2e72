"""pattern-detector: Step Functions actions (validate/detect/score/decide) and the patterns API.

API routes: POST /patterns (submit bars, get matches) and GET /patterns/{symbol} (stored matches,
newest first, paginated with an opaque nextToken).
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, NoReturn

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import BadRequestError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from patternwatch_shared import aws, keys, strict_json, workflow
from patternwatch_shared.api_body import MalformedBody, request_text
from patternwatch_shared.config import EnvReader, alert_confidence_threshold
from patternwatch_shared.decoding import RecordRejected, parse_document
from patternwatch_shared.detection import detect_in, detection_span, pattern_names
from patternwatch_shared.messaging import AlertQueue
from patternwatch_shared.models import SYMBOL_PATTERN, AlertMessage, MatchOut, PatternsRequest, build_validators
from patternwatch_shared.names.functions import ENV_ALERT_QUEUE_URL, ENV_TRADING_PATTERNS_TABLE, PATTERN_DETECTOR
from patternwatch_shared.names.messages import WORKFLOW_ACTION_DETECT, WORKFLOW_ACTION_SCORE, WORKFLOW_ACTION_VALIDATE
from patternwatch_shared.names.metrics import (
    DIMENSION_PATTERN_TYPE, METRIC_ALERTS_QUEUED, METRIC_API_REQUESTS, METRIC_API_REQUESTS_REJECTED,
    METRIC_CONFIDENCE_SCORE, METRIC_PATTERNS_DETECTED, METRIC_PATTERN_DETECTION_DURATION,
    METRIC_WORKFLOW_ACTIONS, PATTERN_TYPE_ALL,
)
from patternwatch_shared.names.routes import PATTERNS_BY_SYMBOL_ROUTE, PATTERNS_ROUTE, QUERY_LIMIT, QUERY_NEXT_TOKEN
from patternwatch_shared.names.table import TABLE_PARTITION_KEY, TABLE_SORT_KEY
from patternwatch_shared.storage import TradingPatternsTable
from patternwatch_shared.telemetry import DimensionedMetrics, powertools_for

SPEC = PATTERN_DETECTOR
# The workflow's requests are built with workflow.WORKFLOW_REQUEST, at import too.
build_validators(PatternsRequest, MatchOut, AlertMessage)
logger, tracer, metrics = powertools_for(SPEC)
app = APIGatewayRestResolver(serializer=strict_json.dumps)

MAX_BODY_CHARS = 1_000_000
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_NEXT_TOKEN_CHARS = 1_024
_SYMBOL = re.compile(SYMBOL_PATTERN)
_PAGE_SIZE_TEXT = re.compile(rf"[0-9]{{1,{len(str(MAX_PAGE_SIZE))}}}")


def trading_patterns() -> TradingPatternsTable:
    return TradingPatternsTable(aws.client("dynamodb"), EnvReader(SPEC).require(ENV_TRADING_PATTERNS_TABLE))


# --- API ---------------------------------------------------------------------------------------
def _reject(message: str) -> NoReturn:
    metrics.add_metric(name=METRIC_API_REQUESTS_REJECTED, unit=MetricUnit.Count, value=1)
    raise BadRequestError(message)


@app.post(PATTERNS_ROUTE)
def submit_bars() -> dict[str, Any]:
    try:
        body = request_text(app.current_event)
    except MalformedBody as error:
        _reject(str(error))
    if not body:
        _reject("request body is required")
    if len(body) > MAX_BODY_CHARS:
        _reject(f"request body is longer than {MAX_BODY_CHARS} characters")
    try:
        request = parse_document(PatternsRequest.model_validate, body)
    except RecordRejected as error:
        _reject(str(error))
    known = set(pattern_names())
    unknown = [p for p in request.patterns or () if p not in known]
    if unknown:
        _reject(f"unknown patterns: {', '.join(unknown)}")
    with detection_span(tracer.provider, PATTERN_TYPE_ALL, Symbol=request.symbol) as span:
        try:
            detections = detect_in(request.bars, patterns=request.patterns, window=request.window)
        except ValueError as error:
            _reject(f"bars refused by the pattern engine: {error}")
        span.record(detections)
    record_detection_metrics(PATTERN_TYPE_ALL, span.duration_ms, detections)
    return {
        "symbol": request.symbol,
        "barCount": len(request.bars),
        "matches": [d.as_match() for d in detections],
    }


@app.get(PATTERNS_BY_SYMBOL_ROUTE)
def stored_patterns(symbol: str) -> dict[str, Any]:
    if not _SYMBOL.fullmatch(symbol):
        _reject("symbol must be 1-12 characters of A-Z, 0-9, '.' or '-', starting with a letter")
    limit = _page_size(app.current_event.get_query_string_value(QUERY_LIMIT))
    start_key = _decode_next_token(app.current_event.get_query_string_value(QUERY_NEXT_TOKEN), symbol)
    items, last_key = trading_patterns().patterns_for_symbol(symbol, limit, start_key)
    return {"symbol": symbol, "items": items, "nextToken": _encode_next_token(last_key)}


def _page_size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE_SIZE
    # ASCII digits only, and few of them: str.isdigit() also accepts "²" or "٣", which int() refuses,
    # and int() refuses more than 4,300 digits.
    if not _PAGE_SIZE_TEXT.fullmatch(raw) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        _reject(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}")
    return int(raw)


def _encode_next_token(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    compact = {"pk": last_key[TABLE_PARTITION_KEY]["S"], "sk": last_key[TABLE_SORT_KEY]["S"]}
    return base64.urlsafe_b64encode(strict_json.dumps(compact).encode()).decode().rstrip("=")


def _decode_next_token(token: str | None, symbol: str) -> dict[str, Any] | None:
    """The token is opaque to clients but must be checked: it becomes ExclusiveStartKey."""
    if token is None:
        return None
    if len(token) > MAX_NEXT_TOKEN_CHARS:
        _reject("nextToken is too long")
    try:
        decoded = strict_json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):  # StrictJsonError is a ValueError
        _reject("nextToken is not valid")
    if (
        not isinstance(decoded, dict)
        or set(decoded) != {"pk", "sk"}
        or decoded["pk"] != keys.pattern_partition_key(symbol)
        or not isinstance(decoded["sk"], str)
        or len(decoded["sk"]) > 100
    ):
        _reject("nextToken is not valid for this symbol")
    return {TABLE_PARTITION_KEY: {"S": decoded["pk"]}, TABLE_SORT_KEY: {"S": decoded["sk"]}}


@app.exception_handler(json.JSONDecodeError)
def _bad_json(error: json.JSONDecodeError) -> Response:
    return Response(status_code=400, content_type=content_types.APPLICATION_JSON, body=strict_json.dumps({"message": "body is not valid JSON"}))


# --- Step Functions ----------------------------------------------------------------------------
def run_workflow_action(event: Any) -> dict[str, Any]:
    request = workflow.parse_request(event)
    if request.correlationId:
        logger.set_correlation_id(request.correlationId)
    logger.append_keys(action=request.action, symbol=request.symbol)
    if request.action == WORKFLOW_ACTION_VALIDATE:
        return workflow.validate(request)
    if request.action == WORKFLOW_ACTION_DETECT:
        output, detections, duration_ms = workflow.detect_family(request, tracer.provider)
        record_detection_metrics(request.family, duration_ms, detections)
        return output
    if request.action == WORKFLOW_ACTION_SCORE:
        return workflow.score(request)
    env = EnvReader(SPEC)
    output, alert = workflow.decide(request, alert_threshold=alert_confidence_threshold(env))
    if alert is not None:
        failed = AlertQueue(aws.client("sqs"), env.require(ENV_ALERT_QUEUE_URL)).send([alert])
        if failed:
            # Let Step Functions retry the task (its Retry policy) rather than drop the alert.
            raise RuntimeError(f"could not queue alert {alert.alertId}")
        metrics.add_metric(name=METRIC_ALERTS_QUEUED, unit=MetricUnit.Count, value=1)
    logger.info("decided", extra=output)
    return output


def record_detection_metrics(pattern_type: str, duration_ms: float, detections) -> None:
    dimensioned = DimensionedMetrics(SPEC.service_name)
    dimensioned.add(METRIC_PATTERN_DETECTION_DURATION, MetricUnit.Milliseconds, DIMENSION_PATTERN_TYPE, pattern_type, duration_ms)
    for detection in detections:
        dimensioned.add(
            METRIC_CONFIDENCE_SCORE, MetricUnit.Percent, DIMENSION_PATTERN_TYPE, detection.pattern, detection.confidence * 100.0
        )
    dimensioned.flush()
    metrics.add_metric(name=METRIC_PATTERNS_DETECTED, unit=MetricUnit.Count, value=len(detections))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and "httpMethod" in event:
        metrics.add_metric(name=METRIC_API_REQUESTS, unit=MetricUnit.Count, value=1)
        return app.resolve(event, context)
    metrics.add_metric(name=METRIC_WORKFLOW_ACTIONS, unit=MetricUnit.Count, value=1)
    # The runtime would serialise NaN or Infinity as tokens that Step Functions refuses.
    return strict_json.require_json(run_workflow_action(event))
