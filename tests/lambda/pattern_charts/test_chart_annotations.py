"""What a chart says about a match: tiers by confidence, extrema labels, necklines and trendlines."""
from __future__ import annotations

import pytest

from pattern_charts.annotations import (
    ALERT_CONFIDENCE_THRESHOLD, DISPLAY_CONFIDENCE_THRESHOLD, DisplaySettings, Line, annotate,
)
from pattern_engine import PATTERN_NAMES, detect
from pattern_engine.synthetic import planted
from patternwatch_infra.config import AlertConfig


def test_the_alert_threshold_is_the_alerting_rules_and_the_display_threshold_is_below_it():
    assert ALERT_CONFIDENCE_THRESHOLD == AlertConfig().confidence_threshold
    assert 0 < DISPLAY_CONFIDENCE_THRESHOLD < ALERT_CONFIDENCE_THRESHOLD


@pytest.mark.parametrize(
    ("confidence", "alerted", "tier"),
    [
        (0.97, False, "prominent"),
        (0.9, False, "prominent"),  # the alerting rule is "confidence >= the alert threshold"
        (0.8999999, False, "faint"),
        (DISPLAY_CONFIDENCE_THRESHOLD, False, "faint"),
        (DISPLAY_CONFIDENCE_THRESHOLD - 0.001, False, "omitted"),
        (0.04, False, "omitted"),
        (0.3, True, "prominent"),  # the alert's own match is prominent whatever its score
    ],
)
def test_tiers(confidence, alerted, tier):
    assert DisplaySettings().tier(confidence, alerted=alerted) == tier


def test_settings_refuse_a_display_threshold_above_the_alert_threshold():
    with pytest.raises(ValueError, match="display threshold"):
        DisplaySettings(display_threshold=0.95, alert_threshold=0.9)
    assert DisplaySettings(display_threshold=0.2).as_dict() == {"displayThreshold": 0.2, "alertThreshold": 0.9}


def test_head_and_shoulders_names_its_shoulders_head_and_neckline_to_the_end_of_the_match():
    points = [(0, 10.0), (4, 8.0), (8, 12.0), (12, 8.4), (16, 10.1)]
    annotation = annotate("head-and-shoulders", points, end_position=20)
    assert annotation.labels == ("LS", "N1", "H", "N2", "RS")
    assert annotation.highs == (True, False, True, False, True)
    (neckline,) = annotation.lines
    assert neckline.name == "neckline" and neckline.start == (4.0, 8.0)
    # Through N1 and N2, extended to bar 20: slope 0.05 per bar.
    assert neckline.end[0] == 20.0 and neckline.end[1] == pytest.approx(8.8)


def test_inverse_head_and_shoulders_draws_its_neckline_through_the_peaks():
    points = [(0, 8.0), (4, 10.0), (8, 6.0), (12, 10.0), (16, 8.1)]
    annotation = annotate("inverse-head-and-shoulders", points, end_position=18)
    assert annotation.labels == ("LS", "N1", "H", "N2", "RS")
    assert annotation.highs == (False, True, False, True, False)
    assert annotation.lines == (Line("neckline", (4.0, 10.0), (18.0, 10.0)),)


def test_double_top_and_bottom_name_their_tops_and_draw_a_level_neckline():
    top = annotate("double-top", [(0, 10.0), (12, 9.0), (25, 10.05)], end_position=28)
    assert top.labels == ("T1", "V", "T2")
    assert top.lines == (Line("neckline", (0.0, 9.0), (28.0, 9.0)),)
    bottom = annotate("double-bottom", [(0, 5.0), (12, 6.0), (25, 5.02)], end_position=27)
    assert bottom.labels == ("B1", "P", "B2")
    assert bottom.highs == (False, True, False)
    assert bottom.lines == (Line("neckline", (0.0, 6.0), (27.0, 6.0)),)


def test_rectangles_draw_resistance_and_support_at_the_mean_of_their_tops_and_bottoms():
    annotation = annotate("rectangle-top", [(0, 10.0), (4, 9.0), (8, 10.1), (12, 9.1), (16, 9.9)], end_position=19)
    assert annotation.labels == ("H1", "L1", "H2", "L2", "H3")
    resistance, support = annotation.lines
    assert resistance.name == "resistance" and resistance.start == (0.0, pytest.approx(10.0)) and resistance.end == (16.0, pytest.approx(10.0))
    assert support.name == "support" and support.start[1] == pytest.approx(9.05) and support.end[1] == pytest.approx(9.05)


def test_triangles_fit_a_trendline_through_the_highs_and_one_through_the_lows():
    # Ascending triangle: flat tops at 10, rising lows 8 -> 9 (exactly on lines, so the fit is exact).
    points = [(0, 7.5), (4, 10.0), (8, 8.5), (12, 10.0), (16, 9.5)]
    annotation = annotate("ascending-triangle", points, end_position=19)
    assert annotation.labels == ("L1", "H1", "L2", "H2", "L3")
    upper, lower = annotation.lines
    assert upper.name == "upper trendline" and upper.start == (0.0, pytest.approx(10.0)) and upper.end == (16.0, pytest.approx(10.0))
    assert lower.name == "lower trendline" and lower.start == (0.0, pytest.approx(7.5)) and lower.end == (16.0, pytest.approx(9.5))


def test_a_named_pattern_with_an_unexpected_number_of_extrema_gets_generic_labels():
    annotation = annotate("head-and-shoulders", [(0, 10.0), (3, 9.0), (6, 11.0)], end_position=8)
    assert annotation.labels == ("H1", "L1", "H2")
    assert [line.name for line in annotation.lines] == ["upper trendline", "lower trendline"]


def test_fewer_than_two_extrema_get_labels_and_no_lines():
    assert annotate("double-top", [(3, 10.0)], end_position=5) == annotate("double-top", [(3, 10.0)], end_position=9)
    assert annotate("double-top", [(3, 10.0)], end_position=5).labels == ("H1",)
    assert annotate("double-top", [], end_position=5).lines == ()


@pytest.mark.parametrize("pattern", PATTERN_NAMES)
def test_every_pattern_the_engine_finds_gets_a_label_per_extremum_and_its_lines(pattern):
    series = planted(pattern, 0.002, seed=11)
    (match, *_) = [m for m in detect(series.bars, patterns=[pattern])]
    annotation = annotate(pattern, match.extrema, match.end)
    assert len(annotation.labels) == len(match.extrema) == len(annotation.highs)
    assert len(set(annotation.labels)) == len(annotation.labels)
    assert annotation.lines, f"{pattern} draws no line"
    for line in annotation.lines:
        assert match.start <= line.start[0] <= line.end[0] <= match.end
