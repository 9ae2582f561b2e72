"""The tuner's pure logic: cost per invocation against hand-computed numbers, parsing, averaging, choice."""
from __future__ import annotations

import base64

import pytest

from power_tuning import analysis, pricing


def test_prices_are_the_published_arm64_us_east_1_prices():
    assert pricing.ARM64_PRICE_PER_GB_SECOND == 0.0000133334
    assert pricing.PRICE_PER_REQUEST == 0.0000002


def test_cost_of_one_invocation_matches_a_hand_computed_example():
    # 1024 MB = 1 GB; 100 ms = 0.1 s -> 0.1 GB-s x $0.0000133334 = $0.00000133334, plus $0.0000002 for the request.
    assert pricing.invocation_cost(1024, 100) == pytest.approx(0.00000153334, rel=1e-12)
    # 512 MB for 250 ms: 0.5 GB x 0.25 s = 0.125 GB-s -> $0.000001666675 + $0.0000002.
    assert pricing.invocation_cost(512, 250) == pytest.approx(0.000001866675, rel=1e-12)
    # A million of the first: $1.53 (what the result table's "USD / 1M" column shows).
    assert pricing.invocation_cost(1024, 100) * 1_000_000 == pytest.approx(1.53334)


def test_billing_rounds_up_to_the_millisecond():
    assert pricing.billed_milliseconds(1.0001) == 2
    assert pricing.billed_milliseconds(12.0) == 12
    with pytest.raises(ValueError):
        pricing.billed_milliseconds(-1)
    with pytest.raises(ValueError):
        pricing.billed_milliseconds(float("nan"))


@pytest.mark.parametrize("memory, billed", [(0, 10), (512, -1)])
def test_cost_refuses_impossible_inputs(memory, billed):
    with pytest.raises(ValueError):
        pricing.invocation_cost(memory, billed)


# Five measured values whose hand-computed costs (USD per invocation) are:
#  512 MB x 250 ms -> 1.866675e-6   1024 x 100 -> 1.53334e-6   1536 x 80 -> 1.800008e-6
# 2048 x 70 -> 2.066676e-6          3008 x 68 -> 2.9375 GB x 0.068 s = 0.19975 GB-s -> 2.863347e-6
MEASURED = [
    {"value": 512, "averageDuration": 250},
    {"value": 1024, "averageDuration": 100},
    {"value": 1536, "averageDuration": 80},
    {"value": 2048, "averageDuration": 70},
    {"value": 3008, "averageDuration": 68},
]


def test_analysis_prices_every_value():
    result = analysis.analyze(MEASURED, "cost")
    prices = {row["value"]: row["averagePrice"] for row in result["results"]}
    assert prices == pytest.approx(
        {512: 1.866675e-6, 1024: 1.53334e-6, 1536: 1.800008e-6, 2048: 2.066676e-6, 3008: 2.86334665e-6}, rel=1e-6
    )


@pytest.mark.parametrize(
    "strategy, weight, expected",
    [
        ("cost", 0.5, 1024),  # the cheapest
        ("speed", 0.5, 3008),  # the fastest
        ("balanced", 0.5, 1024),  # scores (cost, time scaled to 0..1): 512 .63, 1024 .09, 1536 .13, 2048 .21, 3008 .50
        ("balanced", 0.2, 2048),  # time counts more: 1536 scores .0928, 2048 .0890
        ("balanced", 0.0, 3008),  # time only
    ],
)
def test_the_strategy_chooses_the_hand_computed_winner(strategy, weight, expected):
    result = analysis.analyze(MEASURED, strategy, weight)
    assert result["power"] == expected
    assert result["strategy"] == strategy
    chosen = next(row for row in result["results"] if row["value"] == expected)
    assert (result["cost"], result["duration"]) == (chosen["averagePrice"], chosen["averageDuration"])


def test_ties_go_to_the_smaller_memory_and_equal_measurements_do_not_divide_by_zero():
    same = [{"value": 1024, "averageDuration": 10}, {"value": 512, "averageDuration": 10}]
    assert analysis.analyze(same, "speed")["power"] == 512
    assert analysis.analyze(same, "balanced")["power"] == 512


def test_choose_refuses_nothing_and_unknown_strategies():
    with pytest.raises(ValueError):
        analysis.choose([], "cost")
    with pytest.raises(ValueError):
        analysis.choose(analysis.price_results(MEASURED), "cheapest")


