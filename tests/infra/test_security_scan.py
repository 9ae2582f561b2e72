"""checkov over every synthesized stack: every failed check is fixed or skipped inline with a reason."""
from __future__ import annotations

import pytest
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue

from patternwatch_infra.config import ENVIRONMENT_NAMES
from patternwatch_infra.scan_skips import SKIP_KEY, skip_check
from patternwatch_infra.testing import synth_scope
from tooling.security_scan import render_doc, scan_stack, skip_reason


@pytest.fixture(scope="session")
def scans(stacks, synth_dir):
    return {env: scan_stack(synth_dir / "stacks" / f"patternwatch-{env}") for env in ENVIRONMENT_NAMES}


@pytest.mark.parametrize("env", ENVIRONMENT_NAMES)
def test_checkov_finds_nothing_unexplained(scans, env):
    result = scans[env]
    assert result.passed > 500
    assert result.unexplained == [], "\n".join(f"{c} {r}: {n}" for c, r, n in result.unexplained)
    assert all(reason.strip() for _, _, reason in result.skipped)


def test_skips_are_recorded_in_the_stack_comment_block_under_the_logical_id(dev):
    skips = dev["//"][SKIP_KEY]
    function_skips = [checks for logical, checks in skips.items() if "kinesis_consumer_function" in logical]
    assert function_skips and "CKV_AWS_117" in function_skips[0]
    logical = next(iter(skips))
    check_id, reason = next(iter(skips[logical].items()))
    assert skip_reason(dev, f"resource.{logical}", check_id) == reason
    assert skip_reason(dev, f"resource.{logical}", "CKV_NOT_SKIPPED") is None


def test_a_skip_needs_a_reason():
    def build(scope):
        skip_check(SqsQueue(scope, "q"), "CKV_AWS_27", "  ")

    with pytest.raises(ValueError, match="skipping CKV_AWS_27 needs a reason"):
        synth_scope(build)


def test_the_report_lists_counts_per_stack_and_every_reason(scans):
    document = render_doc(list(scans.values()))
    assert "| patternwatch-dev |" in document and "| patternwatch-prod |" in document
    assert "CKV_AWS_117" in document
