"""Decoders and validators: every bad input is a RecordRejected with a reason, every good one decodes."""
from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambda_testkit import alert_body, b64, bar_json
from patternwatch_shared.decoding import (
    MAX_BAR_JSON_BYTES,
    RecordRejected,
    decode_alert_body,
    decode_bar_record,
)
from patternwatch_shared.models import MAX_EPOCH_SECONDS, MIN_EPOCH_SECONDS, Bar

T0 = 1_700_000_000

symbols = st.from_regex(r"\A[A-Z][A-Z0-9.\-]{0,11}\Z")
prices = st.floats(min_value=0.0001, max_value=1e6, allow_nan=False, allow_infinity=False)
epochs = st.integers(min_value=MIN_EPOCH_SECONDS, max_value=MAX_EPOCH_SECONDS)


@st.composite
def valid_bars(draw) -> dict:
    low = draw(prices)
    high = draw(st.floats(min_value=low, max_value=low * 2, allow_nan=False))
    open_ = draw(st.floats(min_value=low, max_value=high, allow_nan=False))
    close = draw(st.floats(min_value=low, max_value=high, allow_nan=False))
    return {
        "symbol": draw(symbols),
        "timestamp": draw(epochs),
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": draw(st.one_of(st.integers(0, 10**12), st.just(0.0), st.floats(1e-130, 1e12))),
    }


@settings(deadline=None)  # what is checked is the values; a loaded machine made one example take over 200 ms
@given(valid_bars())
def test_every_valid_bar_decodes_to_the_same_values(raw):
    bar = decode_bar_record(b64(raw))
    assert isinstance(bar, Bar)
    assert (bar.symbol, bar.timestamp) == (raw["symbol"], raw["timestamp"])
    for field in ("open", "high", "low", "close", "volume"):
        assert getattr(bar, field) == raw[field]


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_arbitrary_text_is_rejected_never_crashes(text):
    with pytest.raises(RecordRejected):
        decode_bar_record(text)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_rejected_never_crash(payload):
    with pytest.raises(RecordRejected):
        decode_bar_record(base64.b64encode(payload).decode())


@given(valid_bars(), st.sampled_from(["symbol", "timestamp", "open", "high", "low", "close", "volume"]))
def test_any_missing_field_is_rejected_and_named(raw, field):
    del raw[field]
    with pytest.raises(RecordRejected, match=field):
        decode_bar_record(b64(raw))


@given(
    valid_bars(),
    st.sampled_from(["open", "high", "low", "close", "volume", "timestamp"]),
    st.one_of(st.text(max_size=5), st.booleans(), st.none(), st.lists(st.integers(), max_size=2)),
)
def test_wrong_types_are_rejected(raw, field, value):
    raw[field] = value  # short text is never a valid ISO 8601 timestamp either
    with pytest.raises(RecordRejected):
        decode_bar_record(b64(raw))


