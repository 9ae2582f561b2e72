"""Inline checkov skips: a skipped check sits next to the resource it concerns, with its reason.

checkov's Terraform-JSON scanner reads no skip comments, so `skip_check` records the skip in the stack's
`//` comment block of the synthesized JSON (Terraform ignores `//` keys), keyed by the block's logical
id; tooling/security_scan.py counts a failed check as skipped only when that block has that check id
with a reason. (A resource's own `//` block would do for resources, but cdktf drops overrides of a data
source's `//`, and policy documents are data sources.)
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the scanner imports SKIP_KEY without paying for jsii
    from cdktf import TerraformElement

SKIP_KEY = "checkov_skip"
# Reasons that recur across layers.
RETENTION_SET_PER_ENVIRONMENT = "retention is set per environment in envs/*.json (cost), KMS-encrypted"
# Code signing (code_artifacts.py) puts a code signing config on every function where code is signed: everywhere
# but the emulator, which has no AWS Signer and no Lambda code signing configs. Only `local` skips the check.
EMULATOR_HAS_NO_CODE_SIGNING = (
    "the emulator has no AWS Signer and no Lambda code signing configs (emulator.signs_code); every real environment's "
    "functions carry a code signing config that trusts only that environment's Signer profile"
)


def skip_check(element: "TerraformElement", check_id: str, reason: str) -> None:
    from cdktf import TerraformStack

    if not reason.strip():
        raise ValueError(f"skipping {check_id} needs a reason")
    TerraformStack.of(element).add_override(f"//.{SKIP_KEY}.{element.friendly_unique_id}.{check_id}", reason)
