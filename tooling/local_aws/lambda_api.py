"""moto's Lambda Invoke, answered by the local Lambda service instead of Docker.

Replaced: the Invoke API (RequestResponse, Event, DryRun; Tail logs), the old InvokeAsync API, and
`LambdaFunction.invoke`, which moto's own services call (an SNS subscription, a CloudWatch Logs
subscription); those callers are asynchronous in AWS, so they invoke with InvocationType=Event.
CreateFunction/UpdateFunctionConfiguration also keep `DeadLetterConfig`, which moto drops, so failed
asynchronous events can reach the dead-letter queue, and GetFunction returns it (a plan stays clean).
"""
from __future__ import annotations

import json
from urllib.parse import unquote

from .lambda_service import ServiceError, service


def _error_response(error: ServiceError):
    body = {"Type": "User", "message": error.message, **error.extra}
    # moto takes the status from the headers' "status" when there is one
    return error.status, {"status": str(error.status), "x-amzn-errortype": error.error_type, "content-type": "application/json"}, json.dumps(body)


def install() -> list[str]:
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda.responses import LambdaResponse

    def invoke(self):
        name = unquote(self.path.rsplit("/", 2)[-2])
        qualifier = self.querystring.get("Qualifier", [None])[0]
        invocation_type = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        try:
            result = service().invoke(self.current_account, self.region, name, qualifier, self.body if isinstance(self.body, bytes)
                                      else (self.body or "").encode(), invocation_type, self.headers.get("X-Amz-Log-Type"))
        except ServiceError as error:
            return _error_response(error)
        headers = {"status": str(result.status), "content-type": "application/json", "x-amz-executed-version": result.executed_version,
                   "x-amzn-requestid": result.request_id}
        if result.function_error:
            headers["x-amz-function-error"] = result.function_error
        if result.log_tail:
            headers["x-amz-log-result"] = result.log_tail
        return result.status, headers, result.payload

    def invoke_async(self):
        function_index = -3 if self.path.endswith("/") else -2
        name = unquote(self.path.rsplit("/", 3)[function_index])
        try:
            service().invoke(self.current_account, self.region, name, None, self.body.encode() if isinstance(self.body, str) else self.body, "Event")
        except ServiceError as error:
            return _error_response(error)
        return 202, {"status": "202", "content-type": "application/json"}, json.dumps({"Status": 202})

    def function_invoke(self, body, request_headers, response_headers):
        invocation_type = (request_headers or {}).get("x-amz-invocation-type", "Event")
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        result = service().invoke(self.account_id, self.region, self.function_arn, None, payload, invocation_type)
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        return result.payload

    LambdaResponse.invoke = invoke
    LambdaResponse.invoke_async = invoke_async
    LambdaFunction.invoke = function_invoke

    original_init = LambdaFunction.__init__
    original_update = LambdaFunction.update_configuration
    original_configuration = LambdaFunction.get_configuration

    def init(self, account_id, spec, *args, **kwargs):
        original_init(self, account_id, spec, *args, **kwargs)
        self.dead_letter_config = spec.get("DeadLetterConfig") or None

    def update_configuration(self, config_updates):
        if "DeadLetterConfig" in config_updates:
            self.dead_letter_config = config_updates["DeadLetterConfig"] or None
        return original_update(self, config_updates)

    def get_configuration(self, *args, **kwargs):
        config = original_configuration(self, *args, **kwargs)
        if getattr(self, "dead_letter_config", None):
            config["DeadLetterConfig"] = self.dead_letter_config
        return config

    LambdaFunction.__init__ = init
    LambdaFunction.update_configuration = update_configuration
    LambdaFunction.get_configuration = get_configuration
    return ["lambda: Invoke runs the deployed package in worker processes (tooling/local_aws/lambda_service.py)"]
