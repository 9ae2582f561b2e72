"""envs/*.json become frozen, typed config; every bad file gets an error naming the file and the key."""
from __future__ import annotations

import copy
import dataclasses
import json
import os

import pytest

from patternwatch_infra.config import (
    DEFAULT_RESERVED_CONCURRENCY,
    ENVIRONMENT_NAMES,
    EMULATOR_PORT_VAR,
    ENVS_DIR,
    ConfigError,
    load_environment,
    parse_environment,
    selected_environments,
)


@pytest.fixture()
def dev_document() -> dict:
    return json.loads((ENVS_DIR / "dev.json").read_text())


def write_env(tmp_path, name: str, document) -> None:
    (tmp_path / f"{name}.json").write_text(document if isinstance(document, str) else json.dumps(document))


def test_the_shipped_environments_load_with_the_documented_defaults(monkeypatch):
    monkeypatch.delenv("PATTERNWATCH_EMULATOR_PORT", raising=False)  # the shipped file's port, not this checkout's
    configs = {name: load_environment(name) for name in ENVIRONMENT_NAMES}
    for name, config in configs.items():
        assert config.name == config.resource_suffix == name
        assert config.alarms.billing_threshold_usd == 100
        assert config.alerts.confidence_threshold == 0.9
        assert config.alerts.threshold_check_min_breaches == 6
        assert config.alarms.lambda_errors_per_minute == config.alarms.api_5xx_errors_per_minute == 5
        assert config.waf.geo_block_countries == ("CN", "RU", "KP")
        assert config.waf.rate_limit_per_5_minutes == 2000
        assert config.canary_percent == 10
        assert config.kinesis_retention_hours == (168 if name == "prod" else 24)
        assert config.approval_expiry_seconds == 3600
        assert set(config.tags) >= {"Project", "Environment", "CostCenter"}
    for name, config in configs.items():  # every environment names the people who approve its CRITICAL alerts
        assert config.approvers and all(a.id and a.name and "@" in a.email for a in config.approvers), name
    assert [a.approver.name for a in configs["local"].approvers] == ["Ada Lovelace", "Grace Hopper"]
    assert configs["prod"].prevent_destroy is True
    # Untrusted code is refused in prod and deployed with a warning everywhere else.
    assert configs["prod"].code_signing.untrusted_artifact_on_deployment == "Enforce" and configs["prod"].code_signing.enforced
    assert all(configs[n].code_signing.untrusted_artifact_on_deployment == "Warn" for n in ("local", "dev", "staging"))
    assert not any(configs[n].prevent_destroy for n in ("local", "dev", "staging"))
    # 5055 unless this checkout runs its emulator elsewhere (PATTERNWATCH_EMULATOR_PORT, tested below).
    port = os.environ.get(EMULATOR_PORT_VAR, "5055")
    assert configs["local"].account_id is None and configs["local"].emulator.endpoint == f"http://127.0.0.1:{port}"
    assert configs["dev"].state_key == "dev/patternwatch.tfstate"


def test_config_is_frozen():
    config = load_environment("dev")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.region = "eu-west-1"
    with pytest.raises(TypeError):
        config.tags["Project"] = "other"


