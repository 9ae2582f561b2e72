"""PatternAnalysisWorkflow: validate -> three pattern families in parallel -> score -> decide.

The input is a PatternDetected event's detail (patternwatch_shared.models.PatternDetectedDetail): one
candidate match and the bars it was found in. Every task calls pattern-detector's `live` alias with one
of its workflow actions; the task inputs are exactly the request models of patternwatch_shared.models
(which forbid extra fields). Validation receives the whole input (`$`), so a malformed event is refused
by the model with a clear InvalidInputError rather than by a missing JSONPath. The parallel state adds
the three family results to its input (ResultPath), so scoring sees the candidate and every match.
Any error that survives the retries ends in ManualReview, which tells the operators on the ops topic and
then fails the execution, so failures still count in ExecutionsFailed.
"""
from __future__ import annotations

from typing import Any

from patternwatch_shared.names.messages import (
    FIELD_ACTION, FIELD_BARS, FIELD_CANDIDATE, FIELD_CONFIRMED, FIELD_CORRELATION_ID, FIELD_DETAIL, FIELD_FAMILY,
    FIELD_RESULTS, FIELD_SYMBOL, PATTERN_FAMILIES, WORKFLOW_ACTION_DECIDE, WORKFLOW_ACTION_DETECT,
    WORKFLOW_ACTION_SCORE, WORKFLOW_ACTION_VALIDATE, WORKFLOW_ERROR_INVALID_INPUT,
)

START = "DataValidation"
PARALLEL = "PatternDetection"
SCORING = "ConfidenceScoring"
DECISION = "AlertDecision"
MANUAL_REVIEW = "ManualReview"
FAILED = "AnalysisFailed"
SNS_PUBLISH = "arn:aws:states:::sns:publish"
RETRY_ATTEMPTS = 3
RETRY_BACKOFF = 2.0
RETRY_INTERVAL_SECONDS = 1

# The execution name doubles as the correlation id in every handler log line.
_CORRELATION = {f"{FIELD_CORRELATION_ID}.$": "$$.Execution.Name"}


def detect_state_name(family: str) -> str:
    """`head-and-shoulders` -> `DetectHeadAndShoulders`."""
    return "Detect" + "".join(part.capitalize() for part in family.split("-"))


def retry_policy() -> list[dict[str, Any]]:
    # Bad input fails the same way every time: retrying it only delays the manual review.
    return [
        {"ErrorEquals": [WORKFLOW_ERROR_INVALID_INPUT], "MaxAttempts": 0},
        {
            "ErrorEquals": ["States.ALL"],
            "IntervalSeconds": RETRY_INTERVAL_SECONDS,
            "MaxAttempts": RETRY_ATTEMPTS,
            "BackoffRate": RETRY_BACKOFF,
        },
    ]


def to_manual_review() -> list[dict[str, Any]]:
    # The error joins the state's input (ResultPath), so the reviewer sees what was being analysed.
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": MANUAL_REVIEW}]


def _task(resource: str, parameters: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": resource, "Parameters": parameters, "Retry": retry_policy(), **rest}


def _action(action: str, *from_input: str, **fixed: str) -> dict[str, Any]:
    """A detector task's input: the action, fixed values, these fields of the state's input, the correlation id."""
    return {FIELD_ACTION: action, **fixed, **{f"{field}.$": f"$.{field}" for field in from_input}, **_CORRELATION}


def _validation() -> dict[str, Any]:
    """validate's input: the whole execution input as the PatternDetected detail."""
    return {FIELD_ACTION: WORKFLOW_ACTION_VALIDATE, f"{FIELD_DETAIL}.$": "$", **_CORRELATION}


def definition(*, detector_arn: str, review_topic_arn: str) -> dict[str, Any]:
    """`detector_arn`: pattern-detector's alias ARN; `review_topic_arn`: where ManualReview publishes."""
    branches = [
        {
            "StartAt": detect_state_name(family),
            "States": {
                detect_state_name(family): _task(
                    detector_arn, _action(WORKFLOW_ACTION_DETECT, FIELD_SYMBOL, FIELD_BARS, **{FIELD_FAMILY: family}), End=True
                )
            },
        }
        for family in PATTERN_FAMILIES
    ]
    return {
        "Comment": "PatternWatch pattern analysis: confirm a PatternDetected candidate (validate, detect three families in parallel, score) and decide on its alert",
        "StartAt": START,
        "States": {
            START: _task(detector_arn, _validation(), Catch=to_manual_review(), Next=PARALLEL),
            PARALLEL: {
                "Type": "Parallel",
                "Branches": branches,
                # The three family results join {symbol, bars, candidate}: scoring needs the candidate too.
                "ResultPath": f"$.{FIELD_RESULTS}",
                "Catch": to_manual_review(),
                "Next": SCORING,
            },
            SCORING: _task(
                detector_arn,
                _action(WORKFLOW_ACTION_SCORE, FIELD_SYMBOL, FIELD_CANDIDATE, FIELD_RESULTS),
                Catch=to_manual_review(),
                Next=DECISION,
            ),
            DECISION: _task(
                detector_arn,
                _action(WORKFLOW_ACTION_DECIDE, FIELD_SYMBOL, FIELD_CANDIDATE, FIELD_CONFIRMED),
                Catch=to_manual_review(),
                End=True,
            ),
            MANUAL_REVIEW: _task(
                SNS_PUBLISH,
                {
                    "TopicArn": review_topic_arn,
                    "Subject": "PatternWatch analysis needs a manual review",
                    "Message.$": "States.Format('Execution {} of {} failed after retries: {}', $$.Execution.Id, $$.StateMachine.Name, States.JsonToString($.error))",
                },
                Next=FAILED,
            ),
            FAILED: {"Type": "Fail", "Error": "PatternAnalysisFailed", "Cause": "Sent to manual review on the ops topic"},
        },
    }
