"""The REST API's routes: each path is written once, in API Gateway syntax, and derived for Powertools.

API Gateway resources and execution ARNs use `{parameter}`; Powertools' APIGatewayRestResolver uses
`<parameter>`. The infrastructure (patternwatch_infra/api.py) and the handlers (pattern_detector,
approval_processor) both read these constants, so a route cannot be renamed on one side only.
"""
from __future__ import annotations

import re
from typing import Final

_PARAMETER = re.compile(r"\{(\w+)\}")


def powertools_route(resource_path: str) -> str:
    """`/patterns/{symbol}` -> `/patterns/<symbol>`."""
    return _PARAMETER.sub(r"<\1>", resource_path)


def path_parameters(resource_path: str) -> tuple[str, ...]:
    """`/approve/{token}` -> ("token",)."""
    return tuple(_PARAMETER.findall(resource_path))


# API Gateway resource paths (served by pattern-detector: PATTERNS*, approval-processor: APPROVAL).
PATTERNS_RESOURCE_PATH: Final = "/patterns"  # POST: submit bars, get matches
PATTERNS_BY_SYMBOL_RESOURCE_PATH: Final = "/patterns/{symbol}"  # GET: stored matches, newest first
APPROVAL_RESOURCE_PATH: Final = "/approve/{token}"  # POST: approve or reject

# The same routes in Powertools syntax.
PATTERNS_ROUTE: Final = powertools_route(PATTERNS_RESOURCE_PATH)
PATTERNS_BY_SYMBOL_ROUTE: Final = powertools_route(PATTERNS_BY_SYMBOL_RESOURCE_PATH)
APPROVAL_ROUTE: Final = powertools_route(APPROVAL_RESOURCE_PATH)

# Optional query string parameters of GET /patterns/{symbol}.
QUERY_LIMIT: Final = "limit"
QUERY_NEXT_TOKEN: Final = "nextToken"
