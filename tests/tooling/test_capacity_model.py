"""The capacity and cost model (tooling/capacity_model.py) against a row computed by hand.

The row: 1,000 symbols, 1-minute bars, prod-like deployment (Lambda 1,024 MB, logs kept 90 days), with the
per-bar inputs of HAND_INPUTS and the fixed resources of HAND_FIXED. Prices are written out as literals (the
price table of 2025-01), so a price change in the model has to be made here too, on purpose.

    bars a month      = 1,000 symbols x 390 bars x 21 days = 8,190,000;  bar times = 390 x 21 = 8,190
    shards            = max(4, ceil(1,000 rec/s / 1,000), ceil(1,000 x 1 KB / 1 MB)) = 4

    Kinesis           = 730 h x $0.04                                  = 29.200000
                      + 8,190,000 x 1 KB = 7.810669 GB x $0.08         =  0.624854
                      + 4 shards x 730 h x $0.015 (fan-out consumer)   = 43.800000
                      + 8,190,000 x 120 B = 0.915303 GB x $0.05        =  0.045765
                                                                       = 73.670619
    Lambda            consumer: 4 busy shards x ceil(250 / 100) = 12 invocations a bar time -> 98,280 a month,
                      83.33 records each at 1.5 ms CPU + 0.5 DynamoDB calls x 5 ms = 4 ms a record
                      -> ceil(30 + 4 x 83.33) = 364 ms
                      others: 8,190 x 10 = 81,900 + threshold checker 12 x 730 = 8,760, at 50 ms
                      GB-s = 1 GB x (98,280 x 0.364 + 90,660 x 0.050) = 40,306.92 x $0.0000133334 = 0.537428
                      requests = 98,280 + 81,900 + 8,760 + 10,000 API = 198,940 x $0.20/M          = 0.039788
                                                                       =  0.577216
    DynamoDB          = 8,190,000 WRU x $0.625/M                       =  5.118750
                      + history Queries: 42 of each day's 390 bars (the window cache serves the rest)
                        = 882,000 x 2.0 RRU = 1,764,000 RRU x $0.125/M =  0.220500
                      + 12 x 8,190,000 x 200 B = 18.306130 GB x $0.25  =  4.576533
                                                                       =  9.915783
    Step Functions    = 40,950 executions x ($1/M + 2.0 s x 64/1024 GB x $0.00001667) = 0.126280
    SQS               = (8,190 x 15 + 15 x 60 x 730 idle polls = 779,850) x $0.40/M  = 0.311940
    SNS               = 16,380 x $0.50/M                               =  0.008190
    EventBridge       = 40,950 x $1/M                                  =  0.040950
    CloudWatch        logs: 188,940 invocations x 2,000 B = 0.351928 GB:
                      ingest x $0.50 = 0.175964, kept 3 months x $0.03 = 0.031674
                      + 40 metrics x $0.30 + dashboard $3 + 38 alarms x $0.10 + 1 anomaly alarm $0.30
                      + 1 composite alarm $0.50                        = 19.807638
    WAF + API         = $5 + 4 rules x $1 + 10,000 x ($0.60 + $3.50)/M =  9.041000
    S3                = 8,760 PUTs x $0.005/1000 = 0.043800 + 12 x 8,760 x 4 KB = 0.401001 GB x $0.023 = 0.009223
                                                                       =  0.053023
    KMS               = 1 key x $1                                     =  1.000000
    total                                                              = 114.552636  (> $100: the alarm trips)
"""
from __future__ import annotations

import math
from dataclasses import replace

import pytest

from tooling import capacity_model as model

