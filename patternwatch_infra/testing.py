"""Test helpers for the synthesized Terraform JSON: a public part of the package, for users' own synth tests.

Our tests use them, and so can yours: they ship with patternwatch_infra, depend only on cdktf and the AWS
provider bindings (never on tooling or tests/), and their names and signatures are kept stable.

    from patternwatch_infra.testing import find_resource, synth_scope

    document = synth_scope(lambda stack: MyConstruct(stack, "mine", ...))
    queue = find_resource(document, "aws_sqs_queue", name="MyQueue-dev")

Names in a stack are Terraform expressions (`TradingPatterns-${local.name_suffix}`, see naming.py);
`resolve_name` evaluates one for a workspace, and `find_resource`/`logical_id` match on the name as the
default workspace (or the `workspace` you pass) would see it, so `name="TradingPatterns-dev"` finds it.

`synth_scope` has the meaning of cdktf's `Testing.synth_scope`, which Python cannot call because jsii
cannot pass a Python function across to JavaScript: build a scope, run a callable on it, and return the
synthesized Terraform JSON as a dict.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from cdktf import Testing, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from .naming import NAME_SUFFIX_LOCAL, NAME_SUFFIX_REFERENCE, name_suffix_expression
from .workspaces import DEFAULT_WORKSPACE, name_suffix

TEST_REGION = "us-east-1"
_REFERENCE = re.compile(r"^\$\{(data\.)?([a-z0-9_]+)\.([A-Za-z0-9_]+)\.([a-z_]+)\}$")
_ANY_REFERENCE = re.compile(r"\$\{([a-z0-9_]+)\.([A-Za-z0-9_]+)\.([a-z_]+)\}")
# The one function names use (naming.py, `underscored_prefix`), applied to a literal once the suffix is resolved.
_REPLACE_CALL = re.compile(r'^\$\{replace\("([^"$]*)", "([^"]*)", "([^"]*)"\)\}$')
_LOCAL_EXPRESSION = re.compile(r'^\$\{terraform\.workspace == "default" \? "([a-z0-9-]+)" :')


def synth_scope(build: Callable[[Construct], Any], *, region: str = TEST_REGION) -> dict:
    """Synthesize whatever `build` adds to a fresh stack (which already has an AWS provider)."""
    stack = TerraformStack(Testing.app(), "test")
    AwsProvider(stack, "aws", region=region)
    build(stack)
    return json.loads(Testing.synth(stack))


def resources(document: dict, resource_type: str) -> dict[str, dict]:
    """All resources of one type, keyed by logical id."""
    return document.get("resource", {}).get(resource_type, {})


def environment_suffix(document: dict) -> str:
    """The environment suffix the stack's `name_suffix` local is built from (`dev`)."""
    expression = document.get("locals", {}).get(NAME_SUFFIX_LOCAL)
    match = _LOCAL_EXPRESSION.match(expression or "")
    if not match or expression != name_suffix_expression(match.group(1)):
        raise AssertionError(f"the document has no name_suffix local made by naming.py (found {expression!r})")
    return match.group(1)


def resolve_name(document: dict, value: Any, workspace: str = DEFAULT_WORKSPACE) -> Any:
    """`value` as Terraform would see it in `workspace`: `${local.name_suffix}` evaluated (`dev`, or
    `dev-<workspace>`), and references to another resource's literal attribute followed (an access log
    group named after its API's `name`). Lists and dicts are resolved item by item; other references
    (ids, ARNs) stay as they are.
    """
    if isinstance(value, list):
        return [resolve_name(document, item, workspace) for item in value]
    if isinstance(value, dict):
        return {key: resolve_name(document, item, workspace) for key, item in value.items()}
    if not isinstance(value, str) or "${" not in value:
        return value
    if NAME_SUFFIX_REFERENCE in value:
        value = value.replace(NAME_SUFFIX_REFERENCE, name_suffix(environment_suffix(document), workspace))
        call = _REPLACE_CALL.match(value)
        if call:
            return call.group(1).replace(call.group(2), call.group(3))

    def follow(match: re.Match) -> str:
        block = resources(document, match.group(1)).get(match.group(2), {})
        attribute = block.get(match.group(3))
        return resolve_name(document, attribute, workspace) if isinstance(attribute, str) else match.group(0)

    return _ANY_REFERENCE.sub(follow, value)


def _matches(document: dict, block: dict, attributes: dict[str, Any], workspace: str) -> bool:
    """Each attribute equals the wanted value as written, or once its names are resolved for `workspace`."""
    return all(block.get(k) == v or resolve_name(document, block.get(k), workspace) == v for k, v in attributes.items())


def find_resource(document: dict, resource_type: str, *, workspace: str = DEFAULT_WORKSPACE, **attributes: Any) -> dict:
    """The one resource of `resource_type` whose attributes equal `attributes` (names resolved for
    `workspace`, see `resolve_name`); fails loudly otherwise."""
    matches = [r for r in resources(document, resource_type).values() if _matches(document, r, attributes, workspace)]
    if len(matches) != 1:
        raise AssertionError(f"expected one {resource_type} with {attributes}, found {len(matches)}")
    return matches[0]


def resolve(document: dict, reference: str) -> dict:
    """Follow a `${type.id.attr}` or `${data.type.id.attr}` reference to the block it names."""
    match = _REFERENCE.match(reference)
    if not match:
        raise AssertionError(f"{reference!r} is not a plain reference")
    is_data, block_type, logical_id, _attribute = match.groups()
    section = document["data" if is_data else "resource"]
    return section[block_type][logical_id]


def reference_to(resource_type: str, logical_id: str, attribute: str) -> str:
    return f"${{{resource_type}.{logical_id}.{attribute}}}"


def logical_id(document: dict, resource_type: str, *, workspace: str = DEFAULT_WORKSPACE, **attributes: Any) -> str:
    matches = [k for k, r in resources(document, resource_type).items() if _matches(document, r, attributes, workspace)]
    if len(matches) != 1:
        raise AssertionError(f"expected one {resource_type} with {attributes}, found {len(matches)}")
    return matches[0]


def policy_statements(document: dict, policy_reference: str) -> list[dict]:
    """The statements of the `aws_iam_policy_document` a `policy = ${data...json}` attribute points at."""
    return resolve(document, policy_reference)["statement"]


def all_resources(document: dict) -> Iterator[tuple[str, str, dict]]:
    for resource_type, blocks in document.get("resource", {}).items():
        for logical, block in blocks.items():
            yield resource_type, logical, block


def role_statements(document: dict, role_name: str) -> dict[str, dict]:
    """The statements of the one inline policy of the role named `role_name` (as `find_resource` matches names), by Sid."""
    role_id = logical_id(document, "aws_iam_role", name=role_name)
    (policy,) = [p for p in resources(document, "aws_iam_role_policy").values() if p["role"] == reference_to("aws_iam_role", role_id, "id")]
    return {s["sid"]: s for s in policy_statements(document, policy["policy"])}


def alias_arn_of(document: dict, function_name: str) -> str:
    """The `${aws_lambda_alias.<id>.arn}` reference of the alias of the function named `function_name`."""
    function_id = logical_id(document, "aws_lambda_function", function_name=function_name)
    alias_id = logical_id(document, "aws_lambda_alias", function_name=reference_to("aws_lambda_function", function_id, "function_name"))
    return reference_to("aws_lambda_alias", alias_id, "arn")
