"""`make load`'s pure parts (tooling/load_test.py) and the emulator's call counter (tooling/local_aws/call_counts.py)."""
from __future__ import annotations

import base64
import json

import boto3
import pytest

from tooling import load_test
from tooling.load_test import LoadSettings, LoadSettingsError
from tooling.local_aws import admin, call_counts


# --- bounds ------------------------------------------------------------------------------------------------


def test_settings_inside_the_bounds_are_kept():
    settings = LoadSettings(symbols=40, bars_per_symbol=120, rate=400, duration=60)
    assert settings.total_bars == 4800


@pytest.mark.parametrize("field, value, option", [
    ("symbols", 0, "--symbols"), ("symbols", 501, "--symbols"),
    ("bars_per_symbol", 0, "--bars-per-symbol"), ("bars_per_symbol", 1001, "--bars-per-symbol"),
    ("rate", 0.5, "--rate"), ("rate", 5001, "--rate"), ("rate", float("nan"), "--rate"),
    ("duration", 4, "--duration"), ("duration", 1801, "--duration"), ("duration", float("inf"), "--duration"),
])
def test_each_option_out_of_its_bounds_is_refused_by_name(field, value, option):
    with pytest.raises(LoadSettingsError, match=option):
        LoadSettings(**{field: value})


def test_the_total_number_of_bars_is_bounded_too():
    with pytest.raises(LoadSettingsError, match="500 x|250,000 bars; at most 50,000"):
        LoadSettings(symbols=500, bars_per_symbol=500)