def test_omitted_sections_take_the_defaults(dev_document):
    for key in ("lambda", "alerts", "alarms", "waf", "code_signing", "canary_percent", "kinesis_retention_hours", "approval_expiry_seconds", "prevent_destroy", "power_tuner"):
        del dev_document[key]
    dev_document["waf"] = {"rate_limit_per_5_minutes": 1000}
    config = parse_environment(dev_document, "envs/dev.json")
    assert config.lambda_.memory_mb == 512
    assert config.alarms.billing_threshold_usd == 100
    assert config.alerts.confidence_threshold == 0.9 and config.alerts.threshold_check_min_breaches == 6
    assert config.waf.geo_block_countries == ("CN", "RU", "KP")
    assert config.waf.rate_limit_per_5_minutes == 1000
    config = parse_environment({k: v for k, v in dev_document.items() if k != "waf"}, "envs/dev.json")
    assert config.waf.rate_limit_per_5_minutes == 2000
    assert config.canary_percent == 10
    assert config.prevent_destroy is False
    assert config.power_tuner.enabled is False
    assert config.code_signing.untrusted_artifact_on_deployment == "Warn" and not config.code_signing.enforced
    dev_document["code_signing"] = {}
    assert parse_environment(dev_document, "envs/dev.json").code_signing.untrusted_artifact_on_deployment == "Warn"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(colour="blue"), "envs/dev.json: colour: unknown key"),
        (lambda d: d["alarms"].update(billing_treshold_usd=5), "envs/dev.json: alarms.billing_treshold_usd: unknown key"),
        (lambda d: d.update(region="mars-north-1"), "envs/dev.json: region: 'mars-north-1' is not valid"),
        (lambda d: d.update(region=7), "envs/dev.json: region: must be a string, got int"),
        (lambda d: d["lambda"].update(memory_mb=64), "envs/dev.json: lambda.memory_mb: 64 is out of range [128, 10240]"),
        (lambda d: d["lambda"].update(memory_mb="1024"), "envs/dev.json: lambda.memory_mb: must be an integer, got str"),
        (lambda d: d["lambda"].update(timeout_seconds=True), "envs/dev.json: lambda.timeout_seconds: must be an integer, got bool"),
        (lambda d: d["lambda"].update(log_retention_days=10), "envs/dev.json: lambda.log_retention_days: 10 is not a CloudWatch Logs retention period"),
        (lambda d: d["tags"].update(CostCenter=""), "envs/dev.json: tags.CostCenter: must not be empty"),
        (lambda d: d["tags"].update(Owner="  "), "envs/dev.json: tags.Owner: must not be empty"),
        (lambda d: d["tags"].pop("Project"), "envs/dev.json: tags.Project: is required"),
        (lambda d: d.update(tags=["Project"]), "envs/dev.json: tags: must be a JSON object, got list"),
        (lambda d: d.pop("account_id"), "envs/dev.json: account_id: is required"),
        (lambda d: d.update(account_id="12345"), "envs/dev.json: account_id: '12345' is not valid"),
        (lambda d: d.update(resource_suffix="PR_1"), "envs/dev.json: resource_suffix: 'PR_1' is not valid"),
        (lambda d: d["alarms"].update(billing_threshold_usd=float("nan")), "envs/dev.json: alarms.billing_threshold_usd: must be a finite number"),
        (lambda d: d["alerts"].update(confidence_threshold=1.5), "envs/dev.json: alerts.confidence_threshold: 1.5 is out of range [0.0, 1.0]"),
        (lambda d: d["alerts"].update(confidence_threshold="0.9"), "envs/dev.json: alerts.confidence_threshold: must be a finite number"),
        (lambda d: d["alerts"].update(threshold_check_min_breaches=0), "envs/dev.json: alerts.threshold_check_min_breaches: 0 is out of range"),
        (lambda d: d["alerts"].update(threshold_check_min_breaches=2.5), "envs/dev.json: alerts.threshold_check_min_breaches: must be an integer"),
        (lambda d: d["alerts"].update(threshold=0.8), "envs/dev.json: alerts.threshold: unknown key"),
        (lambda d: d.update(alerts=[0.9]), "envs/dev.json: alerts: must be a JSON object"),
        (lambda d: d["alarms"].update(lambda_errors_per_minute=0), "envs/dev.json: alarms.lambda_errors_per_minute: 0 is out of range"),
        (lambda d: d["alarms"].update(api_5xx_errors_per_minute="5"), "envs/dev.json: alarms.api_5xx_errors_per_minute: must be an integer"),
        # Keys of the old single-meaning-less layout say where their meaning went.
        (lambda d: d["alarms"].update(error_threshold=5), "envs/dev.json: alarms.error_threshold: split into alarms.lambda_errors_per_minute"),
        (lambda d: d["alarms"].update(pattern_confidence_threshold=0.9), "envs/dev.json: alarms.pattern_confidence_threshold: moved to alerts.confidence_threshold"),
        (lambda d: d["waf"].update(geo_block_countries=["China"]), "envs/dev.json: waf.geo_block_countries: must be a list of ISO 3166"),
        (lambda d: d["waf"].update(rate_limit_per_5_minutes=5), "envs/dev.json: waf.rate_limit_per_5_minutes: 5 is out of range"),
        (lambda d: d.update(canary_percent=150), "envs/dev.json: canary_percent: 150 is out of range"),
        (lambda d: d.update(kinesis_retention_hours=12), "envs/dev.json: kinesis_retention_hours: 12 is out of range"),
        (lambda d: d["code_signing"].update(untrusted_artifact_on_deployment="Block"),
         "envs/dev.json: code_signing.untrusted_artifact_on_deployment: 'Block' is not one of 'Enforce', 'Warn'"),
        (lambda d: d["code_signing"].update(enforce=True), "envs/dev.json: code_signing.enforce: unknown key"),
        (lambda d: d.update(prevent_destroy="yes"), "envs/dev.json: prevent_destroy: must be true or false, got str"),
        (lambda d: d["lambda"]["reserved_concurrency"].update(pattern_detektor=5), "envs/dev.json: lambda.reserved_concurrency.pattern_detektor: unknown key"),
        (lambda d: d["lambda"]["reserved_concurrency"].update(pattern_detector=0), "envs/dev.json: lambda.reserved_concurrency.pattern_detector: 0 is out of range [1, 900]"),
        (lambda d: d["lambda"]["reserved_concurrency"].update(pattern_detector="5"), "envs/dev.json: lambda.reserved_concurrency.pattern_detector: must be an integer"),
        (lambda d: d["lambda"]["reserved_concurrency"].update(alert_processor=1), "envs/dev.json: lambda.reserved_concurrency.alert_processor: 1 is below 2"),
        (lambda d: d["lambda"]["reserved_concurrency"].update(approval_expiry=1),
         "envs/dev.json: lambda.reserved_concurrency.approval_expiry: 1 is below 2: it is also the PendingApprovals mapping's"),
        (lambda d: d["lambda"]["reserved_concurrency"].update(pattern_detector=890),
         "envs/dev.json: lambda.reserved_concurrency: the reservations add up to 912, more than the 900 this account can reserve"),
        (lambda d: d["lambda"].update(account_concurrency=100), "envs/dev.json: lambda.account_concurrency: 100 is out of range [101,"),
        (lambda d: (d["lambda"].update(account_concurrency=120), d["lambda"]["reserved_concurrency"].update(pattern_detector=25)),
         "envs/dev.json: lambda.reserved_concurrency.pattern_detector: 25 is out of range [1, 20]"),
        (lambda d: d.update(power_tuner={"enabled": "yes"}), "envs/dev.json: power_tuner.enabled: must be true or false"),
        (lambda d: d.update(power_tuner={"enabled": True, "stage": 1}), "envs/dev.json: power_tuner.stage: unknown key"),
        (lambda d: d["state_backend"].update(type="gcs"), "envs/dev.json: state_backend.type: 'gcs' is not one of 's3', 'local'"),
        (lambda d: d["state_backend"].pop("bucket"), "envs/dev.json: state_backend.bucket: is required"),
        (lambda d: d["state_backend"].update(bucket="Bad_Bucket"), "envs/dev.json: state_backend.bucket: 'Bad_Bucket' is not valid"),
        (lambda d: d["state_backend"].update(use_lockfile="true"), "envs/dev.json: state_backend.use_lockfile: must be true or false"),
        (lambda d: d.update(state_backend={"type": "local", "key_prefix": "dev"}), "envs/dev.json: state_backend.type: 'local' state is only for the emulator"),
        (lambda d: d.update(emulator={"port": 70000}), "envs/dev.json: emulator.port: 70000 is out of range [1, 65535]"),
        (lambda d: d.pop("state_backend"), "envs/dev.json: state_backend: is required"),
        (lambda d: d.update(approval_expiry_seconds=13 * 3600), "envs/dev.json: approval_expiry_seconds: 46800 is out of range [60, 43200]"),
        (lambda d: d.pop("approvers"), "envs/dev.json: approvers: is required"),
        (lambda d: d.update(approvers=[]), "envs/dev.json: approvers: must list at least one approver"),
        (lambda d: d.update(approvers={"id": "a"}), "envs/dev.json: approvers: must list at least one approver"),
        (lambda d: d["approvers"][0].pop("email"), "envs/dev.json: approvers[0].email: is required"),
        (lambda d: d["approvers"][0].update(email="not an address"), "envs/dev.json: approvers[0].email: 'not an address' is not valid"),
        (lambda d: d["approvers"][0].update(id="Dev Lead"), "envs/dev.json: approvers[0].id: 'Dev Lead' is not valid"),
        (lambda d: d["approvers"][0].update(name=""), "envs/dev.json: approvers[0].name: must not be empty"),
        (lambda d: d["approvers"][0].update(name="N" * 65), "envs/dev.json: approvers[0].name: is longer than 64 characters"),
        (lambda d: d["approvers"][0].update(phone="555"), "envs/dev.json: approvers[0].phone: unknown key"),
        (lambda d: d["approvers"].append(dict(d["approvers"][0], email="other@example.com")), "envs/dev.json: approvers[1].id: 'dev-lead' is listed twice"),
        (lambda d: d["approvers"].append(dict(d["approvers"][0], id="other")), "envs/dev.json: approvers[1].email: 'dev-trading-lead@example.com' is listed twice"),
        (lambda d: d.update(approvers=[dict(d["approvers"][0], id=f"a{i}", email=f"a{i}@example.com") for i in range(21)]),
         "envs/dev.json: approvers: lists 21 approvers; at most 20"),
        (lambda d: d["approvers"].append("alice"), "envs/dev.json: approvers[1]: must be a JSON object, got str"),
    ],
)
def test_bad_environment_files_name_the_file_and_the_key(tmp_path, dev_document, mutate, message):
    document = copy.deepcopy(dev_document)
    mutate(document)
    write_env(tmp_path, "dev", document)
    with pytest.raises(ConfigError) as error:
        load_environment("dev", envs_dir=tmp_path)
    assert str(error.value).startswith(message)