def log_tail(*lines: str) -> str:
    return base64.b64encode("\n".join(lines).encode()).decode()


def test_billed_duration_comes_from_the_report_line():
    tail = log_tail(
        "START RequestId: 1 Version: 7",
        "{\"level\":\"INFO\",\"message\":\"Billed Duration: 999 ms in a log message is not the report\"}",
        "END RequestId: 1",
        "REPORT RequestId: 1\tDuration: 41.27 ms\tBilled Duration: 42 ms\tMemory Size: 1024 MB\tMax Memory Used: 88 MB",
    )
    assert analysis.billed_duration_from_log(tail) == 42.0


def test_a_log_tail_without_a_report_line_is_an_error():
    with pytest.raises(ValueError, match="REPORT"):
        analysis.billed_duration_from_log(log_tail("START RequestId: 1", "REPORT RequestId: 1\tDuration: 3 ms"))


def test_trimmed_mean_drops_the_extremes():
    assert analysis.trimmed_mean([1000, 10, 11, 12, 13, 14, 15, 16, 17, 1], 0.2) == pytest.approx(13.5)
    assert analysis.trimmed_mean([5, 7], 0.4) == 6  # nothing would be left, so nothing is dropped
    assert analysis.trimmed_mean([3], 0.0) == 3
    with pytest.raises(ValueError):
        analysis.trimmed_mean([], 0.2)


ARN = "arn:aws:lambda:us-east-1:123456789012:function:PatternDetector-dev"


def test_input_defaults_are_the_issue_s_values():
    request = analysis.parse_input({"lambdaARN": ARN})
    assert request.power_values == (512, 1024, 1536, 2048, 3008)
    assert (request.num, request.strategy, request.payload) == (10, "cost", {})
    assert request.as_event()["powerValues"] == [512, 1024, 1536, 2048, 3008]


def test_input_values_are_sorted_and_deduplicated():
    request = analysis.parse_input(
        {"lambdaARN": ARN, "powerValues": [2048, 512, 2048], "num": 3, "strategy": "balanced", "balancedWeight": 0.3,
         "payload": {"action": "validate"}, "discardTopBottom": 0}
    )
    assert request.power_values == (512, 2048)
    assert (request.num, request.balanced_weight, request.discard_top_bottom) == (3, 0.3, 0.0)


@pytest.mark.parametrize(
    "event, problem",
    [
        ([], "JSON object"),
        ({}, "lambdaARN"),
        ({"lambdaARN": ARN + ":live"}, "unqualified"),
        ({"lambdaARN": ARN, "powerValues": []}, "powerValues"),
        ({"lambdaARN": ARN, "powerValues": [64]}, "powerValues"),
        ({"lambdaARN": ARN, "powerValues": [True]}, "powerValues"),
        ({"lambdaARN": ARN, "num": 0}, "num"),
        ({"lambdaARN": ARN, "num": "5"}, "num"),
        ({"lambdaARN": ARN, "strategy": "cheapest"}, "strategy"),
        ({"lambdaARN": ARN, "autoOptimize": False}, "autoOptimize is not supported: the tuner only recommends"),
        ({"lambdaARN": ARN, "balancedWeight": 2}, "balancedWeight"),
        ({"lambdaARN": ARN, "discardTopBottom": 0.5}, "discardTopBottom"),
    ],
)
def test_bad_input_is_refused_with_the_key_named(event, problem):
    with pytest.raises(analysis.TuningInputError, match=problem):
        analysis.parse_input(event)


def test_table_and_chart_show_every_value_and_mark_the_choice():
    result = analysis.analyze(MEASURED, "cost")
    table = analysis.result_table(result)
    assert len(table.splitlines()) == 6
    assert "<- chosen" in next(line for line in table.splitlines() if line.strip().startswith("1024"))
    assert "1.53" in table
    chart = analysis.text_chart(result, width=20)
    lines = chart.splitlines()
    assert lines[0] == "avg billed duration (ms)"
    # The slowest value fills the bar; 3008 MB at 68 ms gets 68/250 of it.
    assert lines[1].count("#") == 20 and lines[5].count("#") == round(20 * 68 / 250)
    assert "cost per 1M invocations (USD)" in lines
