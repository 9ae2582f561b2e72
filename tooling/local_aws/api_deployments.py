"""API Gateway deployments as AWS keeps them: frozen snapshots of the API, and a stage's canary.

moto routes every request through the API's working definition, keeps no copy per deployment, and drops a
stage's canarySettings. On AWS a deployment freezes the definition as it was when it was created, and a
stage serves its deployment, sending `percentTraffic` of the requests to the canary's deployment instead.
`install()` adds what the local gateway (api_gateway.py) and the release (tooling/release.py) need:

- every new deployment gets a snapshot of the API (`ApiSnapshot`): each resource's path and methods, their
  validators, parameters, models and integrations, the models' schemas. A method Terraform changes later
  changes the working definition only, as on AWS;
- CreateStage and CreateDeployment accept canarySettings (a canary deployment needs an existing stage and
  leaves the stage's own deployment alone); GetStage and GetStages return them;
- UpdateStage applies the canary operations the release uses (replace /canarySettings/..., copy
  /canarySettings/deploymentId to /deploymentId, remove /canarySettings) before moto's own;
- DeleteDeployment refuses a deployment that a stage or its canary serves, as AWS does (moto refused any
  deployment created with a stage name, even one nothing served any more);
- UpdateMethod (moto has none, so Terraform could not change a method in place): the patch operations
  Terraform sends for a method's request parameters and models, API key requirement, authorization and
  validator (`apply_method_operation`).

Not modelled: method responses, gateway responses, authorizers and stage-variable-dependent integrations in
the snapshot (this platform uses none); the canary's own execution-log group.
"""
from __future__ import annotations

import json
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any

CANARY_PATH = "/canarySettings"


# The parts of a snapshot, under moto's attribute names, so the gateway routes on a snapshot as on the API itself.
SnapshotIntegration = namedtuple("SnapshotIntegration", "integration_type uri")
SnapshotMethod = namedtuple("SnapshotMethod", "api_key_required request_validator_id request_parameters request_models method_integration")
SnapshotValidator = namedtuple("SnapshotValidator", "validate_request_body validate_request_parameters")
SnapshotModel = namedtuple("SnapshotModel", "schema")


@dataclass(frozen=True)
class SnapshotResource:
    id: str
    path: str
    resource_methods: dict[str, SnapshotMethod]

    def get_path(self) -> str:
        return self.path


@dataclass(frozen=True)
class ApiSnapshot:
    """What a deployment serves; the attribute names are moto's, so the gateway routes on either."""

    id: str
    name: str
    resources: dict[str, SnapshotResource]
    request_validators: dict[str, SnapshotValidator]
    models: dict[str, SnapshotModel]
    binaryMediaTypes: list[str] = field(default_factory=list)


def snapshot(api) -> ApiSnapshot:
    """The API's working definition, copied."""
    resources = {}
    for resource in api.resources.values():
        methods = {}
        for verb, method in resource.resource_methods.items():
            integration = method.method_integration
            methods[verb] = SnapshotMethod(
                api_key_required=bool(method.api_key_required),
                request_validator_id=method.request_validator_id,
                request_parameters=dict(method.request_parameters) if method.request_parameters else None,
                request_models=dict(method.request_models) if method.request_models else None,
                method_integration=SnapshotIntegration(integration.integration_type, integration.uri) if integration else None,
            )
        resources[resource.id] = SnapshotResource(resource.id, resource.get_path(), methods)
    return ApiSnapshot(
        id=api.id,
        name=api.name,
        resources=resources,
        request_validators={
            v.id: SnapshotValidator(bool(v.validate_request_body), bool(v.validate_request_parameters)) for v in api.request_validators.values()
        },
        models={name: SnapshotModel(model.schema) for name, model in api.models.items()},
        binaryMediaTypes=list(api.binaryMediaTypes or []),
    )


def canary_settings(value: dict[str, Any]) -> dict[str, Any]:
    """A stage's canarySettings as GetStage returns them."""
    return {
        "deploymentId": value.get("deploymentId"),
        "percentTraffic": float(value.get("percentTraffic", 0.0)),
        "useStageCache": _boolean(value.get("useStageCache", False)),
        "stageVariableOverrides": dict(value.get("stageVariableOverrides") or {}),
    }