HAND_INPUTS = model.PerBar(
    source="hand-computed test row",
    dynamodb_write_units=1.0,
    dynamodb_read_units=2.0,
    consumer_ms_per_invocation=30.0,
    consumer_cpu_ms_per_record=1.5,
    dynamodb_calls_per_record=0.5,
    other_lambda_invocations_per_1000=10.0,
    other_lambda_ms_per_invocation=50.0,
    express_executions_per_1000=5.0,
    express_seconds_per_execution=2.0,
    eventbridge_events_per_1000=5.0,
    sqs_requests_per_1000=15.0,
    sns_publishes_per_1000=2.0,
    record_bytes=120.0,
    item_bytes=200.0,
    log_bytes_per_invocation=2000.0,
)
HAND_FIXED = model.FixedResources(alarms=38, anomaly_alarms=1, composite_alarms=1, custom_metrics=40, waf_rules=4, api_requests_per_month=10_000)
HAND_DEPLOYMENT = model.Deployment(memory_mb=1024, log_retention_days=90, billing_threshold_usd=100)

HAND_ROW = {
    "Kinesis": 73.670619,
    "Lambda": 0.577216,
    "DynamoDB": 9.915783,
    "Step Functions": 0.126280,
    "SQS": 0.311940,
    "SNS": 0.008190,
    "EventBridge": 0.040950,
    "CloudWatch": 19.807638,
    "WAF + API": 9.041000,
    "S3": 0.053023,
    "KMS": 1.000000,
}


def hand_estimate():
    workload = model.Workload("1-minute bars", 1000, model.MINUTE_BARS_PER_DAY)
    return model.estimate(workload, HAND_INPUTS, HAND_DEPLOYMENT, fixed=HAND_FIXED)


def test_the_model_matches_the_hand_computed_row_component_by_component():
    result = hand_estimate()

    assert result.workload.bars_per_month == 8_190_000
    assert result.shards == 4
    assert result.consumer_invocations == 98_280
    assert set(result.costs) == set(HAND_ROW)
    for component, expected in HAND_ROW.items():
        assert result.costs[component] == pytest.approx(expected, rel=1e-5), component
    assert result.total == pytest.approx(114.552636, rel=1e-6)
    assert result.dominant == "Kinesis"


def test_history_queries_follow_the_window_cache():
    assert model.Workload("1-minute bars", 1, model.MINUTE_BARS_PER_DAY).history_queries_per_bar == pytest.approx(42 / 390)
    assert model.Workload("daily bars", 1, model.DAILY_BARS_PER_DAY).history_queries_per_bar == 1.0


def test_the_price_table_is_the_one_the_hand_row_used():
    prices = model.PRICES
    assert (prices.kinesis_stream_hour, prices.kinesis_ingest_per_gb, prices.kinesis_efo_consumer_shard_hour,
            prices.kinesis_efo_retrieval_per_gb) == (0.04, 0.08, 0.015, 0.05)
    assert (prices.lambda_gb_second, prices.lambda_request) == (0.0000133334, 0.0000002)
    assert prices.dynamodb_write_request_unit * 1e6 == pytest.approx(0.625)
    assert prices.dynamodb_read_request_unit * 1e6 == pytest.approx(0.125)
    assert (prices.custom_metric_month, prices.dashboard_month, prices.alarm_metric_month, prices.composite_alarm_month) == (0.30, 3.00, 0.10, 0.50)


def test_the_billing_alarm_trips_at_the_first_symbol_count_whose_month_costs_more():
    minute = model.MINUTE_BARS_PER_DAY
    # With the fan-out consumer (4 shards x 730 h x $0.015 = $43.80) the fixed part alone is above $100.
    one_symbol = model.estimate(model.Workload("", 1, minute), HAND_INPUTS, HAND_DEPLOYMENT, fixed=HAND_FIXED)
    assert one_symbol.total > 100
    assert model.symbols_at_budget(minute, 100, HAND_INPUTS, HAND_DEPLOYMENT, fixed=HAND_FIXED) == 0
    # Without it the hand row costs $116.38 - $43.80 - $0.05 (fan-out retrieval) = $72.53, so the alarm trips
    # somewhere above 1,000 symbols.
    shared = replace(HAND_FIXED, efo_consumers=0)
    trips = model.symbols_at_budget(minute, 100, HAND_INPUTS, HAND_DEPLOYMENT, fixed=shared)
    assert trips is not None and 1000 < trips < 10_000
    below = model.estimate(model.Workload("", trips - 1, minute), HAND_INPUTS, HAND_DEPLOYMENT, fixed=shared)
    at = model.estimate(model.Workload("", trips, minute), HAND_INPUTS, HAND_DEPLOYMENT, fixed=shared)
    assert below.total <= 100 < at.total