@given(valid_bars(), st.sampled_from(["open", "high", "low", "close"]), st.floats(max_value=0, allow_nan=False))
def test_zero_or_negative_prices_are_rejected(raw, field, value):
    raw[field] = value
    with pytest.raises(RecordRejected):
        decode_bar_record(b64(raw))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("!!!not-base64!!!", "not valid base64"),
        ("aGVsbG8", "not valid base64"),  # missing padding
        ("", "missing"),
        (b64("not json"), "Invalid JSON"),
        (b64("[1, 2, 3]"), "object"),
        (b64(b"\xff\xfe\x00"), "invalid bar"),
        (b64('{"symbol":"AAPL","timestamp":1700000000,"open":NaN,"high":2,"low":1,"close":1.5,"volume":1}'), "open"),
        (b64('{"symbol":"AAPL","timestamp":1700000000,"open":1.5,"high":Infinity,"low":1,"close":1.5,"volume":1}'), "high"),
        (b64(bar_json("AAPL", T0, 10.0, high=9.0, low=9.5)), "high 9.0 is below low 9.5"),
        (b64(bar_json("AAPL", T0, 10.0, high=9.9)), "below open/close"),
        (b64(bar_json("AAPL", T0, 10.0, low=10.5, high=11)), "above open/close"),
        (b64(bar_json("AAPL", T0, 10.0, volume=-1)), "volume"),
        (b64(bar_json("AAPL", T0, 10.0, volume=float("nan"))), "volume"),
        (b64(bar_json("AAPL", T0, 10.0, extra="field")), "extra"),
        (b64(bar_json("A" * 13, T0, 10.0)), "symbol"),
        (b64(bar_json("aapl", T0, 10.0)), "symbol"),
        (b64(bar_json("AAPL", T0 * 1000, 10.0)), "timestamp"),  # milliseconds, not seconds
        (b64(bar_json("AAPL", T0 + 0.5, 10.0)), "timestamp"),
        (b64(bar_json("AAPL", True, 10.0)), "timestamp"),
        (b64(bar_json("AAPL", "2024-01-02T10:00:00", 10.0)), "timezone"),
        (b64(bar_json("AAPL", "2024-01-02T10:00:00.250Z", 10.0)), "whole second"),
        (b64(bar_json("AAPL", "yesterday", 10.0)), "ISO 8601"),
        (b64(bar_json("AAPL", T0, 10.0, open="10.0")), "open"),
        (b64(bar_json("AAPL", T0, 10.0, note="x" * 5000)), f"larger than {MAX_BAR_JSON_BYTES}"),
        (12345, "not base64 text"),
        # A repeated key would silently keep its last value.
        (b64('{"symbol":"AAPL","timestamp":1700000000,"open":1.5,"high":2,"low":1,"close":1.5,"close":1.9,"volume":1}'), "duplicate key 'close'"),
        (b64('{"symbol":"AAPL","symbol":"MSFT","timestamp":1700000000,"open":1.5,"high":2,"low":1,"close":1.5,"volume":1}'), "duplicate key 'symbol'"),
        (b64("[" * 1000 + "]" * 1000), "nested too deeply"),
    ],
)
def test_bad_records_are_rejected_with_a_reason(data, reason):
    with pytest.raises(RecordRejected) as caught:
        decode_bar_record(data)
    assert reason in str(caught.value)
    assert len(str(caught.value)) <= 520


def flat_bar(price: float, volume: float = 1.0) -> dict:
    return bar_json("AAPL", T0, price, high=price, low=price, volume=volume)


# DynamoDB numbers: magnitude from 1e-130 to 9.9999999999999999999999999999999999999e+125 (or 0).
# These passed validation, then failed the whole BatchWriteItem chunk they were in.
@pytest.mark.parametrize(
    ("bar", "field"),
    [
        (flat_bar(1e200), "open"),
        (flat_bar(1e-200), "open"),
        (flat_bar(5e-324), "open"),
        (flat_bar(1e126), "open"),
        (flat_bar(9.9e-131), "open"),
        (flat_bar(10.0, volume=1e300), "volume"),
        (flat_bar(10.0, volume=5e-324), "volume"),
        (flat_bar(10.0, volume=10**200), "volume"),
        (bar_json("AAPL", T0, 10.0, high=1e130), "high"),
    ],
)
def test_numbers_dynamodb_cannot_store_are_rejected_with_the_field_and_the_reason(bar, field):
    with pytest.raises(RecordRejected) as caught:
        decode_bar_record(b64(bar))
    assert f"{field}: Value error" in str(caught.value)
    assert "outside the range DynamoDB can store" in str(caught.value)


@pytest.mark.parametrize(
    "bar",
    [flat_bar(1e-130), flat_bar(math.nextafter(1e126, 0)), flat_bar(10.0, volume=0), flat_bar(10.0, volume=1e-130), flat_bar(10.0, volume=10**20)],
)
def test_numbers_at_dynamodbs_limits_are_accepted(bar):
    decoded = decode_bar_record(b64(bar))
    assert (decoded.close, decoded.volume) == (bar["close"], bar["volume"])


