"""The REST API and its WAF, by property value."""
from __future__ import annotations

import json
import re

import pytest
from patternwatch_shared.models import MAX_BARS_PER_REQUEST
from patternwatch_shared.names.routes import APPROVAL_RESOURCE_PATH, PATTERNS_BY_SYMBOL_RESOURCE_PATH, PATTERNS_RESOURCE_PATH

from patternwatch_infra.api import APPROVAL_DECISION_SCHEMA, CANONICAL_FORM, DEFINITION_ATTRIBUTES, PATTERNS_REQUEST_SCHEMA, ROUTES
from patternwatch_infra.config import ENVIRONMENT_NAMES
from patternwatch_infra.testing import find_resource, logical_id, reference_to, resolve, resolve_name, resources
from patternwatch_infra.waf import MAX_PATTERNS_BODY_BYTES, decimal_at_most


def api_ref(doc: dict, attribute: str) -> str:
    return reference_to("aws_api_gateway_rest_api", logical_id(doc, "aws_api_gateway_rest_api", name="pattern-detection-api-dev"), attribute)


def method_for(doc: dict, http_method: str, path: str) -> dict:
    """Find a method by walking resource path parts from the root."""
    parent = api_ref(doc, "root_resource_id")
    for part in path.strip("/").split("/"):
        resource_id = logical_id(doc, "aws_api_gateway_resource", parent_id=parent, path_part=part)
        parent = reference_to("aws_api_gateway_resource", resource_id, "id")
    return find_resource(doc, "aws_api_gateway_method", resource_id=parent, http_method=http_method)


def alias_ref(doc: dict, function_name: str, attribute: str) -> str:
    fn_id = logical_id(doc, "aws_lambda_function", function_name=function_name)
    alias_id = logical_id(doc, "aws_lambda_alias", function_name=reference_to("aws_lambda_function", fn_id, "function_name"))
    return reference_to("aws_lambda_alias", alias_id, attribute)


def test_rest_api_is_regional_and_keyed_by_header(dev):
    api = find_resource(dev, "aws_api_gateway_rest_api", name="pattern-detection-api-dev")
    assert api["endpoint_configuration"] == {"types": ["REGIONAL"]}
    assert api["api_key_source"] == "HEADER"


@pytest.mark.parametrize(
    ("http_method", "path", "function", "parameters", "model", "key_required"),
    [
        ("POST", "/patterns", "PatternDetector-dev", None, "PatternsRequest", True),
        ("GET", "/patterns/{symbol}", "PatternDetector-dev",
         {"method.request.path.symbol": True, "method.request.querystring.limit": False, "method.request.querystring.nextToken": False}, None, True),
        # The approval page and its form: the link's token is the credential, people have no API key.
        ("GET", "/approve/{token}", "ApprovalProcessor-dev", {"method.request.path.token": True}, None, False),
        ("POST", "/approve/{token}", "ApprovalProcessor-dev", {"method.request.path.token": True}, "ApprovalDecision", False),
    ],
)
def test_routes_validate_input_and_proxy_to_the_live_alias_and_data_routes_need_a_key(dev, http_method, path, function, parameters, model, key_required):
    method = method_for(dev, http_method, path)
    assert method["api_key_required"] is key_required
    assert method["authorization"] == "NONE"
    assert method.get("request_parameters") == parameters
    validator = resolve(dev, method["request_validator_id"].replace(".id}", ".name}"))
    assert validator["validate_request_parameters"] is True
    assert validator["validate_request_body"] is (model is not None)
    if model:
        model_block = find_resource(dev, "aws_api_gateway_model", name=model)
        assert method["request_models"] == {"application/json": reference_to("aws_api_gateway_model", logical_id(dev, "aws_api_gateway_model", name=model), "name")}
        assert model_block["content_type"] == "application/json"
        assert json.loads(model_block["schema"])["$schema"] == "http://json-schema.org/draft-04/schema#"
    integration = find_resource(dev, "aws_api_gateway_integration", resource_id=method["resource_id"], http_method=reference_to(
        "aws_api_gateway_method", logical_id(dev, "aws_api_gateway_method", resource_id=method["resource_id"], http_method=http_method), "http_method"))
    assert integration["type"] == "AWS_PROXY"
    assert integration["integration_http_method"] == "POST"
    assert integration["uri"] == alias_ref(dev, function, "invoke_arn")