def test_symbols_at_budget_finds_the_first_symbol_count_above_the_budget():
    deployment = HAND_DEPLOYMENT
    budget = model.estimate(model.Workload("", 5000, model.MINUTE_BARS_PER_DAY), HAND_INPUTS, deployment).total
    trips = model.symbols_at_budget(model.MINUTE_BARS_PER_DAY, budget, HAND_INPUTS, deployment)
    assert model.estimate(model.Workload("", trips, model.MINUTE_BARS_PER_DAY), HAND_INPUTS, deployment).total > budget
    assert model.estimate(model.Workload("", trips - 1, model.MINUTE_BARS_PER_DAY), HAND_INPUTS, deployment).total <= budget
    assert model.symbols_at_budget(model.MINUTE_BARS_PER_DAY, 1e12, HAND_INPUTS, deployment, limit=1000) is None


def test_consumer_batches_follow_shards_and_the_batch_size():
    assert model.consumer_invocations_per_bar_time(1, 4, 100) == 1  # one symbol: one shard busy
    assert model.consumer_invocations_per_bar_time(100, 4, 100) == 4  # 25 records on each of 4 shards
    assert model.consumer_invocations_per_bar_time(10_000, 10, 100) == 100  # 1,000 a shard in 10 batches


def test_a_bar_time_of_10000_symbols_is_a_kinesis_burst_above_a_new_on_demand_stream():
    workload = model.Workload("", 10_000, model.MINUTE_BARS_PER_DAY)
    assert model.shards_needed(workload, HAND_INPUTS) == 10
    assert model.first_bottleneck(workload, HAND_INPUTS).startswith("Kinesis: a bar time puts 10,000 records/s")
    small = model.Workload("", 100, model.MINUTE_BARS_PER_DAY)
    assert model.first_bottleneck(small, HAND_INPUTS).startswith("Lambda: 4 shards")


def test_a_load_report_becomes_model_inputs_and_a_missing_field_is_named():
    inputs = {name: 1.5 for name in (f.name for f in model.fields(model.PerBar)) if name != "source"}
    per_bar = model.per_bar_from_report({"model_inputs": inputs}, source="r.json")
    assert per_bar.dynamodb_read_units == 1.5 and per_bar.source == "r.json"
    del inputs["record_bytes"]
    with pytest.raises(ValueError, match="r.json: model_inputs lacks record_bytes"):
        model.per_bar_from_report({"model_inputs": inputs}, source="r.json")


def test_the_command_prints_the_three_sizes_and_both_bar_intervals(capsys):
    assert model.main(["--symbols", "100", "1000", "10000"]) == 0
    out = capsys.readouterr().out
    for size in ("| 1-minute bars | 100 |", "| 1-minute bars | 1,000 |", "| 1-minute bars | 10,000 |", "| daily bars | 10,000 |"):
        assert size in out
    assert "billing alarm, 1-minute bars: trips" in out and model.PRICE_TABLE_DATE in out
    assert not math.isnan(model.estimate(model.Workload("", 100, 1)).total)


def test_the_price_table_lists_every_price_once_with_its_unit(capsys):
    assert model.main(["--prices"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| what")]
    assert len(rows) == len(model.fields(model.Prices))
    assert "| Lambda arm64 duration (first tier) | 13.3334 per million | GB-second |" in rows
    assert "| Kinesis Data Streams on-demand: stream | 0.04 | stream-hour |" in rows
    assert model.PRICE_TABLE_DATE in out