def test_the_command_line_refuses_bad_options_before_touching_anything(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_test.main(["--symbols", "9999"])
    assert exit_info.value.code == 2
    assert "--symbols must be between 1 and 500" in capsys.readouterr().err


# --- this machine only ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:5071", "http://localhost:5055", "http://[::1]:5055", "http://127.0.0.2:80"])
def test_loopback_endpoints_are_accepted(endpoint):
    assert load_test.require_local_endpoint(endpoint) == endpoint


@pytest.mark.parametrize("endpoint", [
    "https://kinesis.us-east-1.amazonaws.com", "http://10.0.0.5:5055", "http://192.168.1.2:4566", "http://localhost.example.com:5055",
    "ftp://127.0.0.1:21", "",
])
def test_any_other_endpoint_is_refused(endpoint):
    with pytest.raises(LoadSettingsError, match="only talks to the local emulator"):
        load_test.require_local_endpoint(endpoint)


def test_the_command_refuses_an_emulator_configured_off_this_machine(monkeypatch, capsys):
    from patternwatch_infra import config

    real = config.load_environment

    def remote(name, *args, **kwargs):
        loaded = real(name, *args, **kwargs)

        class Remote:
            emulator = type("E", (), {"endpoint": "http://10.1.2.3:5055"})()

        return Remote if name == "local" else loaded

    monkeypatch.setattr(config, "load_environment", remote)
    with pytest.raises(SystemExit) as exit_info:
        load_test.main(["--symbols", "2"])
    assert exit_info.value.code == 2
    assert "refusing to send load to 'http://10.1.2.3:5055'" in capsys.readouterr().err


# --- report math -----------------------------------------------------------------------------------------------


def test_percentiles_interpolate_between_closest_ranks():
    # sorted 10, 20, 30, 40: p50 sits halfway between ranks 1 and 2 (0-based 1.5) -> 25;
    # p90 at 0-based 2.7 -> 30 + 0.7 x 10 = 37; p0 and p100 are the ends.
    values = [40, 10, 30, 20]
    assert load_test.percentile(values, 50) == pytest.approx(25)
    assert load_test.percentile(values, 90) == pytest.approx(37)
    assert load_test.percentile(values, 0) == 10 and load_test.percentile(values, 100) == 40
    assert load_test.percentile([7], 99) == 7
    with pytest.raises(ValueError):
        load_test.percentile([], 50)
    with pytest.raises(ValueError):
        load_test.percentile([1], 101)


def test_latency_summary_is_in_milliseconds_and_none_without_samples():
    summary = load_test.latency_summary([0.010, 0.020, 0.030, 0.040])
    assert summary["count"] == 4
    assert (summary["min_ms"], summary["max_ms"]) == pytest.approx((10, 40))
    assert summary["p50_ms"] == pytest.approx(25) and summary["p99_ms"] == pytest.approx(39.7)
    assert load_test.latency_summary([]) is None


def test_linear_fit_recovers_fixed_and_per_record_cost():
    # 30 ms + 4 ms a record, exactly
    assert load_test.linear_fit([10, 50, 100], [70, 230, 430]) == pytest.approx((30, 4))
    # one batch size only: no intercept can be told apart, everything is per record
    assert load_test.linear_fit([100, 100], [400, 440]) == pytest.approx((0, 4.2))
    with pytest.raises(ValueError):
        load_test.linear_fit([], [])


def test_rate_series_counts_events_per_second_bin():
    xs, rates = load_test.rate_series([0.1, 0.5, 0.9, 2.2, 2.3], 0.0)
    assert xs == [0.0, 1.0, 2.0] and rates == [3, 0, 2]
    assert load_test.rate_series([], 0.0) == ([], [])
    assert load_test.per_thousand(5, 2500) == 2.0 and load_test.per_thousand(5, 0) == 0.0


def test_counter_delta_keeps_what_changed():
    assert load_test.counter_delta({"a": 1, "b": 2}, {"a": 1, "b": 5, "c": 1}) == {"b": 3, "c": 1}


def test_stage_latencies_start_at_the_put_of_the_same_bar():
    observations = load_test.Observations(put_at={("A", 60): 100.0, ("A", 120): 101.0})
    observations.stored_at = {("A", 60): 100.25, ("A", 120): 101.5}
    observations.alert_queued_at = {("A", 120): 102.0, ("B", 60): 5.0}  # B was never put in this run: ignored
    stages = load_test.stage_latencies(observations, {("A", 120): 101.75}, {})
    assert stages["bar stored"] == pytest.approx([0.25, 0.5])
    assert stages["pattern stored"] == pytest.approx([0.75])
    assert stages["alert queued"] == pytest.approx([1.0])
    assert stages["approval request sent"] == []


def test_alert_keys_come_from_alerts_and_approval_requests():
    alert = {"symbol": "LAB12-003", "endTimestamp": 1_700_000_040, "pattern": "head-and-shoulders"}
    assert load_test.alert_key(json.dumps(alert)) == ("LAB12-003", 1_700_000_040)
    assert load_test.alert_key(json.dumps({"approveUrl": "x", "alert": alert})) == ("LAB12-003", 1_700_000_040)
    assert load_test.alert_key("not json") is None and load_test.alert_key(json.dumps({"symbol": "X"})) is None


def test_generated_bars_come_one_list_per_minute_with_every_symbol_and_a_planted_series():
    symbols = load_test.run_symbols(10, "AB12")
    assert symbols[0] == "LAB12-000" and len(symbols[9]) <= 12
    bar_times = load_test.generate_bars(symbols, 5, start=1_700_000_000)
    assert len(bar_times) == 5 and all(len(bars) == 10 for bars in bar_times)
    assert [bars[0]["timestamp"] for bars in bar_times] == [1_700_000_000 + 60 * i for i in range(5)]
    assert {b["symbol"] for b in bar_times[0]} == set(symbols)
    assert all(b["low"] <= min(b["open"], b["close"]) and b["high"] >= max(b["open"], b["close"]) for bars in bar_times for b in bars)
    longer = load_test.generate_bars(symbols, 300, start=0)  # the planted series (~110 bars) continues as a walk
    assert len(longer) == 300 and all(len(bars) == 10 for bars in longer)


def test_the_invoker_wrapper_notes_stored_bars_and_queued_alerts():
    observations = load_test.Observations()

    class Invocation:
        def __init__(self, payload, failed=False):
            self.payload, self.failed = payload, failed

    class Invoker:
        def invoke(self, function, event):
            return Invocation({"batchItemFailures": [{"itemIdentifier": "2"}]})

    invoker = Invoker()
    load_test.observe_invocations(invoker, observations, clock_offset=10.0)
    bars = [{"symbol": "A", "timestamp": 60}, {"symbol": "B", "timestamp": 60}]
    kinesis = {"Records": [{"eventSource": "aws:kinesis", "kinesis": {"sequenceNumber": str(i + 1), "data": base64.b64encode(json.dumps(b).encode()).decode()}}
                           for i, b in enumerate(bars)]}
    invoker.invoke(None, kinesis)
    sqs = {"Records": [{"eventSource": "aws:sqs", "body": json.dumps({"symbol": "A", "endTimestamp": 60}), "attributes": {"SentTimestamp": "20000"}}]}
    invoker.invoke(None, sqs)

    assert set(observations.stored_at) == {("A", 60)}  # B's record was reported as failed
    assert observations.consumer_calls[0][0] == 2
    assert observations.alert_queued_at == {("A", 60): pytest.approx(10.0)}  # 20 s on the platform clock, 10 s ahead


# --- the emulator's call counter ---------------------------------------------------------------------------------


def test_item_sizes_follow_dynamodbs_rules():
    # "PK" (2) + "BAR#AAPL" (8) = 10; "SK" (2) + "0001700000000" (13) = 15;
    # "close" (5) + 123.45 (5 significant digits -> 1 + 3 = 4) = 9; "ok" (2) + BOOL 1 = 3
    item = {"PK": {"S": "BAR#AAPL"}, "SK": {"S": "0001700000000"}, "close": {"N": "123.45"}, "ok": {"BOOL": True}}
    assert call_counts.item_size(item) == 10 + 15 + 9 + 3
    # a list of two numbers: 3 + (1 + 2) + (1 + 2) = 9, plus the name "xs" (2)
    assert call_counts.item_size({"xs": {"L": [{"N": "1"}, {"N": "22"}]}}) == 11


def test_request_units_round_up_per_item_and_per_read():
    small = {"PK": {"S": "x"}}
    big = {"PK": {"S": "x" * 2000}}  # 2,002 bytes -> 2 write units
    units = call_counts.dynamodb_units("BatchWriteItem", {"RequestItems": {"T": [{"PutRequest": {"Item": small}}, {"PutRequest": {"Item": big}}]}},
                                       {"UnprocessedItems": {}})
    assert units == {"T": {"writeUnits": 3, "itemsWritten": 2}}
    # 3 items of 2,002 bytes = 6,006 bytes -> 2 units of 4 KB strongly consistent, 1 eventually consistent
    read = {"Items": [big, big, big]}
    assert call_counts.dynamodb_units("Query", {"TableName": "T", "ConsistentRead": True}, read)["T"]["readUnits"] == 2
    assert call_counts.dynamodb_units("Query", {"TableName": "T"}, read)["T"]["readUnits"] == 1
    assert call_counts.dynamodb_units("Query", {"TableName": "T"}, {"Items": []})["T"]["readUnits"] == 0.5


def test_the_emulator_counts_calls_and_request_units(aws):
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    dynamodb = session.client("dynamodb", endpoint_url=aws.endpoint)
    dynamodb.create_table(TableName="CallCountTest", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}])
    before = admin.call_counts(aws.endpoint)
    dynamodb.put_item(TableName="CallCountTest", Item={"PK": {"S": "a"}, "blob": {"S": "x" * 1500}})
    dynamodb.get_item(TableName="CallCountTest", Key={"PK": {"S": "a"}}, ConsistentRead=True)
    aws.sqs.list_queues()
    after = admin.call_counts(aws.endpoint)

    calls = load_test.counter_delta(before["calls"], after["calls"])
    assert calls["dynamodb.PutItem"] == 1 and calls["dynamodb.GetItem"] == 1 and calls["sqs.ListQueues"] == 1
    units = load_test.counter_delta(before["dynamodb"].get("CallCountTest", {}), after["dynamodb"]["CallCountTest"])
    # the item: "PK" + "a" = 3, "blob" + 1,500 = 1,504 -> 1,507 bytes: 2 write units, 1 strongly consistent read unit
    assert units == {"writeUnits": 2, "itemsWritten": 1, "readUnits": 1, "itemsRead": 1,
                     "PutItem.writeUnits": 2, "PutItem.itemsWritten": 1, "GetItem.readUnits": 1, "GetItem.itemsRead": 1}


