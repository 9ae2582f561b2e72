"""The API's web ACL: what it blocks, and what it keeps out of its logs.

Rules, in the order WAF evaluates them:
1. `rate-limit-per-ip`: more than `waf.rate_limit_per_5_minutes` requests from one IP in 5 minutes;
2. `geo-block`: the configured countries;
3. `aws-common-rule-set`: AWSManagedRulesCommonRuleSet, with `SizeRestrictions_BODY` (bodies over 8 KB)
   set to count: it only labels the request, and rule 4 decides;
4. `body-size-except-patterns`: blocks the label of rule 3 everywhere except `POST /patterns`, so every
   other route keeps the managed 8 KB limit;
5. `patterns-body-size`: `POST /patterns` documents up to 5,000 bars (about 0.5-1.4 MB of JSON,
   however it is spaced), so its limit is `MAX_PATTERNS_BODY_BYTES` (2 MiB). WAF cannot measure that on
   the body: for API Gateway it forwards only the first 16 KB of a body for inspection (64 KB at most,
   at extra cost). The limit is measured on the Content-Length header instead, whose value a regular
   expression reads as a number (`decimal_at_most`); a request without one (chunked) is blocked too.
   API Gateway refuses bodies over 10 MB on its own and passes the real length to the function, which
   parses at most 5,000 bars;
6. `require-api-key-header`: a request without an `x-api-key` header of at least 20 characters, except
   on the approval links: there the link's token, bound to its approver, is the credential, and a person
   clicking a link in an e-mail has no API key.

Logging redacts the `x-api-key` header and the URI path (which holds an approval token) in every log
record WAF writes, rule match details included. Sampled requests are off: WAF keeps them unredacted
(headers and path, so keys and tokens) for anyone allowed `wafv2:GetSampledRequests`; the redacted logs
and the per-rule metrics serve instead.
"""
from __future__ import annotations

import re

from cdktf_cdktf_provider_aws.wafv2_web_acl import (
    Wafv2WebAcl,
    Wafv2WebAclDefaultAction,
    Wafv2WebAclDefaultActionAllow,
    Wafv2WebAclRule,
    Wafv2WebAclRuleAction,
    Wafv2WebAclRuleActionBlock,
    Wafv2WebAclRuleOverrideAction,
    Wafv2WebAclRuleOverrideActionNone,
    Wafv2WebAclRuleVisibilityConfig,
    Wafv2WebAclVisibilityConfig,
)
from cdktf_cdktf_provider_aws.wafv2_web_acl_logging_configuration import (
    Wafv2WebAclLoggingConfiguration,
    Wafv2WebAclLoggingConfigurationRedactedFields,
    Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader,
    Wafv2WebAclLoggingConfigurationRedactedFieldsUriPath,
)
from constructs import Construct
from patternwatch_shared.names.messages import APPROVAL_TOKEN_BYTES
from patternwatch_shared.names.routes import APPROVAL_RESOURCE_PATH, PATTERNS_RESOURCE_PATH

from .config import EnvironmentConfig
from .scan_skips import skip_check

API_KEY_HEADER = "x-api-key"
# API keys that API Gateway generates are 40 characters; anything under 20 is not one of ours.
MIN_API_KEY_LENGTH = 20
# POST /patterns: 5,000 bars (models.MAX_BARS_PER_REQUEST) are at most ~1.4 MB of JSON even pretty-printed
# with 17-digit prices; 2 MiB leaves room, and anything larger is not a request we document.
MAX_PATTERNS_BODY_BYTES = 2 * 1024 * 1024
MANAGED_BODY_SIZE_RULE = "SizeRestrictions_BODY"
MANAGED_BODY_SIZE_LABEL = "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"
NO_TRANSFORMATION = [{"priority": 0, "type": "NONE"}]


def decimal_at_most(limit: int) -> str:
    """A regular expression that matches exactly the decimal integers 0..limit (no sign, no leading zeros)."""
    if limit < 0:
        raise ValueError("limit must not be negative")
    digits = str(limit)
    length = len(digits)
    alternatives = []
    if length > 1:  # every shorter number
        alternatives.append("[0-9]")
    if length > 2:
        alternatives.append(f"[1-9][0-9]{{1,{length - 2}}}")
    # As long as the limit: its first i digits, then a smaller digit, then any digits.
    for i, digit in enumerate(int(d) for d in digits):
        lowest = 1 if i == 0 and length > 1 else 0
        if digit > lowest:
            smaller = str(lowest) if digit - 1 == lowest else f"[{lowest}-{digit - 1}]"
            alternatives.append(digits[:i] + smaller + _any_digits(length - i - 1))
    alternatives.append(digits)
    return "^(?:" + "|".join(alternatives) + ")$"


def _any_digits(count: int) -> str:
    return "" if count == 0 else "[0-9]" if count == 1 else f"[0-9]{{{count}}}"


def stage_path_pattern(stage: str, resource_path: str, parameters: dict[str, str]) -> str:
    """The request path WAF sees for an API route (stage prefix included), as an anchored regular expression."""
    pattern = re.escape(f"/{stage}{resource_path}")
    for name, value_pattern in parameters.items():
        pattern = pattern.replace(re.escape(f"{{{name}}}"), value_pattern)
    return f"^{pattern}$"


def approval_link_path(stage: str) -> str:
    return stage_path_pattern(stage, APPROVAL_RESOURCE_PATH, {"token": f"[0-9a-f]{{{APPROVAL_TOKEN_BYTES * 2}}}"})


# --- statements (plain data: the Terraform JSON of a WAF rule statement) ---------------------------

