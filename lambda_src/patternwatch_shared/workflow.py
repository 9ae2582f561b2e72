"""pattern-detector's Step Functions actions: validate -> detect (per family, in parallel) -> score -> decide.

Task input is {"action": ..., ...} (see WORKFLOW_ACTIONS and models.WorkflowRequest); each
action's output is the next one's input. Bad input raises InvalidInputError, which the state
machine can Catch by name (WORKFLOW_ERROR_INVALID_INPUT).
"""
from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from pydantic import ValidationError

from patternwatch_shared import keys
from patternwatch_shared.decoding import describe_validation_error
from patternwatch_shared.detection import Detection, detect_in, detection_span, severity_for
from patternwatch_shared.models import (
    AlertMessage, DecideRequest, DetectRequest, MatchOut, ScoreRequest, ValidateRequest, WorkflowRequest,
)
from patternwatch_shared.names.messages import (
    ALERT_CONFIDENCE_THRESHOLD, ALERT_SOURCE_WORKFLOW, FIELD_ACTION, FIELD_BARS, FIELD_FAMILY, FIELD_MATCHES,
    FIELD_SYMBOL, WORKFLOW_ACTIONS, WORKFLOW_ERROR_INVALID_INPUT,
)


class InvalidInputError(ValueError):
    """Input the workflow cannot use; retrying it will not help."""


assert InvalidInputError.__name__ == WORKFLOW_ERROR_INVALID_INPUT


def parse_request(event: Any) -> ValidateRequest | DetectRequest | ScoreRequest | DecideRequest:
    if not isinstance(event, dict):
        raise InvalidInputError("workflow input must be a JSON object")
    if event.get(FIELD_ACTION) not in WORKFLOW_ACTIONS:
        raise InvalidInputError(
            f"unknown action {str(event.get(FIELD_ACTION))[:40]!r}; expected one of {', '.join(WORKFLOW_ACTIONS)}"
        )
    try:
        return parse(event=event, model=WorkflowRequest)
    except ValidationError as error:
        raise InvalidInputError(describe_validation_error(error)) from None


def validate(request: ValidateRequest) -> dict[str, Any]:
    return {
        FIELD_SYMBOL: request.symbol,
        FIELD_BARS: [bar.model_dump() for bar in request.bars],
        "barCount": len(request.bars),
    }


def detect_family(request: DetectRequest, tracer_provider: Any) -> tuple[dict[str, Any], list[Detection], float]:
    with detection_span(tracer_provider, request.family, Symbol=request.symbol) as span:
        try:
            detections = detect_in(request.bars, patterns=[request.family])
        except ValueError as error:
            raise InvalidInputError(f"bars refused by the pattern engine: {error}") from None
        span.record(detections)
    output = {
        FIELD_FAMILY: request.family,
        FIELD_SYMBOL: request.symbol,
        FIELD_MATCHES: [d.as_match() for d in detections],
    }
    return output, detections, span.duration_ms


def score(request: ScoreRequest) -> dict[str, Any]:
    if any(result.symbol != request.symbol for result in request.results):
        raise InvalidInputError("every family result must be for the workflow's symbol")
    matches = sorted(
        (match for result in request.results for match in result.matches),
        key=lambda m: (-m.confidence, m.endTimestamp, m.pattern),
    )
    top = matches[0] if matches else None
    return {
        FIELD_SYMBOL: request.symbol,
        FIELD_MATCHES: [m.model_dump() for m in matches],
        "topMatch": top.model_dump() if top else None,
        "severity": severity_for(top.confidence) if top else None,
    }


def decide(request: DecideRequest, *, detected_at) -> tuple[dict[str, Any], AlertMessage | None]:
    top: MatchOut | None = request.topMatch
    if top is None or top.confidence <= ALERT_CONFIDENCE_THRESHOLD:
        return {"decision": "NO_ALERT", FIELD_SYMBOL: request.symbol}, None
    alert = AlertMessage(
        # Same identity as the stream's alert for the same pattern ending on the same bar.
        alertId=keys.alert_id(request.symbol, keys.pattern_sort_key(top.endTimestamp, top.pattern)),
        source=ALERT_SOURCE_WORKFLOW,
        severity=severity_for(top.confidence),
        detectedAt=keys.iso_utc(detected_at),
        confidence=top.confidence,
        symbol=request.symbol,
        pattern=top.pattern,
        startTimestamp=top.startTimestamp,
        endTimestamp=top.endTimestamp,
    )
    return {
        "decision": "ALERT",
        FIELD_SYMBOL: request.symbol,
        "alertId": alert.alertId,
        "severity": alert.severity,
    }, alert