@given(st.floats(min_value=5e-324, max_value=1.7e308))
def test_a_positive_price_is_accepted_exactly_when_dynamodb_can_store_it(price):
    from decimal import Decimal

    storable = Decimal("1e-130") <= Decimal(repr(price)) <= Decimal("9.9999999999999999999999999999999999999e+125")
    if storable:
        assert decode_bar_record(b64(flat_bar(price))).close == price
    else:
        with pytest.raises(RecordRejected, match="outside the range DynamoDB can store"):
            decode_bar_record(b64(flat_bar(price)))


def test_iso_timestamps_are_normalised_to_epoch_seconds():
    bar = decode_bar_record(b64(bar_json("BRK.B", "2024-01-02T10:00:00+00:00", 10.0)))
    assert bar.timestamp == 1704189600
    assert decode_bar_record(b64(bar_json("BRK.B", "2024-01-02T11:00:00+01:00", 10.0))).timestamp == 1704189600


def test_rejection_reason_does_not_echo_huge_input():
    huge_symbol = "A" * 1000
    with pytest.raises(RecordRejected) as caught:
        decode_bar_record(b64(bar_json(huge_symbol, T0, 10.0)))
    assert huge_symbol not in str(caught.value)


# --- alert bodies -----------------------------------------------------------------------------


def test_valid_alert_decodes():
    alert = decode_alert_body(json.dumps(alert_body()))
    assert (alert.symbol, alert.pattern, alert.severity) == ("AAPL", "double-top", "HIGH")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "missing"),
        (None, "missing"),
        ("{not json", "Invalid JSON"),
        (json.dumps(alert_body(severity="URGENT")), "severity"),
        (json.dumps(alert_body(confidence=1.5)), "confidence"),
        (json.dumps(alert_body(confidence="0.9")), "confidence"),
        (json.dumps(alert_body(unexpected=1)), "unexpected"),
        (json.dumps({k: v for k, v in alert_body().items() if k != "alertId"}), "alertId"),
        (json.dumps(alert_body(symbol=None)), "needs symbol and pattern"),
        (json.dumps(alert_body(alertId="x" * 300)), "alertId"),
        ("x" * 20_000, "longer than"),
        ('{"alertId":"a","source":"stream","severity":"HIGH","detectedAt":"t","confidence":NaN,"symbol":"A","pattern":"double-top"}', "confidence"),
        # Non-finite numbers in details were accepted, then re-emitted as invalid JSON (NaN tokens).
        (json.dumps(alert_body(details={"ratio": float("nan")})), "details.ratio"),
        (json.dumps(alert_body(details={"ratio": float("inf")})), "details.ratio"),
        (json.dumps(alert_body(details={"ratio": float("-inf")})), "details.ratio"),
        (json.dumps(alert_body(details={"ok": 1.5, "huge": 1e400})), "details.huge"),  # 1e400 reads as infinity
        ('{"alertId":"a","alertId":"b","source":"threshold","severity":"HIGH","detectedAt":"t","confidence":0.5}', "duplicate key 'alertId'"),
        (json.dumps(alert_body()).replace('"severity": "HIGH"', '"severity": "LOW", "severity": "CRITICAL"'), "duplicate key 'severity'"),
        (json.dumps(alert_body(details={"a": 1})).replace('{"a": 1}', '{"a": 1, "a": 2}'), "duplicate key 'a'"),
    ],
)
def test_bad_alert_bodies_are_rejected(body, reason):
    with pytest.raises(RecordRejected) as caught:
        decode_alert_body(body)
    assert reason in str(caught.value)


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_arbitrary_alert_text_is_rejected_never_crashes(text):
    with pytest.raises(RecordRejected):
        decode_alert_body(text)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_confidence_outside_unit_interval_is_rejected(value):
    body = json.dumps(alert_body(confidence=value))  # json.dumps writes NaN/Infinity tokens
    if math.isfinite(value) and 0 <= value <= 1:
        assert decode_alert_body(body).confidence == value
    else:
        with pytest.raises(RecordRejected):
            decode_alert_body(body)
