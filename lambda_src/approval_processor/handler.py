"""approval-processor: POST /approve/{token} with body approve|reject.

200 first decision, 409 repeated decision, 410 expired (an auto-reject is recorded), 404 unknown
token, 400 malformed token or body; 502 when the decision is recorded but its notification failed
(repeating the request resends it).
"""
from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter, ValidationError

from patternwatch_shared import aws, strict_json
from patternwatch_shared.api_body import MalformedBody, request_text
from patternwatch_shared.approvals import ApprovalWorkflow, MalformedToken, token_hash
from patternwatch_shared.config import EnvReader
from patternwatch_shared.models import ApprovalDecision, utc_now
from patternwatch_shared.names.functions import APPROVAL_PROCESSOR, ENV_APPROVAL_TABLE, ENV_TRADING_ALERTS_TOPIC_ARN
from patternwatch_shared.names.messages import ACTION_APPROVE, ACTION_REJECT
from patternwatch_shared.names.metrics import (
    DIMENSION_ACTION, METRIC_API_REQUESTS, METRIC_API_REQUESTS_REJECTED, METRIC_APPROVALS_PROCESSED,
)
from patternwatch_shared.names.routes import APPROVAL_ROUTE
from patternwatch_shared.telemetry import DimensionedMetrics, powertools_for

SPEC = APPROVAL_PROCESSOR
logger, tracer, metrics = powertools_for(SPEC)
app = APIGatewayRestResolver(serializer=strict_json.dumps)

MAX_BODY_CHARS = 256
BARE_ACTIONS = (ACTION_APPROVE, ACTION_REJECT)
# The same type the API's request model is generated from, so the edge and the handler agree.
APPROVAL_DECISION = TypeAdapter(ApprovalDecision)
DECISION_FORMS = 'body must be {"action": "approve"|"reject"}, "approve" or "reject"'


def json_response(status_code: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status_code, content_type=content_types.APPLICATION_JSON, body=strict_json.dumps(body))


class BadDecision(ValueError):
    pass


def parse_decision(body: str | None) -> str:
    """Body is {"action": "approve"|"reject"}, the JSON string "approve"|"reject", or the bare word."""
    if not body or not body.strip():
        raise BadDecision(DECISION_FORMS)
    if len(body) > MAX_BODY_CHARS:
        raise BadDecision(f"body is longer than {MAX_BODY_CHARS} characters")
    text = body.strip()
    if text in BARE_ACTIONS:  # the bare word, which is not JSON
        return text
    try:
        # Read strictly first: pydantic's JSON parser keeps the last of a repeated "action".
        decision = APPROVAL_DECISION.validate_python(strict_json.loads(text))
    except strict_json.StrictJsonError as error:
        raise BadDecision(f"{error}; {DECISION_FORMS}") from None
    except ValidationError:
        raise BadDecision(DECISION_FORMS) from None
    return decision if isinstance(decision, str) else decision.action


@app.post(APPROVAL_ROUTE)
def decide(token: str) -> Response:
    try:
        token_hash(token)
        action = parse_decision(request_text(app.current_event))
    except (MalformedToken, MalformedBody, BadDecision) as error:
        metrics.add_metric(name=METRIC_API_REQUESTS_REJECTED, unit=MetricUnit.Count, value=1)
        return json_response(400, {"message": str(error)})
    env = EnvReader(SPEC)
    approvals = ApprovalWorkflow(aws.client("dynamodb"), env.require(ENV_APPROVAL_TABLE), sns=aws.client("sns"))
    outcome = approvals.decide(token, action, now=utc_now(), results_topic_arn=env.require(ENV_TRADING_ALERTS_TOPIC_ARN))
    if outcome.recorded_action:
        dimensioned = DimensionedMetrics(SPEC.service_name)
        dimensioned.add(METRIC_APPROVALS_PROCESSED, MetricUnit.Count, DIMENSION_ACTION, outcome.recorded_action, 1)
        dimensioned.flush()
    logger.info("approval decision", extra={"requested": action, "status_code": outcome.status_code, "recorded": outcome.recorded_action})
    return json_response(outcome.status_code, outcome.body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name=METRIC_API_REQUESTS, unit=MetricUnit.Count, value=1)
    return app.resolve(event, context)