def uri_matches(pattern: str) -> dict:
    return {"regex_match_statement": {"regex_string": pattern, "field_to_match": {"uri_path": {}}, "text_transformation": NO_TRANSFORMATION}}


def header_matches(header: str, pattern: str) -> dict:
    return {
        "regex_match_statement": {
            "regex_string": pattern,
            "field_to_match": {"single_header": {"name": header}},
            "text_transformation": NO_TRANSFORMATION,
        }
    }


def method_is(method: str) -> dict:
    return {
        "byte_match_statement": {
            "positional_constraint": "EXACTLY",
            "search_string": method,
            "field_to_match": {"method": {}},
            "text_transformation": NO_TRANSFORMATION,
        }
    }


def request_to(method: str, stage: str, resource_path: str) -> dict:
    return all_of(method_is(method), uri_matches(stage_path_pattern(stage, resource_path, {})))


def all_of(*statements: dict) -> dict:
    return {"and_statement": {"statement": list(statements)}}


def negated(statement: dict) -> dict:
    return {"not_statement": {"statement": [statement]}}


def has_label(key: str) -> dict:
    return {"label_match_statement": {"scope": "LABEL", "key": key}}


def api_key_header_present() -> dict:
    """A header at least MIN_API_KEY_LENGTH long; "not" of it matches a short key and a missing one alike."""
    return {
        "size_constraint_statement": {
            "comparison_operator": "GE",
            "size": MIN_API_KEY_LENGTH,
            "field_to_match": {"single_header": {"name": API_KEY_HEADER}},
            "text_transformation": NO_TRANSFORMATION,
        }
    }


def rules(config: EnvironmentConfig, stage: str) -> list[Wafv2WebAclRule]:
    block = Wafv2WebAclRuleAction(block=Wafv2WebAclRuleActionBlock())
    patterns_upload = request_to("POST", stage, PATTERNS_RESOURCE_PATH)

    def rule(priority: int, name: str, metric: str, statement: dict, *, override_action=None) -> Wafv2WebAclRule:
        """Blocks what `statement` matches (a managed rule group keeps its own actions: `override_action`)."""
        return Wafv2WebAclRule(
            name=name,
            priority=priority,
            action=None if override_action else block,
            override_action=override_action,
            statement=statement,
            visibility_config=Wafv2WebAclRuleVisibilityConfig(
                cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=False
            ),
        )

    return [
        rule(
            1,
            "rate-limit-per-ip",
            "RateLimitPerIp",
            {"rate_based_statement": {"limit": config.waf.rate_limit_per_5_minutes, "aggregate_key_type": "IP", "evaluation_window_sec": 300}},
        ),
        rule(2, "geo-block", "GeoBlock", {"geo_match_statement": {"country_codes": list(config.waf.geo_block_countries)}}),
        rule(
            3,
            "aws-common-rule-set",
            "AWSCommonRuleSet",
            {
                "managed_rule_group_statement": {
                    "name": "AWSManagedRulesCommonRuleSet",
                    "vendor_name": "AWS",
                    "rule_action_override": [{"name": MANAGED_BODY_SIZE_RULE, "action_to_use": {"count": {}}}],
                }
            },
            override_action=Wafv2WebAclRuleOverrideAction(none=Wafv2WebAclRuleOverrideActionNone()),
        ),
        rule(4, "body-size-except-patterns", "BodySizeExceptPatterns", all_of(has_label(MANAGED_BODY_SIZE_LABEL), negated(patterns_upload))),
        rule(
            5,
            "patterns-body-size",
            "PatternsBodySize",
            all_of(patterns_upload, negated(header_matches("content-length", decimal_at_most(MAX_PATTERNS_BODY_BYTES)))),
        ),
        rule(
            6,
            "require-api-key-header",
            "RequireApiKeyHeader",
            all_of(negated(uri_matches(approval_link_path(stage))), negated(api_key_header_present())),
        ),
    ]


def web_acl(scope: Construct, *, name: str, config: EnvironmentConfig, stage: str) -> Wafv2WebAcl:
    """The web ACL, created on `scope` (so its Terraform address is the API layer's)."""
    acl = Wafv2WebAcl(
        scope,
        "web_acl",
        name=name,
        description="Rate limit, geo block, AWS common rules, body sizes and API-key header check for the PatternWatch API",
        scope="REGIONAL",
        default_action=Wafv2WebAclDefaultAction(allow=Wafv2WebAclDefaultActionAllow()),
        visibility_config=Wafv2WebAclVisibilityConfig(cloudwatch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=False),
        rule=rules(config, stage),
    )
    skip_check(acl, "CKV_AWS_192", "the agreed rules; the handlers are Python, so the Log4j rule set protects nothing here")
    return acl


def web_acl_logging(scope: Construct, *, acl: Wafv2WebAcl, bucket_arn: str) -> Wafv2WebAclLoggingConfiguration:
    """WAF's logs in its bucket, with the API key and the path (approval tokens) redacted.

    WAF writes to AWSLogs/<account>/WAFLogs/<region>/<acl>/... in the bucket; the S3 destination takes the
    bucket ARN only (no custom prefix), which is why the bucket is dedicated to WAF logs.
    """
    return Wafv2WebAclLoggingConfiguration(
        scope,
        "web_acl_logging",
        resource_arn=acl.arn,
        log_destination_configs=[bucket_arn],
        redacted_fields=[
            Wafv2WebAclLoggingConfigurationRedactedFields(
                single_header=Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader(name=API_KEY_HEADER)
            ),
            Wafv2WebAclLoggingConfigurationRedactedFields(uri_path=Wafv2WebAclLoggingConfigurationRedactedFieldsUriPath()),
        ],
    )
