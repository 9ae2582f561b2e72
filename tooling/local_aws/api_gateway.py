"""The deployed REST API, served to real HTTP clients by the emulator, as API Gateway would serve it.

moto stores REST APIs but ignores AWS_PROXY integrations. Requests to
`<emulator>/restapis/<api id>/<stage>/_user_request_/<path>` (patternwatch_infra.emulator.emulator_invoke_url)
are handled here:
1. the stage and the deployment that serves the request are resolved in one place (`resolve_stage`): the
   stage's deployment, or with the stage's canary share of the requests (canarySettings.percentTraffic)
   the canary's deployment, with the canary's stage-variable overrides; the request is then routed on that
   deployment's snapshot of the API (api_deployments.py), never on the working definition, so a route
   Terraform changed after a deployment is invisible until a deployment with it is served;
2. the resource is matched (literal segments before `{param}`, `{proxy+}` last) and the method (or ANY);
   an unknown path or method answers 403 "Missing Authentication Token", as API Gateway does;
3. apiKeyRequired: the `x-api-key` header must be an enabled key in a usage plan of this API and stage,
   else 403 "Forbidden";
4. the method's request validator: required path/query/header parameters and the body against the
   method's JSON-schema model (400 "Invalid request body" / "Missing required request parameters");
5. the REST (v1) Lambda proxy event is built (path and resource, pathParameters, query string and
   headers with their multi-value forms, requestContext with resourcePath, stage, requestId,
   identity.sourceIp/userAgent/apiKey/apiKeyId, isBase64Encoded for binary bodies) and the function is
   invoked through the local Lambda service;
6. the proxy response (statusCode, headers, multiValueHeaders, body, isBase64Encoded) becomes the HTTP
   response; a function error or a malformed response is 502 "Internal server error";
7. one access-log line goes to the stage's access log group in the stage's format (it logs
   $context.resourcePath, the template, never the concrete path, which can carry a token, and
   $context.isCanaryRequest while the stage has a canary), and
   AWS/ApiGateway metrics (Count, 4XXError, 5XXError, Latency, IntegrationLatency) are put with
   ApiName+Stage and ApiName.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import random
import re
import time
import uuid
from typing import Any

from . import clock, telemetry
from .lambda_service import ServiceError, service

PATH = re.compile(r"^/restapis/(?P<api>[^/]+)/(?P<stage>[^/]+)/_user_request_(?P<path>/.*)?$")
_LAMBDA_URI = re.compile(r"functions/(arn:[^/]+)/invocations")
_CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_.]+)")


@dataclasses.dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[-1] if values else None


def _backend(account: str, region: str):
    from moto.apigateway.models import apigateway_backends

    return apigateway_backends[account][region]


@dataclasses.dataclass(frozen=True)
class ServedBy:
    """What serves one request: the deployment's snapshot of the API (`api`), the stage, the deployment, and
    whether the stage's canary drew the request (None when the stage has no canary)."""

    api: Any
    stage: Any
    deployment_id: str
    canary: bool | None
    variables: dict[str, str]


def resolve_stage(backend, api_id: str, stage_name: str, *, draw=random.random) -> ServedBy | None:
    """What serves a request to this stage; None when there is no such stage. The one place that decides it.

    With a canary, a request goes to the canary's deployment with probability percentTraffic / 100 (`draw`
    is uniform on [0, 1)), as API Gateway splits traffic at random.
    """
    api = backend.apis.get(api_id)
    if api is None or stage_name not in api.stages:
        return None
    stage = api.stages[stage_name]
    deployment_id, canary, variables = stage.deployment_id, None, dict(stage.variables)
    settings = getattr(stage, "canary_settings", None)
    if settings:
        canary = bool(settings.get("deploymentId")) and draw() * 100 < settings.get("percentTraffic", 0.0)
        if canary:
            deployment_id = settings["deploymentId"]
            variables.update(settings.get("stageVariableOverrides") or {})
    deployment = api.deployments.get(deployment_id)
    # A deployment made before the emulator kept snapshots (none in practice) is served from the working definition.
    served = getattr(deployment, "snapshot", None) or api
    return ServedBy(served, stage, deployment_id, canary, variables)


def match_resource(api, path: str):
    """(resource, path parameters) for a concrete path; literal segments win over {param}, {proxy+} last."""
    segments = [s for s in path.split("/") if s]
    best = None
    for resource in api.resources.values():
        template = [s for s in resource.get_path().split("/") if s]
        params, score = _match(template, segments)
        if params is not None and (best is None or score > best[2]):
            best = (resource, params, score)
    return (best[0], best[1]) if best else (None, {})


def _match(template: list[str], segments: list[str]) -> tuple[dict[str, str] | None, tuple]:
    params: dict[str, str] = {}
    literal = 0
    for i, part in enumerate(template):
        if part.startswith("{") and part.endswith("+}"):
            if i >= len(segments):
                return None, ()
            params[part[1:-2]] = "/".join(segments[i:])
            return params, (literal, 0, len(template))
        if i >= len(segments):
            return None, ()
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = segments[i]
        elif part == segments[i]:
            literal += 1
        else:
            return None, ()
    if len(template) != len(segments):
        return None, ()
    return params, (literal, 1, len(template))


