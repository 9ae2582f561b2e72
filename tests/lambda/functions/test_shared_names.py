"""names.LAMBDA_FUNCTIONS is what the infrastructure deploys: check it against the code."""
from __future__ import annotations

import importlib

import pytest

from patternwatch_shared import names
from patternwatch_shared.config import ConfigurationError, EnvReader

ALL_ENV_KEYS = {value for key, value in vars(names).items() if key.startswith("ENV_")}


def test_there_is_one_spec_per_function_folder():
    assert sorted(spec.package for spec in names.LAMBDA_FUNCTIONS.values()) == [
        "alert_processor",
        "approval_processor",
        "kinesis_consumer",
        "pattern_detector",
        "threshold_checker",
    ]


@pytest.mark.parametrize("spec", names.LAMBDA_FUNCTIONS.values(), ids=lambda spec: spec.name)
def test_handler_path_resolves_to_lambda_handler(spec):
    module_name, function_name = spec.handler.rsplit(".", 1)
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function_name))
    assert module.SPEC is spec
    assert module.logger.service == spec.service_name


@pytest.mark.parametrize("spec", names.LAMBDA_FUNCTIONS.values(), ids=lambda spec: spec.name)
def test_declared_env_keys_are_names_constants(spec):
    assert set(spec.env_keys) <= ALL_ENV_KEYS
    assert set(spec.optional_env_keys) <= ALL_ENV_KEYS
    assert not set(spec.env_keys) & set(spec.optional_env_keys)
    assert spec.powertools_environment() == {
        "POWERTOOLS_SERVICE_NAME": spec.service_name,
        "POWERTOOLS_METRICS_NAMESPACE": "StockPatternDetection",
    }


def test_original_names_are_unchanged():
    assert names.METRICS_NAMESPACE == "StockPatternDetection"
    assert names.TABLE_PARTITION_KEY == "PK" and names.TABLE_SORT_KEY == "SK"
    assert names.RECENT_PATTERNS_INDEX == "RecentPatternsIndex"
    assert (names.APPROVAL_PARTITION_KEY, names.APPROVAL_TTL_ATTRIBUTE) == ("tokenHash", "expiresAt")
    assert names.PATTERN_FAMILIES == ("head-and-shoulders", "double-top", "ascending-triangle")


def test_env_reader_refuses_undeclared_keys():
    spec = names.LAMBDA_FUNCTIONS[names.SERVICE_APPROVAL_PROCESSOR]
    reader = EnvReader(spec, environ={names.ENV_ALERT_QUEUE_URL: "x"})
    with pytest.raises(ConfigurationError, match="does not declare"):
        reader.require(names.ENV_ALERT_QUEUE_URL)


def test_env_reader_names_missing_and_malformed_settings():
    spec = names.LAMBDA_FUNCTIONS[names.SERVICE_THRESHOLD_CHECKER]
    with pytest.raises(ConfigurationError, match="ERROR_THRESHOLD is not set"):
        EnvReader(spec, environ={}).require(names.ENV_ERROR_THRESHOLD)
    with pytest.raises(ConfigurationError, match="not a number"):
        EnvReader(spec, environ={names.ENV_ERROR_THRESHOLD: "lots"}).require_float(names.ENV_ERROR_THRESHOLD)
    with pytest.raises(ConfigurationError, match="not finite"):
        EnvReader(spec, environ={names.ENV_ERROR_THRESHOLD: "nan"}).require_float(names.ENV_ERROR_THRESHOLD)
    with pytest.raises(ConfigurationError, match="above"):
        EnvReader(spec, environ={names.ENV_PATTERN_CONFIDENCE_THRESHOLD: "1.5"}).require_float(
            names.ENV_PATTERN_CONFIDENCE_THRESHOLD, maximum=1
        )
    lookback = EnvReader(spec, environ={}).optional_float(names.ENV_THRESHOLD_LOOKBACK_MINUTES, 5.0)
    assert lookback == 5.0


def test_api_paths_agree_between_powertools_and_api_gateway_syntax():
    def as_api_gateway(route: str) -> str:
        return route.replace("<", "{").replace(">", "}")

    assert as_api_gateway(names.APPROVAL_ROUTE) == names.APPROVAL_RESOURCE_PATH == "/approve/{token}"
    assert as_api_gateway(names.PATTERNS_BY_SYMBOL_ROUTE) == names.PATTERNS_BY_SYMBOL_RESOURCE_PATH == "/patterns/{symbol}"
    assert names.PATTERNS_ROUTE == "/patterns"
