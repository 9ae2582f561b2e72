"""API layer: the REST API `pattern-detection-api-<s>` behind the WAF `PatternDetectionWAF-<s>`.

Creates:
- the REST API with POST /patterns, GET /patterns/{symbol} (API key required), GET and POST /approve/{token}
  (the approval page: the link's token is the credential, no API key), Lambda proxy to `live`
- request validators, JSON-schema models for bodies (generated from the handlers' pydantic types, see
  json_schema.py), required path parameters; paths come from patternwatch_shared.names.routes
- the stage `v1` (X-Ray, JSON access logs, method throttling) and its first deployment; every later change
  to the definition goes out through tooling/release.py as a canary deployment on the stage (below)
- an API key with a usage plan (throttle + quota)
- Lambda permissions scoped to each route's execution ARN
- the account-level CloudWatch role API Gateway needs to write logs
- the WAF web ACL (waf.py: rate limit, geo block, AWS common rules, body sizes, API-key header check
  except on approval links), its redacted logging and association

Terraform and the release divide the API between them. Terraform owns the definition (resources, methods,
integrations, models, validators: API Gateway's working copy), the stage's settings and the first
deployment, the snapshot the stage starts with. The release owns what the stage serves after that: it
snapshots the working definition as a new deployment on the stage's canary (10%, `canary_percent`),
watches the API alarms, then promotes it (the stage's deployment becomes the canary's, the canary is
removed) or deletes the canary and its deployment. So the stage's `deployment_id` and `canary_settings`
are the release's, and Terraform ignores them after creating the stage. Terraform does not create
deployments on later changes: an API Gateway deployment that a stage serves cannot be deleted, so a
deployment Terraform replaced would fail to go while the stage still served it, and a canary Terraform
set would be re-opened by the next apply after the release removed it.

`api_definition_hash` (an output Terraform computes from the definition's resources as deployed) names the
working definition; each deployment's description carries the hash it snapshotted, which is how the
release knows whether the stage already serves the current definition.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from collections.abc import Sequence

from cdktf import TerraformResource, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.api_gateway_account import ApiGatewayAccount
from cdktf_cdktf_provider_aws.api_gateway_api_key import ApiGatewayApiKey
from cdktf_cdktf_provider_aws.api_gateway_deployment import ApiGatewayDeployment
from cdktf_cdktf_provider_aws.api_gateway_integration import ApiGatewayIntegration
from cdktf_cdktf_provider_aws.api_gateway_method import ApiGatewayMethod
from cdktf_cdktf_provider_aws.api_gateway_method_settings import (
    ApiGatewayMethodSettings,
    ApiGatewayMethodSettingsSettings,
)
from cdktf_cdktf_provider_aws.api_gateway_model import ApiGatewayModel
from cdktf_cdktf_provider_aws.api_gateway_request_validator import ApiGatewayRequestValidator
from cdktf_cdktf_provider_aws.api_gateway_resource import ApiGatewayResource
from cdktf_cdktf_provider_aws.api_gateway_rest_api import ApiGatewayRestApi, ApiGatewayRestApiEndpointConfiguration
from cdktf_cdktf_provider_aws.api_gateway_stage import ApiGatewayStage, ApiGatewayStageAccessLogSettings
from cdktf_cdktf_provider_aws.api_gateway_usage_plan import (
    ApiGatewayUsagePlan,
    ApiGatewayUsagePlanApiStages,
    ApiGatewayUsagePlanQuotaSettings,
    ApiGatewayUsagePlanThrottleSettings,
)
from cdktf_cdktf_provider_aws.api_gateway_usage_plan_key import ApiGatewayUsagePlanKey
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.wafv2_web_acl_association import Wafv2WebAclAssociation
from constructs import Construct
from patternwatch_shared.models import ApprovalDecision, PatternsRequest
from patternwatch_shared.names.functions import (
    APPROVAL_PROCESSOR, ENV_APPROVAL_API_BASE_URL, PATTERN_DETECTOR, LambdaFunctionSpec,
)
from patternwatch_shared.names.routes import (
    APPROVAL_RESOURCE_PATH, PATTERNS_BY_SYMBOL_RESOURCE_PATH, PATTERNS_RESOURCE_PATH, QUERY_LIMIT, QUERY_NEXT_TOKEN,
    path_parameters,
)

from .architecture_layer import ArchitectureLayer
from .blocks import encrypted_log_group
from .compute import ComputeLayer
from .config import EnvironmentConfig
from .data import DataLayer
from .emulator import emulator_invoke_url
from .function import MonitoredFunction
from .json_schema import draft4
from .naming import DEFAULT_WORKSPACE_ONLY, Naming
from .policies import statement
from .release_contract import deployment_description
from .scan_skips import skip_check
from .waf import web_acl, web_acl_logging

API_BASE_NAME = "pattern-detection-api"
STAGE_NAME = "v1"
# Per-method limits for everyone together, and per-key limits from the usage plan.
METHOD_THROTTLE_RATE = 50
METHOD_THROTTLE_BURST = 100
USAGE_PLAN_RATE = 20
USAGE_PLAN_BURST = 40
USAGE_PLAN_DAILY_QUOTA = 50_000
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "latency": "$context.responseLatency",
        "apiKeyId": "$context.identity.apiKeyId",
        "wafStatus": "$context.waf.status",
        "xrayTraceId": "$context.xrayTraceId",
        "isCanaryRequest": "$context.isCanaryRequest",
    },
    separators=(",", ":"),
)

# Request models, generated from the types the handlers parse with (draft-04, what API Gateway models
# speak). They reject malformed bodies at the edge; the handlers' pydantic models stay the authority on
# every value, including the rules JSON Schema cannot express.
PATTERNS_REQUEST_SCHEMA = draft4(PatternsRequest, title="PatternsRequest")
APPROVAL_DECISION_SCHEMA = draft4(ApprovalDecision, title="ApprovalDecision")


@dataclass(frozen=True)
class Route:
    """One API method: its path (names.routes), the function that serves it, what it validates."""

    method: str
    path: str
    served_by: LambdaFunctionSpec
    body_schema: dict | None = None
    query_parameters: tuple[str, ...] = ()
    # False only where something else is the credential (an approval link's token and its approver).
    api_key_required: bool = True

    @property
    def path_parameters(self) -> tuple[str, ...]:
        return path_parameters(self.path)

    @property
    def arn_path(self) -> str:
        """The path as it appears in an execution ARN: every {parameter} becomes *."""
        return re.sub(r"\{[^}]+\}", "*", self.path)


ROUTES = (
    Route("POST", PATTERNS_RESOURCE_PATH, PATTERN_DETECTOR, body_schema=PATTERNS_REQUEST_SCHEMA),
    Route("GET", PATTERNS_BY_SYMBOL_RESOURCE_PATH, PATTERN_DETECTOR, query_parameters=(QUERY_LIMIT, QUERY_NEXT_TOKEN)),
    # The approval page and its form: opened from an e-mail, so no API key; the shared key grants nothing here.
    Route("GET", APPROVAL_RESOURCE_PATH, APPROVAL_PROCESSOR, api_key_required=False),
    Route("POST", APPROVAL_RESOURCE_PATH, APPROVAL_PROCESSOR, body_schema=APPROVAL_DECISION_SCHEMA, api_key_required=False),
)


# What API Gateway snapshots into a deployment, by resource type: the attributes the hash of the definition covers.
DEFINITION_ATTRIBUTES = {
    "aws_api_gateway_resource": ("id", "parent_id", "path_part"),
    "aws_api_gateway_method": (
        "resource_id", "http_method", "authorization", "api_key_required", "request_validator_id", "request_models", "request_parameters",
    ),
    "aws_api_gateway_integration": ("resource_id", "http_method", "type", "integration_http_method", "uri"),
    "aws_api_gateway_model": ("name", "content_type", "schema"),
    "aws_api_gateway_request_validator": ("id", "validate_request_body", "validate_request_parameters"),
}
# The same value can read back in another form (an unset map as {}, a schema re-spaced); the hash sees the meaning.
CANONICAL_FORM = {"request_models": "merge({{}}, {})", "request_parameters": "merge({{}}, {})", "schema": "jsondecode({})"}
# The stage's attributes tooling/release.py owns once the stage exists.
RELEASED_STAGE_ATTRIBUTES = ["deployment_id", "canary_settings"]


def definition_hash_expression(resources: Sequence[TerraformResource]) -> str:
    """A Terraform expression: the SHA-256 of what these resources tell API Gateway, evaluated as applied.

    Terraform computes it from the resources themselves, so any change to the definition, wherever it comes
    from, gives another hash, and only a change does (jsonencode writes object keys in sorted order).
    """
    objects = []
    for resource in resources:
        address = f"{resource.terraform_resource_type}.{resource.friendly_unique_id}"
        fields = ", ".join(
            f"{a} = {CANONICAL_FORM.get(a, '{}').format(f'{address}.{a}')}" for a in DEFINITION_ATTRIBUTES[resource.terraform_resource_type]
        )
        objects.append(f"{{{fields}}}")
    return "${sha256(jsonencode([" + ", ".join(objects) + "]))}"


class ApiLayer(ArchitectureLayer):
    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, naming: Naming, data: DataLayer, compute: ComputeLayer
    ) -> None:
        super().__init__(scope, id, config=config, naming=naming)
        self.data = data
        self.compute = compute

        self.rest_api = ApiGatewayRestApi(
            self,
            "rest_api",
            name=naming.name(API_BASE_NAME),
            description="PatternWatch: on-demand pattern detection and alert approvals",
            endpoint_configuration=ApiGatewayRestApiEndpointConfiguration(types=["REGIONAL"]),
            api_key_source="HEADER",
            # A replacement API must exist before the old one goes, or the stage and WAF association break.
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        self.body_validator = ApiGatewayRequestValidator(
            self, "body_validator", rest_api_id=self.rest_api.id, name="body-and-parameters",
            validate_request_body=True, validate_request_parameters=True,
        )
        self.parameter_validator = ApiGatewayRequestValidator(
            self, "parameter_validator", rest_api_id=self.rest_api.id, name="parameters-only",
            validate_request_body=False, validate_request_parameters=True,
        )
        self.resources: dict[str, ApiGatewayResource] = {}
        self.methods: list[ApiGatewayMethod] = []
        self.integrations: list[ApiGatewayIntegration] = []
        self.permissions: list[LambdaPermission] = []
        self.models: dict[str, ApiGatewayModel] = {}
        # The functions behind the API, wired through the compute layer's typed attributes.
        api_functions: dict[LambdaFunctionSpec, MonitoredFunction] = {
            PATTERN_DETECTOR: compute.pattern_detector,
            APPROVAL_PROCESSOR: compute.approval_processor,
        }
        for route in ROUTES:
            self._add_route(route, api_functions[route.served_by])

        self.definition_hash = definition_hash_expression(
            [
                *self.resources.values(), *self.methods, *self.integrations, *self.models.values(),
                self.body_validator, self.parameter_validator,
            ]
        )
        # The stage's first snapshot; tooling/release.py deploys every later definition (see the module docstring).
        self.deployment = ApiGatewayDeployment(
            self,
            "deployment",
            rest_api_id=self.rest_api.id,
            description=deployment_description(self.definition_hash),
            # The description says what this snapshot holds, so it must not follow later definitions; `triggers`
            # is ignored so that stacks deployed when a changed definition replaced the deployment keep theirs.
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True, ignore_changes=["description", "triggers"]),
            depends_on=[*self.methods, *self.integrations],
        )
        access_logs = f"/aws/apigateway/{self.rest_api.name}"
        self.access_log_group = encrypted_log_group(
            self, "access_logs", access_logs, retention_days=config.lambda_.log_retention_days, kms_key=data.kms_key
        )
        self.cloudwatch_role = self.service_role(
            "cloudwatch_role",
            "ApiGatewayLogs",
            "apigateway.amazonaws.com",
            [
                statement(
                    sid="WriteApiGatewayLogs",
                    actions=[
                        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups",
                        "logs:DescribeLogStreams", "logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents",
                    ],
                    # API Gateway names its execution-log groups itself (API-Gateway-Execution-Logs_<api id>/<stage>),
                    # so the role is scoped to this account's log groups in this region.
                    resources=[f"arn:aws:logs:{config.region}:{data.caller.account_id}:log-group:*"],
                )
            ],
        )
        # One per account and region: API Gateway uses this role for every API's logs. The default workspace
        # owns the setting: the provider only forgets it on delete, so a workspace that set it would leave it
        # pointing at the workspace's deleted role, and the environment's API logging broken, once destroyed.
        self.account = ApiGatewayAccount(
            self, "account", cloudwatch_role_arn=self.cloudwatch_role.role.arn, depends_on=[self.cloudwatch_role.policy]
        )
        self.account.add_override("count", DEFAULT_WORKSPACE_ONLY)
        self.stage = ApiGatewayStage(
            self,
            "stage",
            rest_api_id=self.rest_api.id,
            deployment_id=self.deployment.id,
            stage_name=STAGE_NAME,
            xray_tracing_enabled=True,
            access_log_settings=ApiGatewayStageAccessLogSettings(destination_arn=self.access_log_group.arn, format=ACCESS_LOG_FORMAT),
            depends_on=[self.account],
            # Which deployment the stage serves, and its canary, are the release's after the stage exists.
            lifecycle=TerraformResourceLifecycle(ignore_changes=RELEASED_STAGE_ATTRIBUTES),
        )
        skip_check(
            self.stage,
            "CKV2_AWS_51",
            "a client certificate is what API Gateway presents to an HTTP backend; every integration here is AWS_PROXY to Lambda, "
            "which API Gateway invokes under its resource-policy permission, so there is no backend to present one to",
        )
        skip_check(
            self.stage,
            "CKV2_AWS_77",
            "the stage's Web ACL carries the four agreed rules (CKV_AWS_192 on the Web ACL): the Log4j rule set protects Java "
            "backends, and every handler is Python",
        )
        skip_check(self.stage, "CKV_AWS_120", "responses are per-request detections and approvals; a cache would serve stale or wrong answers")
        self.method_settings = ApiGatewayMethodSettings(
            self,
            "method_settings",
            rest_api_id=self.rest_api.id,
            stage_name=self.stage.stage_name,
            method_path="*/*",
            settings=ApiGatewayMethodSettingsSettings(
                metrics_enabled=True,
                logging_level="ERROR",
                data_trace_enabled=False,
                throttling_rate_limit=METHOD_THROTTLE_RATE,
                throttling_burst_limit=METHOD_THROTTLE_BURST,
            ),
        )
        skip_check(self.method_settings, "CKV_AWS_225", "no response caching (see CKV_AWS_120), so there is no cache to enable")
        self.api_key = ApiGatewayApiKey(self, "api_key", name=naming.name(f"{API_BASE_NAME}-key"), enabled=True)
        self.usage_plan = ApiGatewayUsagePlan(
            self,
            "usage_plan",
            name=naming.name("pattern-detection-usage"),
            api_stages=[ApiGatewayUsagePlanApiStages(api_id=self.rest_api.id, stage=self.stage.stage_name)],
            throttle_settings=ApiGatewayUsagePlanThrottleSettings(rate_limit=USAGE_PLAN_RATE, burst_limit=USAGE_PLAN_BURST),
            quota_settings=ApiGatewayUsagePlanQuotaSettings(limit=USAGE_PLAN_DAILY_QUOTA, period="DAY"),
        )
        self.usage_plan_key = ApiGatewayUsagePlanKey(
            self, "usage_plan_key", key_id=self.api_key.id, key_type="API_KEY", usage_plan_id=self.usage_plan.id
        )
        self._waf()

        # The alert processor puts the approve link into each approval request.
        if config.emulator is not None:
            self.invoke_url = emulator_invoke_url(config, self.rest_api.id, STAGE_NAME)
        else:
            self.invoke_url = f"https://{self.rest_api.id}.execute-api.{config.region}.amazonaws.com/{STAGE_NAME}"
        compute.alert_processor.add_environment({ENV_APPROVAL_API_BASE_URL: self.invoke_url})

        self.output("rest_api_id", self.rest_api.id, description="REST API id")
        self.output("api_invoke_url", self.stage.invoke_url, description="base URL of the API stage")
        self.output("api_stage_name", self.stage.stage_name, description="API stage name")
        self.output("api_definition_hash", self.definition_hash, description="hash of the API definition as applied (tooling/release.py)")
        self.output("api_key_id", self.api_key.id, description="API key id (the value: `terraform output -raw api_key_value`)")
        self.output("api_key_value", self.api_key.value, description="API key value", sensitive=True)
        self.output("web_acl_arn", self.web_acl.arn, description="WAF web ACL ARN")

    def _resource_for(self, path: str) -> str:
        """The id of the API resource for `path`, creating parents as needed."""
        parent_id = self.rest_api.root_resource_id
        current = ""
        for part in path.strip("/").split("/"):
            current = f"{current}/{part}"
            if current not in self.resources:
                logical = current.strip("/").replace("/", "_").replace("{", "").replace("}", "") or "root"
                self.resources[current] = ApiGatewayResource(
                    self, f"resource_{logical}", rest_api_id=self.rest_api.id, parent_id=parent_id, path_part=part
                )
            parent_id = self.resources[current].id
        return parent_id

    def _add_route(self, route: Route, target: MonitoredFunction) -> None:
        resource_id = self._resource_for(route.path)
        logical = f"{route.method.lower()}_{route.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"
        request_models = None
        if route.body_schema is not None:
            model = ApiGatewayModel(
                self,
                f"model_{logical}",
                rest_api_id=self.rest_api.id,
                name=route.body_schema["title"],
                content_type="application/json",
                schema=json.dumps(route.body_schema, sort_keys=True),
            )
            self.models[logical] = model
            request_models = {"application/json": model.name}
        parameters = {f"method.request.path.{p}": True for p in route.path_parameters}
        parameters.update({f"method.request.querystring.{q}": False for q in route.query_parameters})
        on_resource = {"rest_api_id": self.rest_api.id, "resource_id": resource_id}
        method = ApiGatewayMethod(
            self,
            f"method_{logical}",
            **on_resource,
            http_method=route.method,
            authorization="NONE",
            api_key_required=route.api_key_required,
            request_validator_id=(self.body_validator if route.body_schema else self.parameter_validator).id,
            request_models=request_models,
            request_parameters=parameters or None,
        )
        if not route.api_key_required:
            skip_check(method, "CKV_AWS_59", "an approval link: its token, bound to one approver, is the credential; people open it from an e-mail, without an API key")
        integration = ApiGatewayIntegration(
            self,
            f"integration_{logical}",
            **on_resource,
            http_method=method.http_method,
            type="AWS_PROXY",
            integration_http_method="POST",
            uri=target.alias.invoke_arn,
        )
        permission = LambdaPermission(
            self,
            f"permission_{logical}",
            statement_id=f"AllowApiGateway-{logical}",
            action="lambda:InvokeFunction",
            function_name=target.function.function_name,
            qualifier=target.alias.name,
            principal="apigateway.amazonaws.com",
            # Only this API, this method and this path may invoke the alias (any stage, for canaries).
            source_arn=f"{self.rest_api.execution_arn}/*/{route.method}{route.arn_path}",
        )
        self.methods.append(method)
        self.integrations.append(integration)
        self.permissions.append(permission)

    def _waf(self) -> None:
        self.web_acl = web_acl(self, name=self.naming.name("PatternDetectionWAF"), config=self.config, stage=STAGE_NAME)
        self.web_acl_logging = web_acl_logging(self, acl=self.web_acl, bucket_arn=self.data.waf_log_bucket.bucket.arn)
        self.web_acl_association = Wafv2WebAclAssociation(
            self, "web_acl_association", resource_arn=self.stage.arn, web_acl_arn=self.web_acl.arn
        )
