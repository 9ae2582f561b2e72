"""The function specs are what the infrastructure deploys: check them against the code they describe."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from patternwatch_shared.config import ConfigurationError, EnvReader
from patternwatch_shared.names import functions
from patternwatch_shared.names.functions import (
    ENV_ALERT_CONFIDENCE_THRESHOLD, ENV_ALERT_QUEUE_URL, ENV_THRESHOLD_CHECK_MIN_BREACHES, ENV_THRESHOLD_LOOKBACK_MINUTES,
    PLATFORM_FUNCTIONS, POWER_TUNING_FUNCTIONS, LambdaFunctionSpec,
)
from patternwatch_shared.names.routes import path_parameters, powertools_route

LAMBDA_SRC = Path(__file__).resolve().parents[3] / "lambda_src"
ALL_ENV_KEYS = {value for key, value in vars(functions).items() if key.startswith("ENV_")}
ALL_SPECS = (*PLATFORM_FUNCTIONS, *POWER_TUNING_FUNCTIONS)


def test_there_is_one_spec_per_function_folder():
    folders = sorted(path.parent.name for path in LAMBDA_SRC.glob("*/handler.py"))
    assert sorted({spec.package for spec in ALL_SPECS}) == folders
    assert len({spec.construct_id for spec in ALL_SPECS}) == len({spec.base_name for spec in ALL_SPECS}) == len(ALL_SPECS)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda spec: spec.base_name)
def test_handler_path_resolves_to_a_callable(spec):
    module_name, function_name = spec.handler.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module_name), function_name))


@pytest.mark.parametrize("spec", PLATFORM_FUNCTIONS, ids=lambda spec: spec.base_name)
def test_platform_handlers_run_under_their_own_spec(spec):
    module = importlib.import_module(spec.handler.rsplit(".", 1)[0])
    assert module.SPEC is spec
    assert module.logger.service == spec.service_name
    # One package per platform function: the construct id, the folder and the stack outputs agree.
    assert spec.construct_id == spec.package


@pytest.mark.parametrize("spec", PLATFORM_FUNCTIONS, ids=lambda spec: spec.base_name)
def test_every_env_key_a_handler_reads_is_declared_by_its_spec(spec):
    source = (LAMBDA_SRC / spec.package / "handler.py").read_text()
    read = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name) and node.id.startswith("ENV_")}
    assert read, f"{spec.package}/handler.py reads no setting through the spec's keys"
    assert {getattr(functions, key) for key in read} <= {*spec.env_keys, *spec.optional_env_keys}


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda spec: spec.base_name)
def test_declared_env_keys_are_names_constants(spec):
    assert set(spec.env_keys) <= ALL_ENV_KEYS
    assert set(spec.optional_env_keys) <= ALL_ENV_KEYS
    assert spec.powertools_environment() == {
        "POWERTOOLS_SERVICE_NAME": spec.service_name,
        "POWERTOOLS_METRICS_NAMESPACE": "StockPatternDetection",
    }


def test_every_spelling_derives_from_the_base_name_package_and_entry_point():
    spec = LambdaFunctionSpec("KinesisConsumer", "kinesis_consumer")
    assert (spec.construct_id, spec.service_name, spec.handler) == (
        "kinesis_consumer", "kinesis-consumer", "kinesis_consumer.handler.lambda_handler"
    )
    tuner = LambdaFunctionSpec("PowerTuningExecutor", "power_tuning", "execute", construct_id="tuner_executor")
    assert (tuner.construct_id, tuner.service_name, tuner.handler) == (
        "tuner_executor", "power-tuning-executor", "power_tuning.handler.execute"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"base_name": "kinesis_consumer", "package": "kinesis_consumer"}, "must be CamelCase"),
        ({"base_name": "KinesisConsumer", "package": "kinesis-consumer"}, "package 'kinesis-consumer'"),
        ({"base_name": "KinesisConsumer", "package": "kinesis_consumer", "entry_point": "handle.it"}, "entry point"),
        ({"base_name": "Consumer", "package": "c", "env_keys": ("A",), "optional_env_keys": ("A",)}, "both required and optional"),
    ],
)
def test_a_malformed_spec_is_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        LambdaFunctionSpec(**arguments)


def test_env_reader_refuses_undeclared_keys():
    spec = functions.APPROVAL_PROCESSOR
    reader = EnvReader(spec, environ={ENV_ALERT_QUEUE_URL: "x"})
    with pytest.raises(ConfigurationError, match="does not declare"):
        reader.require(ENV_ALERT_QUEUE_URL)


def test_env_reader_names_missing_and_malformed_settings():
    spec = functions.THRESHOLD_CHECKER
    with pytest.raises(ConfigurationError, match="THRESHOLD_CHECK_MIN_BREACHES is not set"):
        EnvReader(spec, environ={}).require(ENV_THRESHOLD_CHECK_MIN_BREACHES)
    with pytest.raises(ConfigurationError, match="not a number"):
        EnvReader(spec, environ={ENV_ALERT_CONFIDENCE_THRESHOLD: "lots"}).require_float(ENV_ALERT_CONFIDENCE_THRESHOLD)
    with pytest.raises(ConfigurationError, match="not finite"):
        EnvReader(spec, environ={ENV_ALERT_CONFIDENCE_THRESHOLD: "nan"}).require_float(ENV_ALERT_CONFIDENCE_THRESHOLD)
    with pytest.raises(ConfigurationError, match="above"):
        EnvReader(spec, environ={ENV_ALERT_CONFIDENCE_THRESHOLD: "1.5"}).require_float(ENV_ALERT_CONFIDENCE_THRESHOLD, maximum=1)
    with pytest.raises(ConfigurationError, match="not a whole number of at least 1"):
        EnvReader(spec, environ={ENV_THRESHOLD_CHECK_MIN_BREACHES: "-3"}).require_count(ENV_THRESHOLD_CHECK_MIN_BREACHES)
    assert EnvReader(spec, environ={ENV_THRESHOLD_CHECK_MIN_BREACHES: " 6 "}).require_count(ENV_THRESHOLD_CHECK_MIN_BREACHES) == 6
    assert EnvReader(spec, environ={}).optional_float(ENV_THRESHOLD_LOOKBACK_MINUTES, 5.0) == 5.0


def test_routes_convert_from_api_gateway_to_powertools_syntax():
    assert powertools_route("/patterns/{symbol}") == "/patterns/<symbol>"
    assert powertools_route("/a/{b}/c/{d}") == "/a/<b>/c/<d>"
    assert powertools_route("/patterns") == "/patterns"
    assert path_parameters("/a/{b}/c/{d}") == ("b", "d")
    assert path_parameters("/patterns") == ()


def test_every_function_that_decides_an_alert_reads_the_one_threshold():
    """The consumer (events), the detector (decide) and the threshold checker compare with the same setting."""
    deciding = {functions.KINESIS_CONSUMER, functions.PATTERN_DETECTOR, functions.THRESHOLD_CHECKER}
    for spec in PLATFORM_FUNCTIONS:
        assert (ENV_ALERT_CONFIDENCE_THRESHOLD in spec.env_keys) == (spec in deciding), spec.base_name
    # The consumer emits events and never queues alerts itself.
    assert ENV_ALERT_QUEUE_URL not in functions.KINESIS_CONSUMER.env_keys