@pytest.mark.parametrize(
    ("http_method", "arn_path", "function"),
    [("POST", "/patterns", "PatternDetector-dev"), ("GET", "/patterns/*", "PatternDetector-dev"),
     ("GET", "/approve/*", "ApprovalProcessor-dev"), ("POST", "/approve/*", "ApprovalProcessor-dev")],
)
def test_lambda_permissions_are_scoped_to_the_route_on_this_api(dev, http_method, arn_path, function):
    permission = find_resource(dev, "aws_lambda_permission", source_arn=f"{api_ref(dev, 'execution_arn')}/*/{http_method}{arn_path}")
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["qualifier"] == alias_ref(dev, function, "name")


def test_terraform_gives_the_stage_its_first_snapshot_and_leaves_later_ones_to_the_release(dev):
    (deployment_id, deployment), = resources(dev, "aws_api_gateway_deployment").items()
    # Made once with the stage, never replaced when the definition changes: a deployment a stage serves cannot be
    # deleted, and the release, not Terraform, decides when the stage serves a new one.
    assert "triggers" not in deployment
    assert deployment["lifecycle"] == {"create_before_destroy": True, "ignore_changes": ["description", "triggers"]}
    assert deployment["description"] == f"definition {dev['output']['api_definition_hash']['value']}"
    assert set(deployment["depends_on"]) >= {f"aws_api_gateway_method.{m}" for m in resources(dev, "aws_api_gateway_method")}
    stage = find_resource(dev, "aws_api_gateway_stage", stage_name="v1")
    assert stage["deployment_id"] == reference_to("aws_api_gateway_deployment", deployment_id, "id")
    # What the stage serves and its canary are the release's: no canary is declared, and Terraform ignores both.
    assert "canary_settings" not in stage
    assert stage["lifecycle"] == {"ignore_changes": ["deployment_id", "canary_settings"]}


def test_the_definition_hash_covers_everything_a_deployment_snapshots(dev):
    """Terraform computes it from the resources as applied, so any change to any of them gives another hash."""
    expression = dev["output"]["api_definition_hash"]["value"]
    assert expression.startswith("${sha256(jsonencode([") and expression.endswith("]))}")
    for resource_type, attributes in DEFINITION_ATTRIBUTES.items():
        blocks = resources(dev, resource_type)
        assert blocks, resource_type
        for logical in blocks:
            for attribute in attributes:
                reference = f"{resource_type}.{logical}.{attribute}"
                form = CANONICAL_FORM.get(attribute, "{}").format(reference)
                assert f"{attribute} = {form}" in expression, (resource_type, logical, attribute)
    # Read back in another form, a value hashes the same: an unset map as {}, a schema with other spacing.
    assert "request_models = merge({}, aws_api_gateway_method." in expression and "schema = jsondecode(aws_api_gateway_model." in expression
    assert len(resources(dev, "aws_api_gateway_method")) == len(ROUTES)


def test_stage_traces_and_logs_as_json_including_canary_requests(dev):
    stage = find_resource(dev, "aws_api_gateway_stage", stage_name="v1")
    assert stage["xray_tracing_enabled"] is True
    log_group_id = logical_id(dev, "aws_cloudwatch_log_group", name="/aws/apigateway/pattern-detection-api-dev")
    assert stage["access_log_settings"]["destination_arn"] == reference_to("aws_cloudwatch_log_group", log_group_id, "arn")
    log_format = json.loads(stage["access_log_settings"]["format"])
    assert log_format["requestId"] == "$context.requestId" and log_format["status"] == "$context.status"
    assert log_format["isCanaryRequest"] == "$context.isCanaryRequest"
    (key_id,) = resources(dev, "aws_kms_key")
    assert resources(dev, "aws_cloudwatch_log_group")[log_group_id]["kms_key_id"] == reference_to("aws_kms_key", key_id, "arn")


