"""pattern-detector's Step Functions actions: validate -> detect (per family, in parallel) -> score -> decide.

The workflow confirms one candidate: the match a PatternDetected event reports (models.PatternDetectedDetail
is the execution's input). `validate` checks the event and splits it into the bars and the candidate;
each `detect` runs the engine over those bars for one family's patterns; `score` finds the candidate
among the re-detected matches; `decide` queues the candidate's alert when its re-detected confidence is
at or above the alert threshold. The alert is the stream's: same alertId, pattern, confidence and start
and end timestamps, with the event's detection time.

Other matches that re-detection finds in the window are listed in score's output and never alerted
here: a match on an earlier bar was the stream's candidate when that bar was new (or did not alert
then), and another pattern ending on the same bar has its own event and execution. So every execution
queues at most one alert, for its own candidate, and two executions never queue the same one.

Task input is {"action": ..., ...} (see WORKFLOW_ACTIONS and models.WorkflowRequest); each
action's output is the next one's input. Bad input raises InvalidInputError, which the state
machine can Catch by name (WORKFLOW_ERROR_INVALID_INPUT).
"""
from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from patternwatch_shared.decoding import describe_validation_error
from patternwatch_shared.detection import Detection, alerts, detect_in, detection_span, severity_for
from patternwatch_shared.models import (
    AlertMessage, DecideRequest, DetectRequest, MatchOut, ScoreRequest, ValidateRequest, WorkflowRequest,
)
from patternwatch_shared.names.messages import (
    ALERT_DETAIL_EXTREMA, ALERT_SOURCE_WORKFLOW, DECISION_ALERT, DECISION_NO_ALERT, FIELD_ACTION, FIELD_BARS, FIELD_CANDIDATE,
    FIELD_CONFIRMED, FIELD_DECISION, FIELD_FAMILY, FIELD_MATCHES, FIELD_OTHER_MATCHES, FIELD_SYMBOL,
    PATTERN_FAMILIES, WORKFLOW_ACTIONS, WORKFLOW_ERROR_INVALID_INPUT,
)

# pydantic itself rather than Powertools' parse(): the parser package costs ~30 ms of import for the same call.
WORKFLOW_REQUEST: TypeAdapter[WorkflowRequest] = TypeAdapter(WorkflowRequest)


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
        return WORKFLOW_REQUEST.validate_python(event)
    except ValidationError as error:
        raise InvalidInputError(describe_validation_error(error)) from None


def validate(request: ValidateRequest) -> dict[str, Any]:
    detail = request.detail
    return {
        FIELD_SYMBOL: detail.symbol,
        FIELD_BARS: [bar.model_dump(mode="json") for bar in detail.bars],
        FIELD_CANDIDATE: detail.candidate().model_dump(mode="json"),
    }


def detect_family(request: DetectRequest, tracer_provider: Any) -> tuple[dict[str, Any], list[Detection], float]:
    with detection_span(tracer_provider, request.family, Symbol=request.symbol) as span:
        try:
            detections = detect_in(request.bars, patterns=PATTERN_FAMILIES[request.family])
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
    """The candidate as re-detected (same pattern ending on the same bar), and every other match, best first."""
    if any(result.symbol != request.symbol for result in request.results):
        raise InvalidInputError("every family result must be for the workflow's symbol")
    candidate = request.candidate
    matches = sorted(
        (match for result in request.results for match in result.matches),
        key=lambda m: (-m.confidence, m.endTimestamp, m.pattern),
    )
    confirmed = next(
        (m for m in matches if (m.pattern, m.endTimestamp) == (candidate.pattern, candidate.endTimestamp)), None
    )
    return {
        FIELD_SYMBOL: request.symbol,
        FIELD_CANDIDATE: candidate.model_dump(mode="json"),
        FIELD_CONFIRMED: confirmed.model_dump(mode="json") if confirmed else None,
        FIELD_OTHER_MATCHES: [m.model_dump(mode="json") for m in matches if m is not confirmed],
    }


def decide(request: DecideRequest, *, alert_threshold: float) -> tuple[dict[str, Any], AlertMessage | None]:
    candidate = request.candidate
    confirmed: MatchOut | None = request.confirmed
    outcome = {FIELD_SYMBOL: request.symbol, "alertId": candidate.alertId, "pattern": candidate.pattern}
    if confirmed is None:
        return {FIELD_DECISION: DECISION_NO_ALERT, **outcome, "reason": "the candidate was not re-detected in its bars"}, None
    if (confirmed.pattern, confirmed.endTimestamp) != (candidate.pattern, candidate.endTimestamp):
        raise InvalidInputError("confirmed must be the candidate's pattern ending on the candidate's bar")
    if not alerts(confirmed.confidence, alert_threshold):
        reason = f"confidence {confirmed.confidence:.4f} is below the alert threshold {alert_threshold:g}"
        return {FIELD_DECISION: DECISION_NO_ALERT, **outcome, "confidence": confirmed.confidence, "reason": reason}, None
    alert = AlertMessage(
        # The stream's identity for this match (validated against symbol, end bar and pattern).
        alertId=candidate.alertId,
        source=ALERT_SOURCE_WORKFLOW,
        severity=severity_for(confirmed.confidence, alert_threshold),
        detectedAt=candidate.detectedAt,
        confidence=confirmed.confidence,
        symbol=request.symbol,
        pattern=confirmed.pattern,
        startTimestamp=confirmed.startTimestamp,
        endTimestamp=confirmed.endTimestamp,
        details={ALERT_DETAIL_EXTREMA: confirmed.extrema},
    )
    return {
        FIELD_DECISION: DECISION_ALERT,
        **outcome,
        "confidence": alert.confidence,
        "severity": alert.severity,
    }, alert
