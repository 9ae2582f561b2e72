"""IAM policy documents as `aws_iam_policy_document` data sources: plain Terraform, computed offline."""
from __future__ import annotations

from collections.abc import Sequence

from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import (
    DataAwsIamPolicyDocument,
    DataAwsIamPolicyDocumentStatement,
    DataAwsIamPolicyDocumentStatementCondition,
    DataAwsIamPolicyDocumentStatementPrincipals,
)
from constructs import Construct


def statement(
    *,
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str],
    effect: str = "Allow",
    principals: Sequence[DataAwsIamPolicyDocumentStatementPrincipals] | None = None,
    conditions: Sequence[DataAwsIamPolicyDocumentStatementCondition] | None = None,
) -> DataAwsIamPolicyDocumentStatement:
    return DataAwsIamPolicyDocumentStatement(
        sid=sid,
        effect=effect,
        actions=list(actions),
        resources=list(resources),
        principals=list(principals) if principals else None,
        condition=list(conditions) if conditions else None,
    )


def condition(test: str, variable: str, *values: str) -> DataAwsIamPolicyDocumentStatementCondition:
    return DataAwsIamPolicyDocumentStatementCondition(test=test, variable=variable, values=list(values))


def service_principal(*services: str) -> DataAwsIamPolicyDocumentStatementPrincipals:
    return DataAwsIamPolicyDocumentStatementPrincipals(type="Service", identifiers=list(services))


def account_principal(account_root_arn: str) -> DataAwsIamPolicyDocumentStatementPrincipals:
    return DataAwsIamPolicyDocumentStatementPrincipals(type="AWS", identifiers=[account_root_arn])


def any_principal() -> DataAwsIamPolicyDocumentStatementPrincipals:
    return DataAwsIamPolicyDocumentStatementPrincipals(type="*", identifiers=["*"])


def deny_insecure_transport(actions: Sequence[str], resources: Sequence[str]) -> DataAwsIamPolicyDocumentStatement:
    """Refuse every request that does not arrive over TLS."""
    return statement(
        sid="DenyInsecureTransport",
        effect="Deny",
        actions=actions,
        resources=resources,
        principals=[any_principal()],
        conditions=[condition("Bool", "aws:SecureTransport", "false")],
    )


def policy_document(scope: Construct, id: str, statements: Sequence[DataAwsIamPolicyDocumentStatement]) -> DataAwsIamPolicyDocument:
    return DataAwsIamPolicyDocument(scope, id, statement=list(statements))