def test_the_release_watches_the_api_alarms(dev):
    (name,) = dev["output"]["api_release_alarm_names"]["value"]
    alarm_id = logical_id(dev, "aws_cloudwatch_metric_alarm", alarm_name="PatternDetectionApi-5XXError-dev")
    assert name == reference_to("aws_cloudwatch_metric_alarm", alarm_id, "alarm_name")


def test_api_gateway_can_write_its_logs(dev):
    (account,) = resources(dev, "aws_api_gateway_account").values()
    assert resolve_name(dev, resolve(dev, account["cloudwatch_role_arn"])["name"]) == "ApiGatewayLogsRole-dev"


def test_every_method_is_throttled(dev):
    (settings,) = resources(dev, "aws_api_gateway_method_settings").values()
    assert settings["method_path"] == "*/*"
    assert settings["settings"]["throttling_rate_limit"] == 50
    assert settings["settings"]["throttling_burst_limit"] == 100
    assert settings["settings"]["metrics_enabled"] is True


def test_api_key_has_a_usage_plan_with_throttle_and_quota(dev):
    key = find_resource(dev, "aws_api_gateway_api_key", name="pattern-detection-api-key-dev")
    assert key["enabled"] is True
    plan = find_resource(dev, "aws_api_gateway_usage_plan", name="pattern-detection-usage-dev")
    assert plan["throttle_settings"] == {"rate_limit": 20, "burst_limit": 40}
    assert plan["quota_settings"] == {"limit": 50000, "period": "DAY"}
    assert plan["api_stages"][0]["api_id"] == api_ref(dev, "id")
    (plan_key,) = resources(dev, "aws_api_gateway_usage_plan_key").values()
    assert plan_key["key_type"] == "API_KEY"
    assert plan_key["key_id"] == reference_to("aws_api_gateway_api_key", logical_id(dev, "aws_api_gateway_api_key", name="pattern-detection-api-key-dev"), "id")
    assert dev["output"]["api_key_value"]["sensitive"] is True


def test_body_models_are_the_generated_schemas(dev):
    """Generated from the handlers' pydantic types (tests/infra/test_api_schemas.py checks they agree)."""
    for name, schema in (("PatternsRequest", PATTERNS_REQUEST_SCHEMA), ("ApprovalDecision", APPROVAL_DECISION_SCHEMA)):
        assert json.loads(find_resource(dev, "aws_api_gateway_model", name=name)["schema"]) == schema


def test_routes_are_the_shared_route_paths_served_by_their_functions():
    assert [(r.method, r.path, r.served_by.base_name, r.api_key_required) for r in ROUTES] == [
        ("POST", PATTERNS_RESOURCE_PATH, "PatternDetector", True),
        ("GET", PATTERNS_BY_SYMBOL_RESOURCE_PATH, "PatternDetector", True),
        ("GET", APPROVAL_RESOURCE_PATH, "ApprovalProcessor", False),
        ("POST", APPROVAL_RESOURCE_PATH, "ApprovalProcessor", False),
    ]
    assert [r.path_parameters for r in ROUTES] == [(), ("symbol",), ("token",), ("token",)]


# --- WAF ---------------------------------------------------------------------------------------

def waf_rules(doc: dict) -> dict[str, dict]:
    acl = find_resource(doc, "aws_wafv2_web_acl", name="PatternDetectionWAF-dev")
    return {r["name"]: r for r in acl["rule"]}


def test_waf_is_regional_with_six_rules_in_order_each_with_metrics(dev):
    acl = find_resource(dev, "aws_wafv2_web_acl", name="PatternDetectionWAF-dev")
    assert acl["scope"] == "REGIONAL"
    assert acl["default_action"] == {"allow": {}}
    rules = waf_rules(dev)
    assert list(rules) == [
        "rate-limit-per-ip", "geo-block", "aws-common-rule-set", "body-size-except-patterns", "patterns-body-size", "require-api-key-header",
    ]
    assert [r["priority"] for r in rules.values()] == [1, 2, 3, 4, 5, 6]
    for rule in rules.values():
        assert rule["visibility_config"]["cloudwatch_metrics_enabled"] is True
        # Sampled requests keep headers and paths unredacted (API keys, approval tokens): off everywhere.
        assert rule["visibility_config"]["sampled_requests_enabled"] is False
    assert acl["visibility_config"]["sampled_requests_enabled"] is False
    assert rules["rate-limit-per-ip"]["statement"]["rate_based_statement"]["limit"] == 2000
    assert rules["rate-limit-per-ip"]["action"] == {"block": {}}
    assert rules["geo-block"]["statement"] == {"geo_match_statement": {"country_codes": ["CN", "RU", "KP"]}}


