"""A second Terraform workspace of `local`: applied beside the first from the same synthesized JSON, isolated
from it, and destroyed without touching it."""
from __future__ import annotations

import pytest

from integration_helpers import as_records, planted_bars, put_records
from tooling import local_platform
from tooling.local_runner import LocalRunner

pytestmark = pytest.mark.integration

WORKSPACE = "it2"


def bars_stored(clients, table: str, symbol: str) -> int:
    return clients.dynamodb.query(
        TableName=table, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": f"BAR#{symbol}"}}, Select="COUNT"
    )["Count"]


def test_a_second_workspace_applies_beside_the_first_and_its_destroy_leaves_the_first_untouched(deployed, session, endpoint, clients):
    first_functions = {f["FunctionName"] for f in session.client("lambda", endpoint_url=endpoint).list_functions()["Functions"]}
    try:
        # No new synth: the stack directory the session fixture deployed from is applied in another workspace.
        second = local_platform.apply(WORKSPACE)
        assert WORKSPACE in local_platform.workspaces()
        assert second["trading_patterns_table_name"] == "TradingPatterns-local-it2"
        assert second["market_data_stream_name"] == "MarketDataStream-local-it2"
        assert second["data_bucket_name"] == "patternwatch-data-local-it2"
        tables = set(clients.dynamodb.list_tables()["TableNames"])
        assert {"TradingPatterns-local", "TradingPatterns-local-it2", "ApprovalTracking-local-it2"} <= tables
        functions = {f["FunctionName"] for f in session.client("lambda", endpoint_url=endpoint).list_functions()["Functions"]}
        assert {"KinesisConsumer-local", "KinesisConsumer-local-it2", "ThresholdChecker-local-it2"} <= functions

        # Isolated: the second copy's consumer stores into its own table, and the first copy sees nothing of it.
        runner = LocalRunner(session, endpoint, suffix=f"local-{WORKSPACE}")
        assert [p.function.name for p in runner.streams] == ["KinesisConsumer-local-it2"]
        bars = planted_bars("ITWORKSPACE")
        put_records(clients, second["market_data_stream_name"], as_records(bars), "ITWORKSPACE")
        runner.drain()
        assert bars_stored(clients, second["trading_patterns_table_name"], "ITWORKSPACE") == len(bars)
        assert bars_stored(clients, deployed["trading_patterns_table_name"], "ITWORKSPACE") == 0

        clean, output = local_platform.plan_is_clean()
        assert clean, f"the first workspace changed while the second was applied:\n{output[-3000:]}"
    finally:
        local_platform.destroy_workspace(WORKSPACE)

    assert WORKSPACE not in local_platform.workspaces()
    tables = set(clients.dynamodb.list_tables()["TableNames"])
    assert "TradingPatterns-local-it2" not in tables and "TradingPatterns-local" in tables
    functions = {f["FunctionName"] for f in session.client("lambda", endpoint_url=endpoint).list_functions()["Functions"]}
    assert functions == first_functions
    clean, output = local_platform.plan_is_clean()
    assert clean, f"destroying the second workspace changed the first:\n{output[-3000:]}"