def _boolean(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def apply_canary_operation(stage, operation: dict[str, Any]) -> bool:
    """Apply one UpdateStage operation if it concerns the canary; False when moto should apply it."""
    op, path = operation.get("op"), operation.get("path", "")
    if op == "copy" and operation.get("from", "").startswith(CANARY_PATH):
        settings = stage.canary_settings or {}
        if path == "/deploymentId" and operation["from"] == f"{CANARY_PATH}/deploymentId":
            stage.deployment_id = settings.get("deploymentId")
        elif path == "/variables" and operation["from"] == f"{CANARY_PATH}/stageVariableOverrides":
            stage.variables = {**stage.variables, **settings.get("stageVariableOverrides", {})}
        return True
    if not path.startswith(CANARY_PATH):
        return False
    if op == "remove" and path == CANARY_PATH:
        stage.canary_settings = None
        return True
    settings = stage.canary_settings = canary_settings(stage.canary_settings or {})
    field_name, _, variable = path[len(CANARY_PATH) + 1:].partition("/")
    if field_name == "stageVariableOverrides" and variable:
        if op == "remove":
            settings["stageVariableOverrides"].pop(variable, None)
        else:
            settings["stageVariableOverrides"][variable] = operation.get("value")
    elif field_name in ("deploymentId", "percentTraffic", "useStageCache"):
        settings.update(canary_settings({**settings, field_name: operation.get("value")}))
    return True


# UpdateMethod paths that name one field of a method, by moto's attribute, and how a patch value reads.
METHOD_FIELDS = {
    "/apiKeyRequired": ("api_key_required", _boolean),
    "/authorizationType": ("authorization_type", str),
    "/authorizerId": ("authorizer_id", str),
    "/operationName": ("operation_name", str),
    "/requestValidatorId": ("request_validator_id", str),
}
# UpdateMethod paths that name one entry of a method's map: /requestParameters/<name>, /requestModels/<content type>.
METHOD_MAPS = {"/requestParameters/": ("request_parameters", _boolean), "/requestModels/": ("request_models", str)}


def _unescape(segment: str) -> str:
    """A JSON-pointer segment (`application~1json`) as the key it names (`application/json`)."""
    return segment.replace("~1", "/").replace("~0", "~")


def apply_method_operation(method, operation: dict[str, Any]) -> None:
    """Apply one UpdateMethod patch operation to a moto Method; ValueError for a path or op it does not know."""
    op, path, value = operation.get("op"), operation.get("path", ""), operation.get("value")
    if op not in ("add", "replace", "remove"):
        raise ValueError(f"op {op!r} is not supported on a method")
    if path in METHOD_FIELDS:
        attribute, read = METHOD_FIELDS[path]
        setattr(method, attribute, None if op == "remove" else read(value))
        return
    for prefix, (attribute, read) in METHOD_MAPS.items():
        if path.startswith(prefix) and len(path) > len(prefix):
            entries = dict(getattr(method, attribute) or {})
            key = _unescape(path[len(prefix):])
            if op == "remove":
                entries.pop(key, None)
            else:
                entries[key] = read(value)
            setattr(method, attribute, entries or None)
            return
    raise ValueError(f"path {path!r} is not supported on a method")


def install() -> list[str]:
    from moto.apigateway import models
    from moto.apigateway.exceptions import BadRequestException
    from moto.apigateway.responses import APIGatewayResponse

    original_create_deployment = models.RestAPI.create_deployment

    def create_deployment(self, name, description, stage_variables=None):
        deployment = original_create_deployment(self, name, description, stage_variables)
        deployment.snapshot = snapshot(self)
        return deployment

    def delete_deployment(self, deployment_id):
        if deployment_id not in self.deployments:
            raise models.DeploymentNotFoundException()
        for stage in self.stages.values():
            if deployment_id in (stage.deployment_id, (getattr(stage, "canary_settings", None) or {}).get("deploymentId")):
                raise BadRequestException("Active stages pointing to this deployment must be moved or deleted")
        return self.deployments.pop(deployment_id)

    original_stage_init = models.Stage.__init__
    original_to_json = models.Stage.to_json
    original_apply = models.Stage.apply_operations

    def stage_init(self, *args, **kwargs):
        original_stage_init(self, *args, **kwargs)
        self.canary_settings = None

    def to_json(self):
        document = original_to_json(self)
        if self.canary_settings:
            document["canarySettings"] = self.canary_settings
        return document

    def apply_operations(self, patch_operations):
        for operation in patch_operations:
            if not apply_canary_operation(self, operation):
                original_apply(self, [operation])
        return self

    original_create_stage = APIGatewayResponse.create_stage
    original_canary_deployment = APIGatewayResponse.create_deployment

    def create_stage(self):
        status, headers, body = original_create_stage(self)
        requested = self._get_param("canarySettings")
        if requested:
            stage = self.backend.get_stage(self.path.split("/")[2], self._get_param("stageName"))
            stage.canary_settings = canary_settings(requested)
            body = json.dumps(stage.to_json())
        return status, headers, body

    def create_canary_deployment(self):
        requested = self._get_param("canarySettings")
        if not requested:
            return original_canary_deployment(self)
        function_id = self.path.replace("/restapis/", "", 1).split("/")[0]
        stage_name = self._get_param("stageName")
        stage = self.backend.get_rest_api(function_id).stages.get(stage_name or "")
        if stage is None:
            # AWS creates a missing stage for a plain deployment, never for a canary one.
            raise BadRequestException("Invalid stage identifier specified")
        deployment = self.backend.create_deployment(function_id, None, self._get_param("description") or "")
        deployment.stage_name = stage_name
        stage.canary_settings = canary_settings({**requested, "deploymentId": deployment.id})
        return 201, {"status": 201}, json.dumps(deployment.to_json())

    def update_method(self):
        _, _, function_id, _, resource_id, _, method_type = self.path.rstrip("/").split("/")[:7]
        method = self.backend.get_method(function_id, resource_id, method_type)
        for operation in self._get_param("patchOperations") or []:
            try:
                apply_method_operation(method, operation)
            except ValueError as error:
                raise BadRequestException(f"Invalid patch operation: {error}") from error
        return 200, {"status": 200}, json.dumps(method.to_json())

    models.RestAPI.create_deployment = create_deployment
    models.RestAPI.delete_deployment = delete_deployment
    models.Stage.__init__ = stage_init
    models.Stage.to_json = to_json
    models.Stage.apply_operations = apply_operations
    APIGatewayResponse.create_stage = create_stage
    APIGatewayResponse.create_deployment = create_canary_deployment
    APIGatewayResponse.update_method = update_method
    return [
        "apigateway: deployment snapshots, stage canarySettings (create, get, update, promote, remove), DeleteDeployment of served deployments refused",
        "apigateway: UpdateMethod (request parameters and models, API key, authorization, validator)",
    ]
