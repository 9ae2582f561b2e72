"""The release command's API path (tooling/release.py) against botocore's Stubber: a new deployment on the
stage's canary, the API alarms watched for the bake time, then promotion or removal. Time is a fake clock."""
from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber

from release_stubs import FakeClock, stub_client
from tooling import release as rel
from tooling.stack_outputs import parse_outputs

API_ID = "a1b2c3d4e5"
STAGE = "v1"
DEFINITION = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
ALARM = "PatternDetectionApi-5XXError-dev"
TARGET = rel.ApiTarget(rest_api_id=API_ID, stage=STAGE, definition_hash=DEFINITION, alarm_names=(ALARM,), canary_percent=10.0)
ON_STAGE = {"restApiId": API_ID, "stageName": STAGE}


@pytest.fixture
def aws():
    clients = {service: stub_client(service) for service in ("apigateway", "cloudwatch")}
    stubbers = {service: Stubber(client) for service, client in clients.items()}
    for stubber in stubbers.values():
        stubber.activate()
    yield clients, stubbers["apigateway"], stubbers["cloudwatch"]
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def _stage(api: Stubber, deployment: str, canary: str | None = None, percent: float = 10.0) -> None:
    response = {"stageName": STAGE, "deploymentId": deployment}
    if canary:
        response["canarySettings"] = {"deploymentId": canary, "percentTraffic": percent, "useStageCache": False}
    api.add_response("get_stage", response, ON_STAGE)


def _deployment(api: Stubber, deployment: str, description: str) -> None:
    api.add_response("get_deployment", {"id": deployment, "description": description}, {"restApiId": API_ID, "deploymentId": deployment})


def _alarms(cloudwatch: Stubber, state: str = "OK", reason: str = "Threshold Crossed: no datapoints") -> None:
    _alarms_found(cloudwatch, [{"AlarmName": ALARM, "StateValue": state, "StateReason": reason}])


def _alarms_found(cloudwatch: Stubber, metric_alarms: list[dict]) -> None:
    cloudwatch.add_response("describe_alarms", {"MetricAlarms": metric_alarms}, {"AlarmNames": [ALARM], "AlarmTypes": ["MetricAlarm"]})


def _opens_canary(api: Stubber, cloudwatch: Stubber, new: str = "d-new") -> None:
    _stage(api, "d-old")
    _deployment(api, "d-old", "definition 0ld")
    _alarms(cloudwatch)
    api.add_response(
        "create_deployment",
        {"id": new, "description": f"definition {DEFINITION} (tooling.release)"},
        {**ON_STAGE, "description": f"definition {DEFINITION} (tooling.release)", "canarySettings": {"percentTraffic": 10.0, "useStageCache": False}},
    )


def _promotes(api: Stubber, canary: str = "d-new") -> None:
    _stage(api, "d-old", canary)
    api.add_response("update_stage", {"stageName": STAGE, "deploymentId": canary}, {**ON_STAGE, "patchOperations": rel.PROMOTE})
    api.add_response("update_stage", {"stageName": STAGE, "deploymentId": canary}, {**ON_STAGE, "patchOperations": rel.REMOVE_CANARY})


def _run(aws, clock: FakeClock, **kwargs) -> tuple[rel.ReleaseOutcome, list[str]]:
    clients, _, _ = aws
    lines: list[str] = []
    outcome = rel.release_api(
        TARGET, apigateway_client=clients["apigateway"], cloudwatch_client=clients["cloudwatch"],
        clock=clock, sleep=clock.sleep, say=lines.append, **kwargs,
    )
    return outcome, lines


def test_a_new_definition_goes_on_the_canary_bakes_and_is_promoted(aws):
    _, api, cloudwatch = aws
    _opens_canary(api, cloudwatch)
    for _ in range(4):  # at 0, 10, 20 and 30 s of a 30 s bake
        _alarms(cloudwatch)
    _promotes(api)
    clock = FakeClock()

    outcome, lines = _run(aws, clock, bake_seconds=30, poll_seconds=10)

    assert (outcome.exit_code, outcome.status) == (0, "Promoted")
    assert (outcome.current_version, outcome.deployment_id) == ("d-old", "d-new")
    assert clock.sleeps == [10, 10, 10]
    assert f"deployment d-new (definition {DEFINITION}) is on the canary of {API_ID}/{STAGE}: 10% of requests" in lines
    assert lines[-1] == f"released: {API_ID}/{STAGE} serves deployment d-new (definition {DEFINITION}; was d-old)"


def test_an_alarm_during_the_bake_removes_the_canary_and_deletes_its_deployment(aws):
    _, api, cloudwatch = aws
    _opens_canary(api, cloudwatch)
    _alarms(cloudwatch)
    _alarms(cloudwatch, "ALARM", "Threshold Crossed: 3 out of the last 5 datapoints were >= 5.0")
    api.add_response("update_stage", {"stageName": STAGE, "deploymentId": "d-old"}, {**ON_STAGE, "patchOperations": rel.REMOVE_CANARY})
    api.add_response("delete_deployment", {}, {"restApiId": API_ID, "deploymentId": "d-new"})

    outcome, lines = _run(aws, FakeClock(), bake_seconds=300, poll_seconds=10)

    assert (outcome.exit_code, outcome.status) == (rel.EXIT_FAILED, "RolledBack")
    assert f"{ALARM} is in ALARM: Threshold Crossed: 3 out of the last 5 datapoints were >= 5.0" in outcome.message
    assert f"{API_ID}/{STAGE} serves deployment d-old as before" in outcome.message
    assert lines[-1] == outcome.message


