"""Test helpers for the synthesized Terraform JSON: a public part of the package, for users' own synth tests.

Our tests use them, and so can yours: they ship with patternwatch_infra, depend only on cdktf and the AWS
provider bindings (never on tooling or tests/), and their names and signatures are kept stable.

    from patternwatch_infra.testing import find_resource, synth_scope

    document = synth_scope(lambda stack: MyConstruct(stack, "mine", ...))
    queue = find_resource(document, "aws_sqs_queue", name="MyQueue-dev")

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

TEST_REGION = "us-east-1"
_REFERENCE = re.compile(r"^\$\{(data\.)?([a-z0-9_]+)\.([A-Za-z0-9_]+)\.([a-z_]+)\}$")


def synth_scope(build: Callable[[Construct], Any], *, region: str = TEST_REGION) -> dict:
    """Synthesize whatever `build` adds to a fresh stack (which already has an AWS provider)."""
    stack = TerraformStack(Testing.app(), "test")
    AwsProvider(stack, "aws", region=region)
    build(stack)
    return json.loads(Testing.synth(stack))


def resources(document: dict, resource_type: str) -> dict[str, dict]:
    """All resources of one type, keyed by logical id."""
    return document.get("resource", {}).get(resource_type, {})


def find_resource(document: dict, resource_type: str, **attributes: Any) -> dict:
    """The one resource of `resource_type` whose attributes equal `attributes`; fails loudly otherwise."""
    matches = [r for r in resources(document, resource_type).values() if all(r.get(k) == v for k, v in attributes.items())]
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


def logical_id(document: dict, resource_type: str, **attributes: Any) -> str:
    matches = [k for k, r in resources(document, resource_type).items() if all(r.get(a) == v for a, v in attributes.items())]
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
