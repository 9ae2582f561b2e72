"""What the stacks and the release command (tooling/release.py) agree on: where code goes, how snapshots are named.

Plain Python with no cdktf import, so the release command starts without jsii; the constructs that
create these objects (code_artifacts.py, api.py) import the same names.
"""
from __future__ import annotations

FUNCTIONS_PREFIX = "functions"
LAYERS_PREFIX = "layers"
SIGNED_PREFIX = "signed"
# An API deployment's description: this prefix, then the hash of the definition it snapshotted (api.py).
DEPLOYMENT_DESCRIPTION_PREFIX = "definition "


def artifact_key(kind: str, name: str, package_sha256_hex: str) -> str:
    """Where a package is uploaded: content-addressed, so the key says which code it is."""
    return f"{kind}/{name}/{package_sha256_hex}.zip"


def signed_prefix(kind: str, name: str) -> str:
    """Where Signer writes the signed copies of `name`'s packages."""
    return f"{SIGNED_PREFIX}/{kind}/{name}/"


def deployment_description(definition_hash: str, note: str = "") -> str:
    return f"{DEPLOYMENT_DESCRIPTION_PREFIX}{definition_hash}" + (f" ({note})" if note else "")


def snapshotted_definition(description: str | None) -> str | None:
    """The definition hash a deployment's description names, or None for a deployment made some other way."""
    if not description or not description.startswith(DEPLOYMENT_DESCRIPTION_PREFIX):
        return None
    words = description[len(DEPLOYMENT_DESCRIPTION_PREFIX):].split()
    return words[0] if words else None