def test_a_stage_that_already_serves_the_definition_is_left_alone(aws):
    _, api, _ = aws
    _stage(api, "d-current")
    _deployment(api, "d-current", f"definition {DEFINITION}")

    outcome, lines = _run(aws, FakeClock())

    assert (outcome.exit_code, outcome.status, outcome.deployment_id) == (0, "Unchanged", None)
    assert "nothing to release" in lines[-1]


@pytest.mark.parametrize(
    ("canary", "description", "alarms", "refusal"),
    [
        pytest.param(None, "Managed by Terraform", [{"AlarmName": ALARM, "StateValue": "ALARM", "StateReason": "5XXError >= 5"}],
                     f"already alarming \\({ALARM} is in ALARM: 5XXError >= 5\\): nothing was deployed",
                     id="an_api_that_is_already_alarming_gets_no_canary"),
        pytest.param("d-other", "definition 0ther", None,  # refused before the alarms are read
                     r"holds another definition \(0ther, not 9f86.*op=remove,path=/canarySettings",
                     id="a_canary_of_another_definition_is_not_touched"),
        pytest.param(None, "definition 0ld", [], f"the API alarms {ALARM} do not exist",
                     id="a_missing_alarm_is_an_error_not_a_silent_pass"),
    ],
)
def test_a_release_that_cannot_open_a_canary_safely_changes_nothing(aws, canary, description, alarms, refusal):
    """Each check before the canary opens refuses with its reason; the Stubber would fail any write."""
    _, api, cloudwatch = aws
    _stage(api, "d-old", canary)
    _deployment(api, canary or "d-old", description)
    if alarms is not None:
        _alarms_found(cloudwatch, alarms)

    with pytest.raises(rel.ReleaseError, match=refusal):
        _run(aws, FakeClock())


def test_no_wait_leaves_the_canary_open_and_the_next_run_watches_and_promotes_it(aws):
    _, api, cloudwatch = aws
    _opens_canary(api, cloudwatch)
    outcome, _ = _run(aws, FakeClock(), wait=False)
    assert (outcome.exit_code, outcome.status, outcome.deployment_id) == (0, "Created", "d-new")
    assert "stays open at 10% until a release of the API runs again" in outcome.message

    # The next run finds this definition on the canary and bakes it instead of opening another.
    _stage(api, "d-old", "d-new")
    _deployment(api, "d-new", f"definition {DEFINITION} (tooling.release)")
    _alarms(cloudwatch)
    _promotes(api)
    outcome, lines = _run(aws, FakeClock(), bake_seconds=0)
    assert (outcome.status, outcome.deployment_id) == ("Promoted", "d-new")
    assert f"deployment d-new of this definition is already on the canary of {API_ID}/{STAGE}: watching it" in lines


def test_a_canary_replaced_while_it_baked_is_not_promoted(aws):
    _, api, cloudwatch = aws
    _opens_canary(api, cloudwatch)
    _alarms(cloudwatch)
    _stage(api, "d-old", "d-someone-elses")

    with pytest.raises(rel.ReleaseError, match="changed while it baked \\(now d-someone-elses, was d-new\\); nothing was promoted"):
        _run(aws, FakeClock(), bake_seconds=0)


# --- names and the command line ---------------------------------------------------------------------

OUTPUTS = json.dumps({
    "rest_api_id": {"value": API_ID},
    "api_stage_name": {"value": STAGE},
    "api_definition_hash": {"value": DEFINITION},
    "api_release_alarm_names": {"value": [ALARM]},
})


def test_the_api_target_comes_from_the_outputs_and_the_environments_canary_share():
    outputs = parse_outputs(OUTPUTS, source="test")
    assert rel.resolve_api_target(env_name="dev", canary_percent=25.0, load_outputs=lambda: outputs) == rel.ApiTarget(
        API_ID, STAGE, DEFINITION, (ALARM,), 25.0
    )
    without_hash = {k: v for k, v in outputs.items() if k != "api_definition_hash"}
    with pytest.raises(rel.ReleaseError, match="'api_definition_hash' is missing for dev: has patternwatch-dev been deployed"):
        rel.resolve_api_target(env_name="dev", canary_percent=10.0, load_outputs=lambda: without_hash)


def test_the_command_line_releases_the_api_with_the_env_files_canary_share(monkeypatch, capsys):
    for var in rel.ENDPOINT_VARS:
        monkeypatch.delenv(var, raising=False)
    clients = {service: stub_client(service) for service in rel.SERVICES}
    monkeypatch.setattr(rel, "aws_clients", lambda region, endpoint: clients)
    monkeypatch.setattr(rel, "read_stack_outputs", lambda env, **_: parse_outputs(OUTPUTS, source="test"))
    monkeypatch.setattr(rel, "build_function", lambda name: pytest.fail("the API release builds no function"))
    with Stubber(clients["sts"]) as sts, Stubber(clients["apigateway"]) as api, Stubber(clients["cloudwatch"]) as cloudwatch:
        sts.add_response("get_caller_identity", {"Account": "333333333333"}, {})
        _opens_canary(api, cloudwatch)
        assert rel.main(["api", "--env", "prod", "--no-wait"]) == rel.EXIT_OK
        api.assert_no_pending_responses()
    out = capsys.readouterr().out
    assert f"prod (workspace default): the API definition {DEFINITION} on {API_ID}/{STAGE}" in out
    assert "10% of requests" in out


def test_bake_time_and_poll_interval_are_checked():
    assert rel.parse_args(["api", "--env", "dev"]).bake_seconds == rel.DEFAULT_BAKE_SECONDS == 300
    assert rel.parse_args(["api", "--env", "dev", "--bake-seconds", "0"]).bake_seconds == 0
    with pytest.raises(SystemExit):
        rel.parse_args(["api", "--env", "dev", "--bake-seconds", "-1"])