def test_production_keeps_stream_records_at_least_seven_days(tmp_path):
    """FSBP Kinesis.3: prod below 168 hours is a config error; other environments choose (cost)."""
    prod = json.loads((ENVS_DIR / "prod.json").read_text())
    prod["kinesis_retention_hours"] = 167
    write_env(tmp_path, "prod", prod)
    with pytest.raises(ConfigError, match=r"^envs/prod.json: kinesis_retention_hours: 167 is below 168"):
        load_environment("prod", envs_dir=tmp_path)
    prod["kinesis_retention_hours"] = 168
    write_env(tmp_path, "prod", prod)
    assert load_environment("prod", envs_dir=tmp_path).kinesis_retention_hours == 168


def test_reserved_concurrency_defaults_fill_in_what_a_file_leaves_out(dev_document):
    dev_document["lambda"]["reserved_concurrency"] = {"pattern_detector": 30}
    del dev_document["lambda"]["account_concurrency"]
    config = parse_environment(dev_document, "envs/dev.json")
    assert dict(config.lambda_.reserved_concurrency) == {**DEFAULT_RESERVED_CONCURRENCY, "pattern_detector": 30}
    assert config.lambda_.account_concurrency == 1000 and config.lambda_.concurrency_budget == 900
    del dev_document["lambda"]["reserved_concurrency"]
    assert parse_environment(dev_document, "envs/dev.json").lambda_.reserved_concurrency == DEFAULT_RESERVED_CONCURRENCY