def _json_response(status: int, message: str, extra_headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", _ERROR_TYPES.get(status, "")), *(extra_headers or [])]
    return HttpResponse(status, [h for h in headers if h[1]], json.dumps({"message": message}).encode())


_ERROR_TYPES = {403: "ForbiddenException", 400: "BadRequestException", 502: "InternalServerErrorException",
                429: "TooManyRequestsException", 504: "EndpointRequestTimeoutException"}


def _api_key(backend, api_id: str, stage_name: str, value: str | None):
    """The ApiKey object for a valid key of this API stage, else None."""
    if not value:
        return None
    for key in backend.keys.values():
        if key.value != value or not key.enabled:
            continue
        for plan_id, plan_keys in backend.usage_plan_keys.items():
            plan = backend.usage_plans.get(plan_id)
            if plan is None or key.id not in plan_keys:
                continue
            if any(s.get("apiId") == api_id and s.get("stage") == stage_name for s in plan.api_stages):
                return key
    return None


def _validate(api, method, request: Request, path_params: dict[str, str]) -> str | None:
    """The API Gateway validation message for a request the method's validator rejects, else None."""
    validator = api.request_validators.get(method.request_validator_id) if method.request_validator_id else None
    if validator is None:
        return None
    if validator.validate_request_parameters:
        missing = []
        for name, required in (method.request_parameters or {}).items():
            if not required:
                continue
            _, _, where, key = name.split(".", 3)
            present = {"path": key in path_params and path_params[key] != "", "querystring": key in request.query,
                       "header": request.header(key) is not None}.get(where, True)
            if not present:
                missing.append(key)
        if missing:
            return f"Missing required request parameters: [{', '.join(missing)}]"
    if validator.validate_request_body and method.request_models:
        content_type = (request.header("content-type") or "application/json").split(";")[0].strip()
        model_name = method.request_models.get(content_type) or method.request_models.get("$default")
        model = api.models.get(model_name) if model_name else None
        if model is not None and model.schema and model_name != "Empty":
            import jsonschema

            try:
                document = json.loads(request.body or b"null")
                jsonschema.validate(document, json.loads(model.schema), cls=jsonschema.Draft4Validator)
            except (ValueError, jsonschema.ValidationError):
                return "Invalid request body"
    return None


def canonical_header(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _proxy_event(api, served: ServedBy, resource, request: Request, path_params: dict, request_id: str, api_key, account: str) -> dict:
    stage = served.stage
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    content_type = (request.header("content-type") or "").split(";")[0].strip()
    binary = _is_binary(api, content_type, request.body)
    body: str | None
    if not request.body:
        body = None
    elif binary:
        body = base64.b64encode(request.body).decode()
    else:
        body = request.body.decode("utf-8")
    now = clock.now()
    return {
        "resource": resource.get_path(),
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in request.query.items()} or None,
        "multiValueQueryStringParameters": dict(request.query) or None,
        "pathParameters": path_params or None,
        "stageVariables": served.variables or None,
        "requestContext": {
            "resourceId": resource.id,
            "resourcePath": resource.get_path(),
            "httpMethod": request.method,
            "extendedRequestId": request_id.replace("-", "")[:16] + "=",
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{stage.name}{request.path}",
            "accountId": account,
            "protocol": "HTTP/1.1",
            "stage": stage.name,
            "domainPrefix": api.id,
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None, "accountId": None, "cognitoIdentityId": None, "caller": None,
                "sourceIp": request.source_ip, "principalOrgId": None, "accessKey": None,
                "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None, "userArn": None,
                "userAgent": request.header("user-agent"), "user": None,
                "apiKey": api_key.value if api_key else None, "apiKeyId": api_key.id if api_key else None,
            },
            "domainName": f"{api.id}.execute-api.localhost",
            "apiId": api.id,
        },
        "body": body,
        "isBase64Encoded": binary,
    }


def _is_binary(api, content_type: str, body: bytes) -> bool:
    if not body:
        return False
    for media_type in api.binaryMediaTypes or []:
        if media_type == "*/*" or media_type == content_type or (media_type.endswith("/*") and content_type.startswith(media_type[:-1])):
            return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _proxy_response(payload: bytes) -> HttpResponse | None:
    """The HTTP response a Lambda proxy result describes; None when the result is malformed."""
    try:
        result = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(result, dict) or not isinstance(result.get("statusCode", 200), int):
        return None
    allowed = {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded", "cookies"}
    if set(result) - allowed:
        return None
    headers: list[tuple[str, str]] = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers = [h for h in headers if h[0].lower() != name.lower()] + [(name, str(v)) for v in values]
    body = result.get("body")
    if body is None:
        raw = b""
    elif result.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body)
        except ValueError:
            return None
    else:
        raw = str(body).encode("utf-8")
    return HttpResponse(int(result.get("statusCode", 200)), headers, raw)