def test_the_managed_body_limit_counts_and_our_rule_blocks_it_everywhere_but_post_patterns(dev):
    rules = waf_rules(dev)
    managed = rules["aws-common-rule-set"]
    assert managed["override_action"] == {"none": {}}
    assert managed["statement"]["managed_rule_group_statement"] == {
        "name": "AWSManagedRulesCommonRuleSet",
        "vendor_name": "AWS",
        "rule_action_override": [{"name": "SizeRestrictions_BODY", "action_to_use": {"count": {}}}],
    }
    label, not_patterns = rules["body-size-except-patterns"]["statement"]["and_statement"]["statement"]
    assert label == {"label_match_statement": {"scope": "LABEL", "key": "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"}}
    method, path = not_patterns["not_statement"]["statement"][0]["and_statement"]["statement"]
    assert method["byte_match_statement"]["search_string"] == "POST"
    assert method["byte_match_statement"]["positional_constraint"] == "EXACTLY"
    assert method["byte_match_statement"]["field_to_match"] == {"method": {}}
    assert path["regex_match_statement"]["regex_string"] == "^/v1/patterns$"
    assert path["regex_match_statement"]["field_to_match"] == {"uri_path": {}}
    assert rules["body-size-except-patterns"]["action"] == {"block": {}}


def test_post_patterns_is_limited_on_its_content_length(dev):
    rule = waf_rules(dev)["patterns-body-size"]
    assert rule["action"] == {"block": {}}
    upload, too_long = rule["statement"]["and_statement"]["statement"]
    assert upload == waf_rules(dev)["body-size-except-patterns"]["statement"]["and_statement"]["statement"][1]["not_statement"]["statement"][0]
    (length,) = too_long["not_statement"]["statement"]
    assert length["regex_match_statement"]["field_to_match"] == {"single_header": {"name": "content-length"}}
    limit = re.compile(length["regex_match_statement"]["regex_string"])
    assert MAX_PATTERNS_BODY_BYTES == 2 * 1024 * 1024
    for allowed in (0, 1, 8_193, 475_026, 1_360_551, MAX_PATTERNS_BODY_BYTES):
        assert limit.fullmatch(str(allowed)), allowed
    for refused in (MAX_PATTERNS_BODY_BYTES + 1, 10_000_000, 99_999_999_999, "", "-1", "01", "1e6", " 5"):
        assert not limit.fullmatch(str(refused)), refused


def test_the_largest_documented_patterns_request_fits_the_limit():
    bars = [{"timestamp": "2026-01-01T00:00:00+00:00", "open": 12345.678901234567, "high": 12469.135802469135,
             "low": 12191.358024691358, "close": 12345.678901234999, "volume": 987654321012.345} for _ in range(MAX_BARS_PER_REQUEST)]
    body = {"symbol": "ABCDEFGHIJKL", "bars": bars, "patterns": ["head-and-shoulders"] * 32, "window": 500}
    assert len(json.dumps(body, indent=4).encode()) <= MAX_PATTERNS_BODY_BYTES


@pytest.mark.parametrize("limit", [0, 5, 9, 10, 99, 100, 101, 999, 1000, 2_097_152, 1_000_000, 1_999_999])
def test_decimal_at_most_matches_exactly_zero_to_the_limit(limit):
    pattern = re.compile(decimal_at_most(limit))
    for value in {*range(0, min(limit, 2000) + 50), limit - 1, limit, limit + 1, limit * 10, 10 ** len(str(limit))}:
        if value >= 0:
            assert bool(pattern.fullmatch(str(value))) is (value <= limit), (limit, value)
    assert not pattern.fullmatch("0" + str(max(limit, 1)))
    with pytest.raises(ValueError):
        decimal_at_most(-1)


