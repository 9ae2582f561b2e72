"""Dashboard metric entries and SEARCH expressions, parsed and matched without any AWS."""
from __future__ import annotations

import pytest

from tooling.cloudwatch_metrics import Metric, MetricStat, Search, Unsupported, default_labels, parse_entry, widget_entries

EC2 = "AWS/EC2"


def metric(name: str = "CPUUtilization", namespace: str = EC2, **dimensions: str) -> Metric:
    return Metric(namespace, name, tuple(dimensions.items()))


def test_a_metric_entry_takes_the_widget_defaults_unless_it_overrides_them():
    plain = parse_entry(["AWS/Lambda", "Errors", "FunctionName", "f"], stat="Sum", period=300)
    assert plain == MetricStat(Metric("AWS/Lambda", "Errors", (("FunctionName", "f"),)), "Sum", 300)
    custom = parse_entry(["NS", "Latency", "A", "1", "B", "2", {"stat": "p99", "period": 60, "label": "slow", "color": "#ff0000"}], stat="Sum", period=300)
    assert (custom.stat, custom.period, custom.label, custom.color, custom.metric.dimensions) == ("p99", 60, "slow", "#ff0000", (("A", "1"), ("B", "2")))
    assert parse_entry(["NS", "M", {"visible": False}], stat="Sum", period=300).visible is False


def test_widget_defaults_are_cloudwatchs_when_the_widget_sets_none():
    (line,) = widget_entries({"metrics": [["NS", "M"]]})
    assert (line.stat, line.period) == ("Average", 300)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ([{"expression": "m1 + m2"}], "metric math other than SEARCH"),
        (["...", "FunctionName", "g"], "shorthand"),
        ([".", "Errors", "FunctionName", "g"], "shorthand"),
        (["NS", "M", "lonely-dimension"], "expected [namespace, name"),
        ([{"label": "x"}], "needs a metric or an expression"),
    ],
)
def test_entries_that_cannot_be_evaluated_say_why(entry, reason):
    parsed = parse_entry(entry, stat="Sum", period=300)
    assert isinstance(parsed, Unsupported) and reason in parsed.reason


def test_the_dashboards_search_expression():
    search = Search.parse("""SEARCH('{StockPatternDetection,PatternType,service} MetricName="ConfidenceScore"', 'Average', 300)""")
    assert (search.namespace, search.dimension_names, search.metric_name, search.stat, search.period) == (
        "StockPatternDetection", {"PatternType", "service"}, "ConfidenceScore", "Average", 300)
    found = Metric("StockPatternDetection", "ConfidenceScore", (("service", "kinesis-consumer"), ("PatternType", "double-top")))
    assert search.matches(found)
    assert not search.matches(Metric("StockPatternDetection", "ConfidenceScore", (*found.dimensions, ("extra", "1"))))  # schema: exactly these
    assert not search.matches(Metric("StockPatternDetection", "ConfidenceScore", (("service", "kinesis-consumer"),)))
    assert not search.matches(Metric("StockPatternDetection", "ConfidenceScoreX", found.dimensions))  # quoted: exact
    assert not search.matches(Metric("Other", "ConfidenceScore", found.dimensions))


def test_search_period_defaults_to_the_widgets_and_the_entry_options_carry_over():
    (search,) = widget_entries({"period": 60, "metrics": [[{"expression": "SEARCH('{AWS/EC2,InstanceId} CPUUtilization', 'Maximum')", "label": "cpu"}]]})
    assert (search.period, search.stat, search.label, search.metric_name) == (60, "Maximum", "cpu", None)


@pytest.mark.parametrize(
    ("term", "matching", "not_matching"),
    [
        ('InstanceType=micro', metric(InstanceType="t2.micro"), metric(InstanceType="t2.small")),
        ('InstanceType="t2.micro"', metric(InstanceType="t2.micro"), metric(InstanceType="t3.micro")),
        ("cpu", metric(InstanceType="x"), metric("NetworkIn", InstanceType="x")),  # a word of a camelCase name, any case
        ('"t2.micro"', metric(InstanceType="t2.micro"), metric(InstanceType="t2.micro.big")),
        ("micro OR small", metric(InstanceType="t2.small"), metric(InstanceType="t2.large")),
        ("NOT micro", metric(InstanceType="t2.large"), metric(InstanceType="t2.micro")),
        ("t2 AND (micro OR nano)", metric(InstanceType="t2.nano"), metric(InstanceType="t3.nano")),
        ('t2 NOT MetricName="CPUUtilization"', metric("NetworkIn", InstanceType="t2.nano"), metric(InstanceType="t2.nano")),
        ("Namespace=EC2", metric(InstanceType="a"), metric(namespace="AWS/Lambda", InstanceType="a")),
    ],
)
def test_search_terms(term, matching, not_matching):
    search = Search.parse(f"SEARCH('{term}', 'Average', 300)")
    assert search.matches(matching)
    assert not search.matches(not_matching)


@pytest.mark.parametrize(
    "expression",
    [
        "SEARCH('{AWS/EC2} (micro', 'Average', 300)",
        "SEARCH('{AWS/EC2} micro)', 'Average', 300)",
        "SEARCH('{AWS/EC2} InstanceType=', 'Average', 300)",
        "SEARCH('{AWS/EC2} \"unclosed', 'Average', 300)",
        "SEARCH('', 'Average', 300)",
        "SEARCH('{} x', 'Average', 300)",
        "SEARCH('{AWS/EC2}')",
        "METRICS()",
    ],
)
def test_malformed_searches_are_refused_naming_the_expression(expression):
    with pytest.raises(ValueError) as error:
        Search.parse(expression)
    assert expression in str(error.value)


def test_default_labels_say_what_tells_lines_apart():
    errors = MetricStat(Metric("AWS/Lambda", "Errors", (("FunctionName", "a"),)), "Sum", 300)
    other = MetricStat(Metric("AWS/Lambda", "Errors", (("FunctionName", "b"),)), "Sum", 300)
    machine = MetricStat(Metric("AWS/States", "ExecutionsFailed", (("StateMachineArn", "arn:aws:states:r:1:stateMachine:Flow"),)), "Sum", 300)
    labelled = MetricStat(errors.metric, "p99", 300, label="mine")
    assert [m.label for m in default_labels([errors, other])] == ["a", "b"]
    assert [m.label for m in default_labels([errors])] == ["Errors"]
    assert [m.label for m in default_labels([errors, machine])] == ["a Errors", "Flow ExecutionsFailed"]
    assert [m.label for m in default_labels([errors, labelled])] == ["Errors Sum", "mine"]
