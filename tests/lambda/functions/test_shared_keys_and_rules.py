"""Key builders, threshold rules, approval tokens and metric chunking: pure code, property-tested."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambda_testkit import metric_values
from patternwatch_shared import keys, thresholds
from patternwatch_shared.approvals import MalformedToken, approve_link, new_token, token_hash
from patternwatch_shared.names.table import TIMESTAMP_KEY_DIGITS
from patternwatch_shared.telemetry import DimensionedMetrics

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.just(timezone.utc)
)


@given(st.integers(0, 10**12 - 1), st.integers(0, 10**12 - 1))
def test_timestamp_keys_sort_like_the_numbers(a, b):
    assert (keys.timestamp_key(a) < keys.timestamp_key(b)) == (a < b)
    assert len(keys.timestamp_key(a)) == TIMESTAMP_KEY_DIGITS


@pytest.mark.parametrize("bad", [-1, 10**12])
def test_timestamp_key_refuses_values_that_would_not_sort(bad):
    with pytest.raises(ValueError):
        keys.timestamp_key(bad)


@given(moments, moments)
def test_recent_sort_keys_sort_like_detection_times(a, b):
    ka, kb = keys.recent_sort_key(a, "AAPL", "double-top"), keys.recent_sort_key(b, "AAPL", "double-top")
    assert (ka < kb) == (a < b)


def test_key_formats_match_the_documented_design():
    moment = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert keys.bar_partition_key("AAPL") == "BAR#AAPL"
    assert keys.bar_sort_key(1_700_000_000) == "001700000000"
    assert keys.pattern_partition_key("AAPL") == "PATTERN#AAPL"
    assert keys.pattern_sort_key(1_700_000_000, "double-top") == "001700000000#double-top"
    assert keys.recent_partition_key(moment) == "RECENT#2026-03-02"
    assert keys.recent_sort_key(moment, "AAPL", "double-top") == "2026-03-02T14:30:00.000000Z#AAPL#double-top"


def pattern(confidence: float, symbol: str = "AAPL") -> dict:
    return {"confidence": confidence, "symbol": symbol, "pattern": "double-top"}


@given(st.lists(st.floats(0, 1), max_size=50), st.floats(0, 1), st.integers(1, 10))
def test_threshold_rule(confidences, confidence_threshold, min_breaches):
    result = thresholds.evaluate(
        [pattern(c) for c in confidences], confidence_threshold=confidence_threshold, min_breaches=min_breaches
    )
    breaches = [c for c in confidences if c >= confidence_threshold]
    assert result.evaluated == len(confidences)
    assert len(result.breaches) == len(breaches)
    assert result.exceeded == (len(breaches) >= min_breaches)


def test_threshold_alert_is_the_same_for_the_same_window():
    result = thresholds.evaluate([pattern(0.97, "MSFT"), pattern(0.99, "NVDA")], confidence_threshold=0.9, min_breaches=2)
    end = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    make = lambda: thresholds.threshold_alert(  # noqa: E731
        result, window_start=end - timedelta(minutes=5), window_end=end, confidence_threshold=0.9, min_breaches=2
    )
    assert make() == make()
    assert make().details["topSymbol"] == "NVDA"


def test_tokens_are_128_bit_hex_and_only_their_hash_is_kept():
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in tokens)
    token = next(iter(tokens))
    assert re.fullmatch(r"[0-9a-f]{64}", token_hash(token)) and token not in token_hash(token)
    assert approve_link("https://x/v1/", token) == f"https://x/v1/approve/{token}"


@given(st.text(max_size=80))
def test_only_well_formed_tokens_hash(text):
    if re.fullmatch(r"[0-9a-f]{32}", text):
        assert len(token_hash(text)) == 64
    else:
        with pytest.raises(MalformedToken):
            token_hash(text)


def test_dimensioned_metrics_split_blobs_at_the_emf_value_limit(capsys):
    metrics = DimensionedMetrics("test-service")
    metrics.extend("ConfidenceScore", "Percent", "PatternType", "double-top", [90.0] * 250)
    metrics.add("ConfidenceScore", "Percent", "PatternType", "head-and-shoulders", 99.0)
    metrics.flush()
    out = capsys.readouterr().out
    assert len(metric_values(out, "ConfidenceScore", PatternType="double-top")) == 250
    assert metric_values(out, "ConfidenceScore", PatternType="head-and-shoulders") == [99.0]
    assert max(len(line) for line in out.splitlines()) < 10_000