def handle(account: str, region: str, api_id: str, stage_name: str, request: Request) -> HttpResponse:
    started = time.perf_counter()
    backend = _backend(account, region)
    request_id = str(uuid.uuid4())
    served = resolve_stage(backend, api_id, stage_name)
    if served is None:
        return _json_response(403, "Missing Authentication Token")
    api, stage = served.api, served.stage
    context: dict[str, Any] = {"requestId": request_id, "extendedRequestId": request_id.replace("-", "")[:16] + "=",
                               "identity.sourceIp": request.source_ip, "identity.userAgent": request.header("user-agent") or "-",
                               "httpMethod": request.method, "resourcePath": "-", "stage": stage.name, "protocol": "HTTP/1.1",
                               "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(clock.now())),
                               "requestTimeEpoch": int(clock.now() * 1000), "waf.status": "-", "xrayTraceId": "-",
                               "integrationLatency": "-", "identity.apiKeyId": "-", "apiId": api.id}
    if served.canary is not None:
        context["isCanaryRequest"] = "true" if served.canary else "false"
    integration_ms = None
    response = _serve(backend, account, served, request, request_id, context)
    if isinstance(response, tuple):
        response, integration_ms = response
    latency_ms = (time.perf_counter() - started) * 1000
    response.headers += [("x-amzn-RequestId", request_id), ("x-amz-apigw-id", context["extendedRequestId"])]
    context.update({"status": str(response.status), "responseLength": str(len(response.body)), "responseLatency": str(int(latency_ms))})
    if integration_ms is not None:
        context["integrationLatency"] = str(int(integration_ms))
    _access_log(account, region, api, stage, context)
    _metrics(account, region, api, stage, response.status, latency_ms, integration_ms)
    return response


def _serve(backend, account, served: ServedBy, request: Request, request_id: str, context: dict):
    api, stage = served.api, served.stage
    resource, path_params = match_resource(api, request.path)
    method = None
    if resource is not None:
        method = resource.resource_methods.get(request.method) or resource.resource_methods.get("ANY")
    if method is None:
        return _json_response(403, "Missing Authentication Token")
    context["resourcePath"] = resource.get_path()
    context["resourceId"] = resource.id
    api_key = _api_key(backend, api.id, stage.name, request.header("x-api-key"))
    if api_key is not None:
        context["identity.apiKeyId"] = api_key.id
    if method.api_key_required and api_key is None:
        return _json_response(403, "Forbidden")
    problem = _validate(api, method, request, path_params)
    if problem:
        return _json_response(400, problem)
    integration = method.method_integration
    target = _LAMBDA_URI.search(integration.uri or "") if integration is not None else None
    if integration is None or integration.integration_type != "AWS_PROXY" or target is None:
        return _json_response(500, "Internal server error: only Lambda proxy integrations are served locally")
    event = _proxy_event(api, served, resource, request, path_params, request_id, api_key, account)
    started = time.perf_counter()
    try:
        result = service().invoke(account, target.group(1).split(":")[3], target.group(1), None, json.dumps(event).encode())
    except ServiceError as error:
        integration_ms = (time.perf_counter() - started) * 1000
        return _json_response(429 if error.status == 429 else 500, "Internal server error" if error.status != 429 else "Too Many Requests"), integration_ms
    integration_ms = (time.perf_counter() - started) * 1000
    if result.function_error:
        return _json_response(502, "Internal server error"), integration_ms
    mapped = _proxy_response(result.payload)
    if mapped is None:
        return _json_response(502, "Internal server error"), integration_ms
    return mapped, integration_ms


def _access_log(account: str, region: str, api, stage, context: dict) -> None:
    settings = stage.access_log_settings or {}
    destination, template = settings.get("destinationArn"), settings.get("format")
    if not destination or not template:
        return
    group = destination.split(":log-group:", 1)[-1].removesuffix(":*")
    line = _CONTEXT_VARIABLE.sub(lambda m: str(context.get(m.group(1), "-")), template)
    telemetry.write_log_events(account, region, group, f"{api.id}/{stage.name}", [(int(clock.now() * 1000), line)])


def _metrics(account: str, region: str, api, stage, status: int, latency_ms: float, integration_ms: float | None) -> None:
    values = {"Count": (1, "Count"), "4XXError": (1 if 400 <= status < 500 else 0, "Count"),
              "5XXError": (1 if status >= 500 else 0, "Count"), "Latency": (latency_ms, "Milliseconds")}
    if integration_ms is not None:
        values["IntegrationLatency"] = (integration_ms, "Milliseconds")
    dimension_sets = [{"ApiName": api.name, "Stage": stage.name}, {"ApiName": api.name}]
    telemetry.put_metrics(account, region, "AWS/ApiGateway",
                          [telemetry.metric(n, v, u, d) for n, (v, u) in values.items() for d in dimension_sets])
