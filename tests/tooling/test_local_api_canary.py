"""The emulator's REST API serves deployments, not the working definition, and splits a stage's traffic with
its canary; the API release (tooling/release.py) opens, promotes and rolls back canaries on it."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from local_aws_helpers import zip_of
from tooling import release as rel

# With 10% on the canary, 300 requests send 30 there on average; fewer than 8 or more than 60 is < 1e-6 likely.
REQUESTS = 300


def _function(aws, body: str) -> str:
    name = f"api-{body}-{uuid.uuid4().hex[:8]}"
    handler = f"def handler(event, context):\n    return {{'statusCode': 200, 'body': {body!r}}}\n"
    arn = aws.lambda_.create_function(
        FunctionName=name, Runtime="python3.12", Role=aws.role_arn, Handler="app.handler",
        Code={"ZipFile": zip_of({"app.py": handler})}, Timeout=5, MemorySize=128,
    )["FunctionArn"]
    return f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations"


def _route(aws, api_id: str, parent_id: str, path_part: str, target: str) -> str:
    resource_id = aws.apigateway.create_resource(restApiId=api_id, parentId=parent_id, pathPart=path_part)["id"]
    aws.apigateway.put_method(restApiId=api_id, resourceId=resource_id, httpMethod="GET", authorizationType="NONE")
    _integrate(aws, api_id, resource_id, target)
    return resource_id


def _integrate(aws, api_id: str, resource_id: str, target: str) -> None:
    aws.apigateway.put_integration(restApiId=api_id, resourceId=resource_id, httpMethod="GET", type="AWS_PROXY",
                                   integrationHttpMethod="POST", uri=target)


def _get(aws, api_id: str, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{aws.endpoint}/restapis/{api_id}/v1/_user_request_{path}", timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _bodies(aws, api_id: str, path: str = "/greet", count: int = REQUESTS) -> Counter:
    return Counter(body if status == 200 else status for status, body in (_get(aws, api_id, path) for _ in range(count)))


@pytest.fixture
def api(aws):
    """A stage `v1` serving GET /greet -> "v1", with a JSON access log that says which requests the canary drew."""
    api_id = aws.apigateway.create_rest_api(name=f"canary-{uuid.uuid4().hex[:8]}")["id"]
    root = next(r["id"] for r in aws.apigateway.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    greet = _route(aws, api_id, root, "greet", _function(aws, "v1"))
    first = aws.apigateway.create_deployment(restApiId=api_id, description="definition first")["id"]
    aws.apigateway.create_stage(restApiId=api_id, stageName="v1", deploymentId=first)
    group = f"/aws/apigateway/{api_id}"
    aws.logs.create_log_group(logGroupName=group)
    aws.apigateway.update_stage(restApiId=api_id, stageName="v1", patchOperations=[
        {"op": "replace", "path": "/accessLogSettings/destinationArn", "value": f"arn:aws:logs:us-east-1:123456789012:log-group:{group}"},
        {"op": "replace", "path": "/accessLogSettings/format", "value": '{"canary":"$context.isCanaryRequest","status":"$context.status"}'},
    ])

    class Api:
        id = api_id
        root_id = root
        greet_id = greet
        first_deployment = first
        log_group = group

    return Api


def _change_the_working_definition(aws, api) -> None:
    """What `make deploy` does to an API: /greet now goes to another function, and /new exists."""
    _integrate(aws, api.id, api.greet_id, _function(aws, "v2"))
    _route(aws, api.id, api.root_id, "new", _function(aws, "new"))


def _access_log(aws, api) -> list[dict]:
    events = []
    for stream in aws.logs.describe_log_streams(logGroupName=api.log_group)["logStreams"]:
        events += aws.logs.get_log_events(logGroupName=api.log_group, logStreamName=stream["logStreamName"])["events"]
    return [json.loads(e["message"]) for e in events]


def test_a_stage_serves_its_deployments_snapshot_not_the_working_definition(aws, api):
    _change_the_working_definition(aws, api)

    assert _bodies(aws, api.id, count=20) == Counter({"v1": 20})
    assert _get(aws, api.id, "/new") == (403, '{"message": "Missing Authentication Token"}')
    # Once a deployment snapshots the new definition and the stage serves it, both changes are live.
    second = aws.apigateway.create_deployment(restApiId=api.id, description="definition second")["id"]
    aws.apigateway.update_stage(restApiId=api.id, stageName="v1", patchOperations=[{"op": "replace", "path": "/deploymentId", "value": second}])
    assert _bodies(aws, api.id, count=20) == Counter({"v2": 20})
    assert _get(aws, api.id, "/new") == (200, "new")


def test_the_canary_draws_its_share_of_requests_from_its_own_snapshot_until_promoted(aws, api):
    _change_the_working_definition(aws, api)
    canary = aws.apigateway.create_deployment(
        restApiId=api.id, stageName="v1", description="definition second", canarySettings={"percentTraffic": 10.0, "useStageCache": False}
    )["id"]

    stage = aws.apigateway.get_stage(restApiId=api.id, stageName="v1")
    # A canary deployment leaves the stage's own deployment alone, and GetStage reports the canary (moto drops it).
    assert stage["deploymentId"] == api.first_deployment
    assert stage["canarySettings"] == {"deploymentId": canary, "percentTraffic": 10.0, "useStageCache": False, "stageVariableOverrides": {}}
    assert aws.apigateway.get_stages(restApiId=api.id)["item"][0]["canarySettings"]["deploymentId"] == canary

    served = _bodies(aws, api.id)
    assert set(served) == {"v1", "v2"} and 8 <= served["v2"] <= 60, served
    # The access log says which requests the canary drew: exactly those the new snapshot answered.
    assert Counter(line["canary"] for line in _access_log(aws, api)) == Counter({"true": served["v2"], "false": served["v1"]})

    # Neither deployment can be deleted while the stage or its canary serves it.
    for deployment in (api.first_deployment, canary):
        with pytest.raises(ClientError, match="Active stages pointing to this deployment"):
            aws.apigateway.delete_deployment(restApiId=api.id, deploymentId=deployment)

    aws.apigateway.update_stage(restApiId=api.id, stageName="v1", patchOperations=rel.PROMOTE)
    promoted = aws.apigateway.get_stage(restApiId=api.id, stageName="v1")
    assert promoted["deploymentId"] == canary and promoted["canarySettings"]["percentTraffic"] == 0.0
    aws.apigateway.update_stage(restApiId=api.id, stageName="v1", patchOperations=rel.REMOVE_CANARY)
    assert "canarySettings" not in aws.apigateway.get_stage(restApiId=api.id, stageName="v1")
    assert _bodies(aws, api.id, count=20) == Counter({"v2": 20})
    aws.apigateway.delete_deployment(restApiId=api.id, deploymentId=api.first_deployment)  # served by nothing now


def test_a_canary_deployment_needs_an_existing_stage(aws, api):
    with pytest.raises(ClientError, match="Invalid stage identifier specified"):
        aws.apigateway.create_deployment(restApiId=api.id, stageName="v2", canarySettings={"percentTraffic": 10.0})


def test_canary_settings_can_be_changed_and_their_stage_variables_copied(aws, api):
    canary = aws.apigateway.create_deployment(restApiId=api.id, stageName="v1", canarySettings={"percentTraffic": 5.0})["id"]
    aws.apigateway.update_stage(restApiId=api.id, stageName="v1", patchOperations=[
        {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "25.5"},
        {"op": "replace", "path": "/canarySettings/useStageCache", "value": "true"},
        {"op": "replace", "path": "/canarySettings/stageVariableOverrides/colour", "value": "blue"},
        {"op": "copy", "from": "/canarySettings/stageVariableOverrides", "path": "/variables"},
        {"op": "replace", "path": "/description", "value": "still moto's to apply"},
    ])
    stage = aws.apigateway.get_stage(restApiId=api.id, stageName="v1")
    assert stage["canarySettings"] == {"deploymentId": canary, "percentTraffic": 25.5, "useStageCache": True,
                                       "stageVariableOverrides": {"colour": "blue"}}
    assert stage["variables"] == {"colour": "blue"} and stage["description"] == "still moto's to apply"


def test_a_method_changed_in_place_changes_the_working_definition_only(aws, api):
    """UpdateMethod (moto has none) with the operations Terraform sends for a method changed in place."""
    validator = aws.apigateway.create_request_validator(restApiId=api.id, name="parameters", validateRequestParameters=True)["id"]
    method = {"restApiId": api.id, "resourceId": api.greet_id, "httpMethod": "GET"}
    updated = aws.apigateway.update_method(**method, patchOperations=[
        {"op": "add", "path": "/requestParameters/method.request.querystring.probe", "value": "true"},
        {"op": "replace", "path": "/requestValidatorId", "value": validator},
        {"op": "replace", "path": "/apiKeyRequired", "value": "false"},
    ])
    assert updated["requestParameters"] == {"method.request.querystring.probe": True} and updated["requestValidatorId"] == validator
    assert aws.apigateway.get_method(**method)["requestParameters"] == {"method.request.querystring.probe": True}

    # The stage serves its snapshot until a deployment of the changed method is served.
    assert _bodies(aws, api.id, count=10) == Counter({"v1": 10})
    second = aws.apigateway.create_deployment(restApiId=api.id, description="definition probe")["id"]
    aws.apigateway.update_stage(restApiId=api.id, stageName="v1", patchOperations=[{"op": "replace", "path": "/deploymentId", "value": second}])
    assert _get(aws, api.id, "/greet")[0] == 400
    assert _get(aws, api.id, "/greet?probe=1") == (200, "v1")

    # Map entries are named by JSON pointer (`/` written `~1`); removing the last one leaves no map.
    aws.apigateway.update_method(**method, patchOperations=[{"op": "add", "path": "/requestModels/application~1json", "value": "Empty"}])
    assert aws.apigateway.get_method(**method)["requestModels"] == {"application/json": "Empty"}
    aws.apigateway.update_method(**method, patchOperations=[
        {"op": "remove", "path": "/requestParameters/method.request.querystring.probe"},
        {"op": "remove", "path": "/requestModels/application~1json"},
        {"op": "remove", "path": "/requestValidatorId"},
    ])
    after = aws.apigateway.get_method(**method)
    assert not after.get("requestParameters") and not after.get("requestModels") and not after.get("requestValidatorId")
    for unknown in ({"op": "replace", "path": "/httpMethod", "value": "POST"}, {"op": "copy", "from": "/apiKeyRequired", "path": "/operationName"}):
        with pytest.raises(ClientError, match="Invalid patch operation"):
            aws.apigateway.update_method(**method, patchOperations=[unknown])


# --- the API release against the emulator ------------------------------------------------------------


@pytest.fixture
def alarm(aws):
    name = f"api-5xx-{uuid.uuid4().hex[:8]}"
    aws.cloudwatch.put_metric_alarm(
        AlarmName=name, Namespace="AWS/ApiGateway", MetricName="5XXError", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    return name


def _target(api, alarm: str, definition: str = "second") -> rel.ApiTarget:
    return rel.ApiTarget(rest_api_id=api.id, stage="v1", definition_hash=definition, alarm_names=(alarm,), canary_percent=10.0)


def test_the_api_release_opens_a_canary_watches_it_and_promotes_it(aws, api, alarm):
    _change_the_working_definition(aws, api)
    lines: list[str] = []

    opened = rel.release_api(_target(api, alarm), apigateway_client=aws.apigateway, cloudwatch_client=aws.cloudwatch, wait=False, say=lines.append)
    assert opened.status == "Created"
    assert set(_bodies(aws, api.id)) == {"v1", "v2"}  # 10% of requests see the new definition

    promoted = rel.release_api(_target(api, alarm), apigateway_client=aws.apigateway, cloudwatch_client=aws.cloudwatch,
                               bake_seconds=0.5, poll_seconds=0.2, say=lines.append)
    assert (promoted.exit_code, promoted.status, promoted.deployment_id) == (0, "Promoted", opened.deployment_id)
    assert any("already on the canary" in line for line in lines)
    stage = aws.apigateway.get_stage(restApiId=api.id, stageName="v1")
    assert stage["deploymentId"] == opened.deployment_id and "canarySettings" not in stage
    assert _bodies(aws, api.id, count=20) == Counter({"v2": 20})
    again = rel.release_api(_target(api, alarm), apigateway_client=aws.apigateway, cloudwatch_client=aws.cloudwatch, say=lines.append)
    assert again.status == "Unchanged"


def test_an_alarm_during_the_bake_removes_the_canary_and_its_deployment(aws, api, alarm):
    _change_the_working_definition(aws, api)
    opened = rel.release_api(_target(api, alarm), apigateway_client=aws.apigateway, cloudwatch_client=aws.cloudwatch, wait=False, say=print)
    aws.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5XXError >= 1 for 1 minute")

    outcome = rel.release_api(_target(api, alarm), apigateway_client=aws.apigateway, cloudwatch_client=aws.cloudwatch,
                              bake_seconds=5, poll_seconds=0.2, say=print)

    assert (outcome.exit_code, outcome.status) == (rel.EXIT_FAILED, "RolledBack")
    assert f"{alarm} is in ALARM: 5XXError >= 1 for 1 minute" in outcome.message
    stage = aws.apigateway.get_stage(restApiId=api.id, stageName="v1")
    assert stage["deploymentId"] == api.first_deployment and "canarySettings" not in stage
    assert opened.deployment_id not in {d["id"] for d in aws.apigateway.get_deployments(restApiId=api.id)["items"]}
    assert _bodies(aws, api.id, count=20) == Counter({"v1": 20})
