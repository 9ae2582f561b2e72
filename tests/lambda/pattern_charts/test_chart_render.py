"""The renderer draws what the tiers say: alerting matches labelled with their lines, the rest faintly, weak
matches left out and counted, labelled axes, and the same bytes for the same chart."""
from __future__ import annotations

import io
import subprocess
import sys

import pytest
from PIL import Image

from pattern_charts.render import ChartMatch, render_chart
from pattern_engine import detect
from pattern_engine.synthetic import planted_bar_records

START = 1_609_718_400  # 2021-01-04


@pytest.fixture(scope="module")
def planted_series():
    """A seeded series with a planted head-and-shoulders, and the engine's matches on it."""
    rows = planted_bar_records("SYNTH", "head-and-shoulders", seed=7, start=START, scale=100)
    columns = {name: [row[name] for row in rows] for name in ("timestamp", "open", "high", "low", "close", "volume")}
    matches = [
        ChartMatch(
            m.pattern, m.confidence, rows[m.start]["timestamp"], rows[m.end]["timestamp"],
            tuple((rows[i]["timestamp"], price) for i, price in m.extrema),
        )
        for m in detect(columns)
    ]
    return rows, matches


def _fake(pattern: str, confidence: float, rows, first: int, *, alerted: bool = False) -> ChartMatch:
    """A match on three bars of `rows` (a trough between two peaks), for the tiers the engine did not produce."""
    picked = rows[first], rows[first + 5], rows[first + 10]
    extrema = ((picked[0]["timestamp"], picked[0]["high"]), (picked[1]["timestamp"], picked[1]["low"]), (picked[2]["timestamp"], picked[2]["high"]))
    return ChartMatch(pattern, confidence, picked[0]["timestamp"], picked[2]["timestamp"], extrema, alerted=alerted)


def test_an_alerting_match_is_drawn_prominently_with_labelled_extrema_and_its_neckline(planted_series):
    rows, matches = planted_series
    alerting = [m for m in matches if m.confidence >= 0.9]
    assert [m.pattern for m in alerting] == ["head-and-shoulders"]
    chart = render_chart("SYNTH", rows, matches, headline="planted series", price_basis="synthetic")

    (drawn,) = chart.prominent
    assert drawn.pattern == "head-and-shoulders" and drawn.tier == "prominent"
    assert [label for label, _, _ in drawn.labels] == ["LS", "N1", "H", "N2", "RS"]
    assert [(ts, price) for _, ts, price in drawn.labels] == list(alerting[0].extrema)
    assert [line.name for line in drawn.lines] == ["neckline"]
    assert drawn.lines[0].start[0] == alerting[0].extrema[1][0]  # from N1 ...
    assert drawn.lines[0].end[0] == alerting[0].end_timestamp  # ... to the bar the pattern was confirmed on
    # The figure itself holds those texts, and the legend names the alert.
    assert {"LS", "N1", "H", "N2", "RS", "neckline"} <= set(chart.texts)
    assert f"head-and-shoulders {alerting[0].confidence:.2f} (alert)" in chart.legend


def test_other_matches_are_faint_or_left_out_with_a_count(planted_series):
    rows, matches = planted_series
    extra = [_fake("double-top", 0.62, rows, 5), _fake("double-top", 0.71, rows, 20), _fake("triangle-top", 0.2, rows, 40), _fake("rectangle-top", 0.49, rows, 60)]
    chart = render_chart("SYNTH", rows, [*matches, *extra], headline="planted series", price_basis="synthetic")

    faint = [m for m in [*matches, *extra] if 0.5 <= m.confidence < 0.9]
    assert sorted((m.pattern, m.confidence) for m in chart.faint) == sorted((m.pattern, m.confidence) for m in faint)
    assert all(m.tier == "faint" and m.labels == () and m.lines == () for m in chart.faint)
    omitted = [m for m in [*matches, *extra] if m.confidence < 0.5]
    assert chart.omitted == len(omitted) >= 2
    assert f"{chart.omitted} matches below 0.50 not drawn" in chart.legend
    double_tops = sorted(m.confidence for m in faint if m.pattern == "double-top")
    assert f"double-top x{len(double_tops)} ({double_tops[0]:.2f}-{double_tops[-1]:.2f})" in chart.legend
    # Faint matches carry a small tag with their name; extrema labels belong to the alert only.
    assert "double-top 0.62" in chart.texts and "triangle-top 0.20" not in chart.texts
    assert chart.texts.count("LS") == 1


def test_axes_have_labels_with_units_and_the_title_says_what_the_prices_are(planted_series):
    rows, matches = planted_series
    chart = render_chart("AAPL", rows, matches, headline="750 daily bars", price_basis="split- and dividend-adjusted")
    assert chart.price_label == "Price (USD)"
    assert chart.volume_label == "Volume (shares)"
    assert chart.time_label == "Date (UTC)"
    assert chart.title == "AAPL: 750 daily bars\nPrices in USD, split- and dividend-adjusted; volume in shares"
    assert chart.bars == len(rows)
    image = Image.open(io.BytesIO(chart.png))
    assert image.format == "PNG" and image.width > 1000 and image.height > 500


def test_the_alerts_own_match_is_prominent_whatever_its_confidence(planted_series):
    rows, _ = planted_series
    chart = render_chart("SYNTH", rows, [_fake("double-top", 0.4, rows, 30, alerted=True)], headline="h", price_basis="p")
    (drawn,) = chart.prominent
    assert [label for label, _, _ in drawn.labels] == ["T1", "V", "T2"]
    assert [line.name for line in drawn.lines] == ["neckline"]
    assert chart.omitted == 0 and chart.faint == ()


def test_a_match_outside_the_window_is_counted_not_drawn(planted_series):
    rows, _ = planted_series
    inside = rows[:30]
    chart = render_chart("SYNTH", inside, [_fake("double-top", 0.95, rows, 50), _fake("double-top", 0.6, rows, 60)], headline="h", price_basis="p")
    assert chart.prominent == () and chart.faint == ()
    assert chart.outside_window == 2
    assert chart.legend == ("no detected patterns",)


def test_the_same_chart_gives_the_same_bytes(planted_series):
    rows, matches = planted_series
    first = render_chart("SYNTH", rows, matches, headline="h", price_basis="p")
    second = render_chart("SYNTH", rows, matches, headline="h", price_basis="p")
    assert first.png == second.png
    assert first.metadata() == second.metadata()
    assert first.metadata()["prominent"][0]["labels"][2]["label"] == "H"


def test_columns_and_rows_draw_the_same_chart(planted_series):
    rows, matches = planted_series
    columns = {name: [row[name] for row in rows] for name in ("timestamp", "open", "high", "low", "close", "volume")}
    assert render_chart("SYNTH", columns, matches, headline="h", price_basis="p").png == render_chart("SYNTH", rows, matches, headline="h", price_basis="p").png


def test_no_bars_is_a_clear_error():
    with pytest.raises(ValueError, match="no bars to draw"):
        render_chart("SYNTH", [], [], headline="h", price_basis="p")


def test_importing_the_renderer_loads_no_plotting_library():
    """Handlers import the evidence code at start; matplotlib, pandas and mplfinance load on the first render."""
    code = (
        "import sys, pattern_charts, pattern_charts.render, pattern_charts.annotations, patternwatch_shared.alert_evidence; "
        "print(sorted(m for m in ('matplotlib', 'pandas', 'mplfinance', 'numpy') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