def test_the_power_tuner_is_opt_in_and_off_in_prod():
    enabled = {name: load_environment(name).power_tuner.enabled for name in ENVIRONMENT_NAMES}
    assert enabled == {"local": True, "dev": True, "staging": True, "prod": False}
    assert load_environment("dev").stack_names == ("patternwatch-dev", "patternwatch-dev-power-tuner")
    assert load_environment("prod").stack_names == ("patternwatch-prod",)
    assert load_environment("dev").state_key_for("power-tuner.tfstate") == "dev/power-tuner.tfstate"


def test_a_file_that_is_not_json_names_the_line(tmp_path):
    write_env(tmp_path, "dev", '{"name": "dev",\n  "region": }')
    with pytest.raises(ConfigError, match=r"^envs/dev.json: line 2 column 13: invalid JSON"):
        load_environment("dev", envs_dir=tmp_path)


def test_a_file_that_is_not_an_object_is_rejected(tmp_path):
    write_env(tmp_path, "dev", "[1, 2]")
    with pytest.raises(ConfigError, match=r"^envs/dev.json: <top level>: must be a JSON object, got list"):
        load_environment("dev", envs_dir=tmp_path)


def test_a_missing_file_lists_the_known_environments(tmp_path):
    with pytest.raises(ConfigError, match=r"^envs/qa.json: file not found \(known environments: local, dev, staging, prod\)"):
        load_environment("qa", envs_dir=tmp_path)


