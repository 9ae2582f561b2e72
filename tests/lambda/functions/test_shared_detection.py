"""The engine bridge, its X-Ray subsegment and severity rules."""
from __future__ import annotations

import pytest

from lambda_testkit import FakeProvider, planted_bars
from patternwatch_shared.detection import DETECTION_SUBSEGMENT, alerts, context_bars, detect_in, detection_span, severity_for
from patternwatch_shared.names.metrics import METRICS_NAMESPACE


def test_subsegment_carries_pattern_type_and_confidence():
    bars, end = planted_bars("TRC")
    provider = FakeProvider()
    with detection_span(provider, "head-and-shoulders", Symbol="TRC") as span:
        detections = detect_in(bars[: end + 1], latest_only=True, patterns=["head-and-shoulders"])
        span.record(detections)
    (name, subsegment), = provider.subsegments
    assert name == DETECTION_SUBSEGMENT
    assert subsegment.annotations["PatternType"] == "head-and-shoulders"
    assert subsegment.annotations["Symbol"] == "TRC"
    assert subsegment.annotations["MatchCount"] == 1
    assert subsegment.annotations["TopConfidence"] > 0.95
    matches = subsegment.metadata[(METRICS_NAMESPACE, "matches")]
    assert matches[0]["pattern"] == "head-and-shoulders"
    assert span.duration_ms > 0


def test_subsegment_records_a_detection_error_and_reraises():
    provider = FakeProvider()
    with pytest.raises(ValueError, match="lengths differ"):
        with detection_span(provider, "double-top"):
            raise ValueError("lengths differ")
    (_, subsegment), = provider.subsegments
    assert subsegment.annotations["DetectionFailed"] is True
    assert subsegment.metadata[(METRICS_NAMESPACE, "error")] == "ValueError: lengths differ"


def test_detect_in_maps_bar_indices_to_timestamps():
    bars, end = planted_bars("MAP", "double-top", seed=1)
    detection = next(d for d in detect_in(bars) if d.pattern == "double-top" and d.end == end)
    assert detection.end_timestamp == bars[end]["timestamp"]
    assert detection.start_timestamp == bars[detection.start]["timestamp"]
    assert [ts for ts, _ in detection.extrema][0] == detection.start_timestamp


def test_detect_latest_and_detect_agree_on_the_newest_bar():
    bars, end = planted_bars("AGR")
    window = bars[: end + 1]
    latest = detect_in(window[-context_bars():], latest_only=True)
    full = [d for d in detect_in(window) if d.end == end]
    assert [(d.pattern, d.end_timestamp) for d in latest] == [(d.pattern, d.end_timestamp) for d in full]


def test_too_few_bars_is_no_match_and_bad_bars_are_a_value_error():
    bars, _ = planted_bars("FEW")
    assert detect_in(bars[:10]) == []
    broken = [dict(bar) for bar in bars[:40]]
    broken[5]["close"] = float("nan")
    with pytest.raises(ValueError):
        detect_in(broken)


@pytest.mark.parametrize(
    ("confidence", "threshold", "severity"),
    [
        (1.0, 0.9, "CRITICAL"), (0.95, 0.9, "CRITICAL"), (0.9499, 0.9, "HIGH"), (0.9001, 0.9, "HIGH"),
        (0.9, 0.9, "HIGH"),  # at the threshold alerts (>=), so it is an alerting band
        (0.8999, 0.9, "MEDIUM"), (0.75, 0.9, "MEDIUM"), (0.5, 0.9, "LOW"),
        (0.85, 0.8, "HIGH"),  # the HIGH band starts at the environment's threshold
        (0.96, 0.97, "CRITICAL"),  # the critical cut is a constant: it does not move with the threshold
    ],
)
def test_severity_bands(confidence, threshold, severity):
    assert severity_for(confidence, threshold) == severity


def test_the_one_alert_cut_is_inclusive():
    assert alerts(0.9, 0.9) and alerts(0.91, 0.9) and not alerts(0.8999999, 0.9)


def test_the_consumer_reads_as_many_bars_as_the_engine_needs():
    """The shared default window and the context size follow the engine's own constants, not copies."""
    import pattern_engine

    from patternwatch_shared.names.messages import DETECTION_CONTEXT_BARS, DETECTION_WINDOW_BARS

    assert DETECTION_WINDOW_BARS == pattern_engine.WINDOW
    assert DETECTION_CONTEXT_BARS == context_bars()
    assert context_bars() == pattern_engine.WINDOW + pattern_engine.CONFIRM_BARS + 1
    assert context_bars(20) == 20 + pattern_engine.CONFIRM_BARS + 1