def test_the_api_key_rule_guards_every_route_but_the_approval_links(dev):
    rule = waf_rules(dev)["require-api-key-header"]
    assert rule["action"] == {"block": {}}
    not_approval, not_key = rule["statement"]["and_statement"]["statement"]
    (approval,) = not_approval["not_statement"]["statement"]
    link = re.compile(approval["regex_match_statement"]["regex_string"])
    assert approval["regex_match_statement"]["field_to_match"] == {"uri_path": {}}
    assert link.fullmatch("/v1/approve/" + "0a" * 16)
    for guarded in ("/v1/patterns", "/v1/patterns/AAPL", "/v1/approve/" + "0a" * 15, "/v1/approve/" + "0A" * 16,
                    "/v1/approve/" + "0a" * 16 + "/x", "/v1/patterns/approve/" + "0a" * 16, "/v2/approve/" + "0a" * 16):
        assert not link.fullmatch(guarded), guarded
    (size,) = not_key["not_statement"]["statement"]
    size = size["size_constraint_statement"]
    assert (size["comparison_operator"], size["size"], size["field_to_match"]) == ("GE", 20, {"single_header": {"name": "x-api-key"}})


def test_waf_logs_to_its_bucket_with_the_key_and_the_path_redacted_and_protects_the_stage(dev):
    acl_arn = reference_to("aws_wafv2_web_acl", logical_id(dev, "aws_wafv2_web_acl", name="PatternDetectionWAF-dev"), "arn")
    (logging,) = resources(dev, "aws_wafv2_web_acl_logging_configuration").values()
    bucket_id = logical_id(dev, "aws_s3_bucket", bucket="aws-waf-logs-patternwatch-111111111111-dev")
    assert logging["resource_arn"] == acl_arn
    assert logging["log_destination_configs"] == [reference_to("aws_s3_bucket", bucket_id, "arn")]
    assert logging["redacted_fields"] == [{"single_header": {"name": "x-api-key"}}, {"uri_path": {}}]
    (association,) = resources(dev, "aws_wafv2_web_acl_association").values()
    assert association["web_acl_arn"] == acl_arn
    stage_id = logical_id(dev, "aws_api_gateway_stage", stage_name="v1")
    assert association["resource_arn"] == reference_to("aws_api_gateway_stage", stage_id, "arn")


@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_no_log_or_metric_the_stack_configures_can_hold_a_token_or_a_key(stacks, env):
    """Approval tokens travel in the path, API keys in x-api-key: nothing configured here records either."""
    doc = stacks[env]
    (stage,) = resources(doc, "aws_api_gateway_stage").values()
    variables = set(re.findall(r"\$context\.([A-Za-z0-9_.]+)", stage["access_log_settings"]["format"]))
    assert "resourcePath" in variables  # /approve/{token}: the template, never the token
    assert not variables & {"path", "identity.apiKey", "requestOverride.path", "authorizer.principalId"}, variables
    (settings,) = resources(doc, "aws_api_gateway_method_settings").values()
    # Data tracing would log full requests (headers, path) to the execution log; errors only, without them.
    assert settings["settings"]["data_trace_enabled"] is False and settings["settings"]["logging_level"] == "ERROR"
    (logging,) = resources(doc, "aws_wafv2_web_acl_logging_configuration").values()
    assert {"single_header": {"name": "x-api-key"}} in logging["redacted_fields"] and {"uri_path": {}} in logging["redacted_fields"]
    for function in resources(doc, "aws_lambda_function").values():
        environment = function["environment"]["variables"]
        # Powertools would log whole events (path and headers) with these switched on.
        assert environment.get("POWERTOOLS_LOGGER_LOG_EVENT", "false") == "false"
        assert environment.get("POWERTOOLS_EVENT_HANDLER_DEBUG", "false") == "false"
    for body in [d["dashboard_body"] for d in resources(doc, "aws_cloudwatch_dashboard").values()]:
        assert "approve/" not in body and "x-api-key" not in body