def test_model_inputs_count_one_history_query_a_bar_whatever_the_batches_of_the_run():
    # 200 bars stored in 4 consumer invocations; the run packed several bars of a symbol into a batch, so it
    # made only 20 Queries (2.0 RRU each = 40 RRU) for 200 bars. In production (one bar per symbol per batch)
    # every bar costs one Query: 2.0 RRU, plus the other reads (4 RRU of GetItem over 200 bars = 0.02).
    # Writes: 210 WRU / 200 bars = 1.05. Consumer write calls: 8 BatchWriteItem + 10 PutItem + 2 UpdateItem
    # = 20 over 200 bars = 0.1 a bar, plus the Query: 1.1 calls a record.
    units = {"T": {"writeUnits": 210, "readUnits": 44, "Query.readUnits": 40, "GetItem.readUnits": 4}}
    calls = {"dynamodb.Query": 20, "dynamodb.BatchWriteItem": 8, "dynamodb.PutItem": 10, "dynamodb.UpdateItem": 2,
             "dynamodb.GetItem": 4, "sqs.SendMessageBatch": 2}
    observations = load_test.Observations(consumer_calls=[(50, 1.0)] * 4, other_calls=[0.04, 0.06])
    report = {"per_1000_bars": {"lambda_invocations": 30.0, "step_functions_executions": 5.0,
                                "eventbridge_put_events_calls": 5.0, "sns_publish_calls": 10.0},
              "consumer": {"cpu_ms_per_record": 0.8, "log_bytes_per_invocation": 2000.0}}

    inputs = load_test.model_inputs(report, units, calls, 200, observations, 60.0, None, 120.0, 190.0)

    assert inputs["dynamodb_write_units"] == pytest.approx(1.05)
    assert inputs["dynamodb_read_units"] == pytest.approx(2.02)
    assert inputs["dynamodb_calls_per_record"] == pytest.approx(1.1)
    assert inputs["other_lambda_invocations_per_1000"] == pytest.approx(30 - 20)  # 4 consumer calls / 200 bars = 20 per 1,000
    assert inputs["other_lambda_ms_per_invocation"] == pytest.approx(50)
    assert inputs["sqs_requests_per_1000"] == pytest.approx(30)  # 2 sends x 3 requests / 200 bars
    assert inputs["express_seconds_per_execution"] == 2.0  # no execution measured
    from tooling import capacity_model

    assert capacity_model.per_bar_from_report({"model_inputs": inputs}, source="test").consumer_cpu_ms_per_record == 0.8
    with pytest.raises(ValueError, match="no bar was stored"):
        load_test.model_inputs(report, units, calls, 0, observations, 60.0, None, 120.0, 190.0)