def test_the_name_inside_must_match_the_file(tmp_path, dev_document):
    write_env(tmp_path, "staging", dev_document)
    with pytest.raises(ConfigError, match=r"^envs/staging.json: name: 'dev' does not match the file name 'staging'"):
        load_environment("staging", envs_dir=tmp_path)


def test_the_resource_suffix_leaves_room_for_the_longest_workspace(dev_document, tmp_path):
    """Every name must still fit AWS's limits with a 16-character workspace: suffixes are at most 7 characters."""
    for suffix in ("qa", "staging", "a1-b2"):
        dev_document["resource_suffix"] = suffix
        write_env(tmp_path, "dev", dev_document)
        assert load_environment("dev", envs_dir=tmp_path).resource_suffix == suffix
    for suffix in ("staging2", "Dev", "-dev", "dev-", "dev_1"):
        dev_document["resource_suffix"] = suffix
        write_env(tmp_path, "dev", dev_document)
        with pytest.raises(ConfigError, match=rf"^envs/dev.json: resource_suffix: '{suffix}' is not valid"):
            load_environment("dev", envs_dir=tmp_path)


def test_environment_selection():
    assert [c.name for c in selected_environments({})] == list(ENVIRONMENT_NAMES)
    assert [c.name for c in selected_environments({"PATTERNWATCH_ENVIRONMENTS": " local, prod "})] == ["local", "prod"]
    with pytest.raises(ConfigError, match=r"^PATTERNWATCH_ENVIRONMENTS: unknown environment 'qa'"):
        selected_environments({"PATTERNWATCH_ENVIRONMENTS": "dev,qa"})


def test_the_emulator_port_can_move_for_a_second_checkout(monkeypatch):
    monkeypatch.setenv("PATTERNWATCH_EMULATOR_PORT", "5077")
    assert load_environment("local").emulator.endpoint == "http://127.0.0.1:5077"
    assert load_environment("dev").emulator is None


@pytest.mark.parametrize("port", ["80", "70000", "５０５５", "x"])
def test_a_bad_emulator_port_names_the_variable(monkeypatch, port):
    monkeypatch.setenv("PATTERNWATCH_EMULATOR_PORT", port)
    with pytest.raises(ConfigError, match="PATTERNWATCH_EMULATOR_PORT"):
        load_environment("local")
