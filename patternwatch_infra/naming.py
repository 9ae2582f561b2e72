"""Resource names: the environment suffix, plus the Terraform workspace outside `default`.

Every name ends in one Terraform local, `name_suffix`: the environment's suffix (`dev`) in the default
workspace and `<suffix>-<workspace>` (`dev-pr123`) in any other. A workspace is therefore an isolated
copy of its environment, deployed from the same synthesized JSON:

    cd cdktf.out/stacks/patternwatch-dev && terraform workspace new pr123 && terraform apply
    # TradingPatterns-dev-pr123, KinesisConsumerRole-dev-pr123, patternwatch-data-111111111111-dev-pr123, ...

`Naming` is the one place names are made, and `declare_naming` writes the local once per stack with a
plan-time check of the workspace name (the rule and its reasons are in workspaces.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from cdktf import DataResource, Fn, Precondition, TerraformLocal, TerraformResourceLifecycle, TerraformStack

from .workspaces import DEFAULT_WORKSPACE, MAX_WORKSPACE_LENGTH, WORKSPACE_NAME_PATTERN, WORKSPACE_NAME_RULE

NAME_SUFFIX_LOCAL = "name_suffix"
NAME_SUFFIX_REFERENCE = f"${{local.{NAME_SUFFIX_LOCAL}}}"
# For a setting AWS keeps once per account and region: only the default workspace manages it.
DEFAULT_WORKSPACE_ONLY = f'${{terraform.workspace == "{DEFAULT_WORKSPACE}" ? 1 : 0}}'


def name_suffix_expression(environment_suffix: str) -> str:
    """The local's Terraform expression: the workspace joins the suffix unless it is `default`."""
    return (
        f'${{terraform.workspace == "{DEFAULT_WORKSPACE}" ? "{environment_suffix}" : '
        f'"{environment_suffix}-${{terraform.workspace}}"}}'
    )


@dataclass(frozen=True)
class Naming:
    """Makes every resource name of one stack: `<base>-<name_suffix>` (buckets also carry the account id)."""

    account_id: str | None = None
    # What each name ends in: a reference to the local, resolved by Terraform per workspace.
    suffix: str = NAME_SUFFIX_REFERENCE

    def name(self, base: str) -> str:
        """`TradingPatterns` -> `TradingPatterns-${local.name_suffix}` (`TradingPatterns-dev` in `default`)."""
        return f"{base}-{self.suffix}"

    def underscored_prefix(self, base: str) -> str:
        """`PatternWatch_dev_pr123_`: a name prefix for services that allow only letters, digits and underscores
        (Signer profiles). AWS completes it with a unique suffix."""
        return Fn.replace(f"{base}-{self.suffix}-", "-", "_")

    def bucket(self, base: str) -> str:
        """S3 names are global and lowercase, so the account id joins the suffix when we know it."""
        prefix = [base, self.account_id] if self.account_id else [base]
        return self.name("-".join(prefix).lower())


def declare_naming(stack: TerraformStack, environment_suffix: str, account_id: str | None) -> Naming:
    """The stack's `name_suffix` local and the check that fails a plan in a workspace whose name breaks the rule."""
    local = TerraformLocal(stack, NAME_SUFFIX_LOCAL, name_suffix_expression(environment_suffix))
    local.override_logical_id(NAME_SUFFIX_LOCAL)
    # A precondition fails the plan with this message (a `check` block would only warn). terraform_data is
    # built into Terraform: no provider to install, and nothing is created outside the state.
    check = DataResource(
        stack,
        "workspace_name",
        input={"workspace": "${terraform.workspace}"},
        lifecycle=TerraformResourceLifecycle(
            precondition=[
                Precondition(
                    condition=f'${{can(regex("{WORKSPACE_NAME_PATTERN}", terraform.workspace))}}',
                    error_message=(
                        'The Terraform workspace name "${terraform.workspace}" is not allowed: use '
                        f"{WORKSPACE_NAME_RULE}. Every resource name carries <environment>-<workspace>, and the "
                        f"longest (an S3 bucket, at most 63 characters) leaves room for {MAX_WORKSPACE_LENGTH} characters."
                    ),
                )
            ]
        ),
    )
    check.override_logical_id("workspace_name")
    return Naming(account_id, suffix=local.as_string)
