"""approval-processor: the approval page. GET /approve/{token} shows it, POST /approve/{token} decides.

The link's token and the approver it was issued to are the credential: the routes need no API key, and
the shared key grants nothing here. GET never changes anything (mail scanners and chat previews fetch
links); POST takes the form (`action=approve|reject&comment=...`) or, from API clients, JSON
(`{"action": "approve"|"reject", "comment"?: "..."}`, the JSON string "approve"/"reject", or the bare
word). Status codes and the page for each case are in approval_processor/pages.py.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter, ValidationError

from approval_processor.pages import Answer, Chart, answer, media_type, refusal, wants_json
from patternwatch_shared import aws, strict_json
from patternwatch_shared.api_body import MalformedBody, request_text
from patternwatch_shared.approvals import Approval, ApprovalWorkflow, LinkState, MalformedToken, RequestSource, token_hash
from patternwatch_shared.approvers import parse_approvers
from patternwatch_shared.config import EnvReader
from patternwatch_shared.evidence import evidence_keys
from patternwatch_shared.models import AlertMessage, ApprovalDecision, build_validators, utc_now
from patternwatch_shared.names.functions import (
    APPROVAL_PROCESSOR, ENV_APPROVAL_TABLE, ENV_APPROVERS, ENV_DATA_BUCKET, ENV_TRADING_ALERTS_TOPIC_ARN,
)
from patternwatch_shared.names.messages import ACTION_APPROVE, ACTION_REJECT, MAX_APPROVAL_COMMENT_CHARS
from patternwatch_shared.names.metrics import (
    DIMENSION_ACTION, METRIC_API_REQUESTS, METRIC_API_REQUESTS_REJECTED, METRIC_APPROVALS_PROCESSED,
)
from patternwatch_shared.names.routes import APPROVAL_ROUTE
from patternwatch_shared.telemetry import DimensionedMetrics, powertools_for

SPEC = APPROVAL_PROCESSOR
build_validators(AlertMessage)  # the approval's stored alert
logger, tracer, metrics = powertools_for(SPEC)
app = APIGatewayRestResolver(serializer=strict_json.dumps)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# A comment of MAX_APPROVAL_COMMENT_CHARS, percent-encoded (up to 9 bytes a character), plus the action.
MAX_BODY_CHARS = 9 * MAX_APPROVAL_COMMENT_CHARS + 64
BARE_ACTIONS = (ACTION_APPROVE, ACTION_REJECT)
# The same type the API's request model is generated from, so the edge and the handler agree.
APPROVAL_DECISION = TypeAdapter(ApprovalDecision)
DECISION_FORMS = 'body must be the form action=approve|reject (and comment), {"action": "approve"|"reject"}, "approve" or "reject"'
# A chart larger than this is not inlined: the page must stay well inside Lambda's 6 MB response.
MAX_CHART_BYTES = 3 * 1024 * 1024


class BadDecision(ValueError):
    pass


def parse_decision(body: str | None, content_type: str | None) -> tuple[str, str | None]:
    """(action, comment) from the form or a JSON body; BadDecision says what is wrong."""
    if not body or not body.strip():
        raise BadDecision(DECISION_FORMS)
    if len(body) > MAX_BODY_CHARS:
        raise BadDecision(f"body is longer than {MAX_BODY_CHARS} characters")
    if media_type(content_type) == FORM_CONTENT_TYPE:
        return parse_form(body)
    text = body.strip()
    if text in BARE_ACTIONS:  # the bare word, which is not JSON
        return text, None
    try:
        # Read strictly first: pydantic's JSON parser keeps the last of a repeated "action".
        decision = APPROVAL_DECISION.validate_python(strict_json.loads(text))
    except strict_json.StrictJsonError as error:
        raise BadDecision(f"{error}; {DECISION_FORMS}") from None
    except ValidationError:
        raise BadDecision(DECISION_FORMS) from None
    if isinstance(decision, str):
        return decision, None
    return decision.action, clean_comment(decision.comment)


def parse_form(body: str) -> tuple[str, str | None]:
    try:
        fields = parse_qs(body, keep_blank_values=True, strict_parsing=True, max_num_fields=4)
    except ValueError:
        raise BadDecision("the form could not be read") from None
    if not set(fields) <= {"action", "comment"} or len(fields.get("action", [])) != 1 or len(fields.get("comment", [])) > 1:
        raise BadDecision("the form must have one action and at most one comment")
    action = fields["action"][0]
    if action not in BARE_ACTIONS:
        raise BadDecision("action must be approve or reject")
    comment = fields.get("comment", [""])[0]
    if len(comment) > MAX_APPROVAL_COMMENT_CHARS:
        raise BadDecision(f"comment is longer than {MAX_APPROVAL_COMMENT_CHARS} characters")
    return action, clean_comment(comment)


def clean_comment(comment: str | None) -> str | None:
    return (comment or "").strip() or None


class ApprovalLinks:
    """The settings and clients one request needs."""

    def __init__(self) -> None:
        env = EnvReader(SPEC)
        self.workflow = ApprovalWorkflow(aws.client("dynamodb"), env.require(ENV_APPROVAL_TABLE), sns=aws.client("sns"))
        self.approvers = parse_approvers(env.require(ENV_APPROVERS))
        self.results_topic_arn = env.require(ENV_TRADING_ALERTS_TOPIC_ARN)
        self.data_bucket = env.require(ENV_DATA_BUCKET)

    def chart(self, approval: Approval) -> Chart:
        """The alert's evidence chart from the data bucket (evidence_keys), or why there is none."""
        if approval.alert.pattern is None:
            return Chart(missing_reason="Threshold alerts have no chart: they sum up many patterns, not one.")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            stored = aws.client("s3").get_object(Bucket=self.data_bucket, Key=evidence_keys(approval.alert_id).chart)
            if stored["ContentLength"] > MAX_CHART_BYTES:
                return Chart(missing_reason="The evidence chart is too large to show here.")
            return Chart(png=stored["Body"].read())
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return Chart(missing_reason="The evidence chart for this alert is missing.")
            logger.warning("evidence chart could not be read", exc_info=True)
        except BotoCoreError:
            logger.warning("evidence chart could not be read", exc_info=True)
        return Chart(missing_reason="The evidence chart could not be loaded; try again in a moment.")


