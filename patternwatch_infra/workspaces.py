"""Terraform workspaces: which names are allowed, and what the name suffix becomes in each.

A workspace is an isolated copy of an environment from the same synthesized JSON: every resource name
ends in `<environment suffix>-<workspace>` outside the `default` workspace (naming.py writes that as
the Terraform local `name_suffix`). This module is plain Python, with no cdktf import, so the config
loader and the command-line tools (release, power tuning, the local platform) can use it cheaply.

The limits come from the tightest name, the WAF log bucket
`aws-waf-logs-patternwatch-<12-digit account>-<environment suffix>-<workspace>`: S3 allows 63
characters, which leaves 7 for the environment suffix (`staging`) and 16 for the workspace. A unit test
computes every name of every stack with the longest workspace allowed and checks each AWS limit.
"""
from __future__ import annotations

import re

DEFAULT_WORKSPACE = "default"
MAX_WORKSPACE_LENGTH = 16
MAX_ENVIRONMENT_SUFFIX_LENGTH = 7


def _lowercase_label(max_length: int) -> str:
    """1 to `max_length` lowercase letters, digits and hyphens, starting and ending with a letter or digit."""
    return f"^[a-z0-9]([a-z0-9-]{{0,{max_length - 2}}}[a-z0-9])?$"


WORKSPACE_NAME_PATTERN = _lowercase_label(MAX_WORKSPACE_LENGTH)
ENVIRONMENT_SUFFIX_PATTERN = _lowercase_label(MAX_ENVIRONMENT_SUFFIX_LENGTH)
WORKSPACE_NAME_RULE = (
    f"1 to {MAX_WORKSPACE_LENGTH} lowercase letters, digits and hyphens, starting and ending with a letter or "
    f"digit ({WORKSPACE_NAME_PATTERN})"
)


def name_suffix(environment_suffix: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    """What the `name_suffix` local evaluates to in `workspace` (a test proves Terraform agrees)."""
    return environment_suffix if workspace == DEFAULT_WORKSPACE else f"{environment_suffix}-{workspace}"


def workspace_name_problem(workspace: str) -> str | None:
    """Why `workspace` cannot be used (the rule the plan-time check enforces), or None if it can."""
    if re.match(WORKSPACE_NAME_PATTERN, workspace):  # `default` itself follows the rule
        return None
    return f"the Terraform workspace name {workspace!r} is not allowed: use {WORKSPACE_NAME_RULE}"