def respond(reply: Answer) -> Response:
    return Response(status_code=reply.status_code, content_type=reply.content_type, body=reply.body, headers=reply.headers)


def client_wants_json() -> bool:
    headers = app.current_event.headers
    return wants_json(headers.get("accept"), headers.get("content-type"))


@app.get(APPROVAL_ROUTE)
def show(token: str) -> Response:
    as_json = client_wants_json()
    try:
        token_hash(token)
    except MalformedToken as error:
        metrics.add_metric(name=METRIC_API_REQUESTS_REJECTED, unit=MetricUnit.Count, value=1)
        return respond(refusal(str(error), as_json=as_json))
    links, now = ApprovalLinks(), utc_now()
    outcome = links.workflow.view(token, now=now, approvers=links.approvers)
    chart = links.chart(outcome.approval) if outcome.state is LinkState.PENDING and not as_json else None
    logger.info("approval page", extra={"state": outcome.state.value, "approver": outcome.approver.id if outcome.approver else None})
    return respond(answer(outcome, deciding=False, as_json=as_json, now=now, chart=chart))


@app.post(APPROVAL_ROUTE)
def decide(token: str) -> Response:
    event = app.current_event
    as_json = client_wants_json()
    try:
        token_hash(token)
        action, comment = parse_decision(request_text(event), event.headers.get("content-type"))
    except (MalformedToken, MalformedBody, BadDecision) as error:
        metrics.add_metric(name=METRIC_API_REQUESTS_REJECTED, unit=MetricUnit.Count, value=1)
        return respond(refusal(str(error), as_json=as_json))
    links, now = ApprovalLinks(), utc_now()
    identity = event.request_context.identity
    outcome = links.workflow.decide(
        token,
        action,
        now=now,
        approvers=links.approvers,
        source=RequestSource(source_ip=identity.source_ip, user_agent=identity.user_agent),
        results_topic_arn=links.results_topic_arn,
        comment=comment,
    )
    if outcome.recorded_action:
        dimensioned = DimensionedMetrics(SPEC.service_name)
        dimensioned.add(METRIC_APPROVALS_PROCESSED, MetricUnit.Count, DIMENSION_ACTION, outcome.recorded_action, 1)
        dimensioned.flush()
    reply = answer(outcome, deciding=True, as_json=as_json, now=now)
    logger.info(
        "approval decision",
        extra={
            "requested": action,
            "status_code": reply.status_code,
            "state": outcome.state.value,
            "recorded": outcome.recorded_action,
            "approver": outcome.approver.id if outcome.approver else None,
        },
    )
    return respond(reply)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name=METRIC_API_REQUESTS, unit=MetricUnit.Count, value=1)
    return app.resolve(event, context)

