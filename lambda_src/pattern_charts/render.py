"""The one chart renderer: candlesticks and volume (mplfinance), with the matches drawn by tier.

Serves the demo's per-symbol PNGs, the evidence chart the alert processor stores with every alert, and
the example in docs/. matplotlib, pandas and mplfinance are imported on the first render, not with this
module, so code that only might draw (a handler module at import) pays nothing for them.

`render_chart` returns the PNG and what it drew (`RenderedChart`): per match its tier, labels and lines,
the count of matches left out, the axis labels and title. Tests assert on that, and on the texts the
figure really holds.
"""
from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

from .annotations import Annotation, DisplaySettings, Tier, annotate

PRICE_CURRENCY: Final = "USD"
VOLUME_UNIT: Final = "shares"
TIME_ZONE_LABEL: Final = "UTC"
# Engine order, so a pattern keeps its colour from chart to chart.
PATTERN_ORDER: Final = (
    "head-and-shoulders", "inverse-head-and-shoulders", "broadening-top", "broadening-bottom", "triangle-top",
    "triangle-bottom", "rectangle-top", "rectangle-bottom", "double-top", "double-bottom", "ascending-triangle",
    "descending-triangle", "symmetric-triangle",
)
# Matches sit on green/red candles, so their colours are neither. Alerting matches take strong colours in
# turn; the others keep one colour per pattern (PATTERN_ORDER), the same on every chart.
PROMINENT_COLOURS: Final = ("#1f3fbf", "#8f1fbf", "#d17a00", "#007f8f", "#5f3f1f")
PATTERN_COLOURS: Final = (
    "#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e", "#393b79",
    "#843c39", "#7b4173", "#637939", "#3182bd",
)
FAINT_ALPHA: Final = 0.8
FAINT_WIDTH: Final = 1.5
DEFAULT_SIZE_INCHES: Final = (14.0, 7.5)
DEFAULT_DPI: Final = 100
BAR_COLUMNS: Final = ("timestamp", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class ChartMatch:
    pattern: str
    confidence: float
    start_timestamp: int
    end_timestamp: int
    extrema: tuple[tuple[int, float], ...]  # (epoch seconds, price), time order
    alerted: bool = False  # the alert's own match: prominent whatever its confidence


@dataclass(frozen=True)
class DrawnLine:
    name: str
    start: tuple[int, float]  # (epoch seconds, price)
    end: tuple[int, float]


@dataclass(frozen=True)
class DrawnMatch:
    pattern: str
    confidence: float
    tier: Tier
    labels: tuple[tuple[str, int, float], ...] = ()  # (label, epoch seconds, price); prominent matches only
    lines: tuple[DrawnLine, ...] = ()


@dataclass(frozen=True)
class RenderedChart:
    png: bytes
    title: str
    price_label: str
    volume_label: str
    time_label: str
    bars: int
    prominent: tuple[DrawnMatch, ...]
    faint: tuple[DrawnMatch, ...]
    omitted: int  # below the display threshold
    outside_window: int  # extrema not among the charted bars (not drawn)
    legend: tuple[str, ...]
    texts: tuple[str, ...] = field(default=())  # every text drawn on the price panel (labels, line names)
    settings: DisplaySettings = field(default_factory=DisplaySettings)

    def metadata(self) -> dict[str, Any]:
        """JSON-ready description of the chart (stored beside it in evidence.json)."""
        return {
            "title": self.title,
            "priceAxis": self.price_label,
            "volumeAxis": self.volume_label,
            "timeAxis": self.time_label,
            "bars": self.bars,
            "prominent": [_match_dict(m) for m in self.prominent],
            "faint": [_match_dict(m) for m in self.faint],
            "omittedBelowDisplayThreshold": self.omitted,
            **self.settings.as_dict(),
        }


def _match_dict(match: DrawnMatch) -> dict[str, Any]:
    return {
        "pattern": match.pattern,
        "confidence": match.confidence,
        "labels": [{"label": label, "timestamp": ts, "price": price} for label, ts, price in match.labels],
        "lines": [{"name": line.name, "from": list(line.start), "to": list(line.end)} for line in match.lines],
    }


def render_chart(
    symbol: str,
    bars: Sequence[Mapping[str, float]] | Mapping[str, Sequence[float]],
    matches: Sequence[ChartMatch],
    *,
    headline: str,
    price_basis: str,
    settings: DisplaySettings = DisplaySettings(),
    size_inches: tuple[float, float] = DEFAULT_SIZE_INCHES,
    dpi: int = DEFAULT_DPI,
) -> RenderedChart:
    """Draw `bars` (rows or columns, oldest first) and `matches` into a PNG.

    `headline` is the title's first line after the symbol (what the chart is about); `price_basis` says
    what the prices are, e.g. "split- and dividend-adjusted" or "as received on the market data stream".
    """
    columns = _columns(bars)
    if not columns["timestamp"]:
        raise ValueError("no bars to draw")
    libs = _libraries()
    timestamps = [int(ts) for ts in columns["timestamp"]]
    positions = {ts: index for index, ts in enumerate(timestamps)}
    figure, price_axis, volume_axis = _candles_and_volume(libs, columns, size_inches)
    try:
        by_tier: dict[Tier, list[ChartMatch]] = {"prominent": [], "faint": [], "omitted": []}
        for match in sorted(matches, key=lambda m: (m.end_timestamp, m.pattern)):
            by_tier[settings.tier(match.confidence, alerted=match.alerted)].append(match)
        faint = [_draw_faint(price_axis, match, points) for match in by_tier["faint"] if (points := _positions(match, positions))]
        prominent, handles = [], []
        for match in by_tier["prominent"]:
            if points := _positions(match, positions):
                colour = PROMINENT_COLOURS[len(prominent) % len(PROMINENT_COLOURS)]
                end_position = positions.get(int(match.end_timestamp), points[-1][0])
                drawn, handle = _draw_prominent(price_axis, match, points, end_position, colour, timestamps)
                prominent.append(drawn)
                handles.append(handle)
        omitted = len(by_tier["omitted"])
        _legend(libs, price_axis, prominent, handles, faint, omitted, settings)
        price_axis.set_title(
            f"{symbol}: {headline}\nPrices in {PRICE_CURRENCY}, {price_basis}; volume in {VOLUME_UNIT}",
            loc="left", fontsize=11, fontweight="bold", pad=10,
        )
        buffer = io.BytesIO()
        # No Software/date metadata: the same chart gives the same bytes, so a retried write is identical.
        figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
        # What the figure holds, read back rather than restated: the tests assert on these.
        return RenderedChart(
            png=buffer.getvalue(),
            title=price_axis.get_title(loc="left"),
            price_label=price_axis.get_ylabel(),
            volume_label=volume_axis.get_ylabel(),
            time_label=volume_axis.get_xlabel(),
            bars=len(timestamps),
            prominent=tuple(prominent),
            faint=tuple(faint),
            omitted=omitted,
            outside_window=len(by_tier["faint"]) + len(by_tier["prominent"]) - len(faint) - len(prominent),
            legend=tuple(text.get_text() for text in price_axis.get_legend().get_texts()),
            texts=tuple(text.get_text() for text in price_axis.texts),
            settings=settings,
        )
    finally:
        libs.pyplot.close(figure)


def _candles_and_volume(libs: Any, columns: Mapping[str, Sequence[float]], size_inches: tuple[float, float]) -> tuple[Any, Any, Any]:
    """The mplfinance figure: candlesticks over volume, labelled axes. Returns (figure, price axis, volume axis)."""
    timestamps = [int(ts) for ts in columns["timestamp"]]
    frame = libs.pandas.DataFrame(
        {name.capitalize(): [float(v) for v in columns[name]] for name in BAR_COLUMNS[1:]},
        index=libs.pandas.DatetimeIndex([_utc(ts) for ts in timestamps], name="Date"),
    )
    intraday = any(later - earlier < 86_400 for earlier, later in zip(timestamps, timestamps[1:]))
    figure, axes = libs.mplfinance.plot(
        frame,
        type="candle",
        volume=True,
        style=libs.style,
        returnfig=True,
        figsize=size_inches,
        ylabel=f"Price ({PRICE_CURRENCY})",  # what the prices are (adjusted, as received) is in the title
        ylabel_lower=f"Volume ({VOLUME_UNIT})",
        xlabel=f"Date ({TIME_ZONE_LABEL})",
        datetime_format="%Y-%m-%d %H:%M" if intraday else "%Y-%m-%d",
        xrotation=0,
        panel_ratios=(3, 1),
        volume_exponent=0,  # plain numbers (formatted as 12M below), no "10^6" appended to the label
        warn_too_much_data=len(frame) + 1,
        # Margins for the axis labels and the two-line title, set here rather than with savefig's tight
        # bounding box, which draws the whole figure twice.
        scale_padding={"left": 0.6, "right": 0.6, "top": 0.8, "bottom": 0.6},
    )
    price_axis, volume_axis = axes[0], axes[2]
    low, high = price_axis.get_ylim()
    price_axis.set_ylim(low, high + 0.06 * (high - low))  # room for the labels above the highest extremum
    # 12M rather than "1e7" above the axis: the unit stays in the axis label.
    volume_axis.yaxis.set_major_formatter(libs.FuncFormatter(_shares))
    volume_axis.yaxis.get_offset_text().set_visible(False)
    return figure, price_axis, volume_axis


def _draw_faint(axis: Any, match: ChartMatch, points: list[tuple[int, float]]) -> DrawnMatch:
    colour = _pattern_colour(match.pattern)
    axis.plot(*zip(*points), color=colour, alpha=FAINT_ALPHA, linewidth=FAINT_WIDTH, marker="o", markersize=3, zorder=3)
    # A small tag, so a reader can find it on a long chart; its extrema stay unlabelled.
    tag_x, tag_price = max(points, key=lambda point: point[1])
    axis.annotate(f"{match.pattern} {match.confidence:.2f}", (tag_x, tag_price), xytext=(0, 6), textcoords="offset points",
                  ha="center", va="bottom", fontsize=7, color=colour, alpha=FAINT_ALPHA, zorder=4)
    return DrawnMatch(match.pattern, match.confidence, "faint")


def _legend(libs: Any, axis: Any, prominent: list[DrawnMatch], handles: list[Any], faint: list[DrawnMatch], omitted: int, settings: DisplaySettings) -> None:
    """One entry per alerting match, one per pattern drawn faintly (count and confidences), and the count
    of matches left out."""
    labels = [f"{m.pattern} {m.confidence:.2f} (alert)" for m in prominent]
    handles = list(handles)
    for pattern, group in _grouped(faint):
        low, high = min(m.confidence for m in group), max(m.confidence for m in group)
        handles.append(libs.Line2D([], [], color=_pattern_colour(pattern), alpha=FAINT_ALPHA, linewidth=FAINT_WIDTH, marker="o", markersize=3))
        labels.append(f"{pattern} x{len(group)} ({low:.2f}" + (f"-{high:.2f})" if len(group) > 1 else ")"))
    if omitted:
        handles.append(libs.Line2D([], [], linestyle="none"))
        labels.append(f"{omitted} match{'es' if omitted != 1 else ''} below {settings.display_threshold:.2f} not drawn")
    if not labels:
        handles.append(libs.Line2D([], [], linestyle="none"))
        labels.append("no detected patterns")
    axis.legend(handles, labels, loc="upper left", fontsize=8, framealpha=0.85, ncol=2 if len(labels) > 7 else 1)


def _draw_prominent(axis: Any, match: ChartMatch, points: list[tuple[int, float]], end_position: int, colour: str, timestamps: Sequence[int]) -> tuple[DrawnMatch, Any]:
    annotation: Annotation = annotate(match.pattern, points, end_position)
    axis.axvspan(points[0][0] - 0.5, end_position + 0.5, color=colour, alpha=0.07, zorder=1)
    (handle,) = axis.plot(*zip(*points), color=colour, linewidth=2.4, marker="o", markersize=7, zorder=6)
    labels = []
    for label, high, (x, price) in zip(annotation.labels, annotation.highs, points):
        axis.annotate(
            label, (x, price), xytext=(0, 9 if high else -9), textcoords="offset points", ha="center",
            va="bottom" if high else "top", fontsize=9, fontweight="bold", color=colour, zorder=7,
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
        )
        labels.append((label, int(timestamps[x]), float(price)))
    lines = []
    for line in annotation.lines:
        (x0, p0), (x1, p1) = line.start, line.end
        axis.plot([x0, x1], [p0, p1], color=colour, linewidth=1.6, linestyle="--", zorder=5)
        axis.annotate(line.name, (x1, p1), xytext=(4, 0), textcoords="offset points", ha="left", va="center",
                      fontsize=8, color=colour, zorder=7)
        lines.append(DrawnLine(line.name, (int(timestamps[int(x0)]), float(p0)), (int(timestamps[int(x1)]), float(p1))))
    return DrawnMatch(match.pattern, match.confidence, "prominent", tuple(labels), tuple(lines)), handle


def _shares(value: float, _position: Any = None) -> str:
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= divisor:
            return f"{value / divisor:g}{suffix}"
    return f"{value:g}"


def _positions(match: ChartMatch, positions: Mapping[int, int]) -> list[tuple[int, float]] | None:
    """The match's extrema as (bar position, price), or None if any is not among the charted bars."""
    if not match.extrema:
        return None
    points = []
    for timestamp, price in match.extrema:
        position = positions.get(int(timestamp))
        if position is None:
            return None
        points.append((position, float(price)))
    return points


def _grouped(matches: Sequence[DrawnMatch]) -> list[tuple[str, list[DrawnMatch]]]:
    groups: dict[str, list[DrawnMatch]] = {}
    for match in matches:
        groups.setdefault(match.pattern, []).append(match)
    return sorted(groups.items(), key=lambda item: _pattern_rank(item[0]))


def _pattern_rank(pattern: str) -> int:
    return PATTERN_ORDER.index(pattern) if pattern in PATTERN_ORDER else len(PATTERN_ORDER)


def _pattern_colour(pattern: str) -> str:
    rank = _pattern_rank(pattern)
    return PATTERN_COLOURS[rank] if rank < len(PATTERN_COLOURS) else "#404040"


def _columns(bars: Sequence[Mapping[str, float]] | Mapping[str, Sequence[float]]) -> Mapping[str, Sequence[float]]:
    if isinstance(bars, Mapping):
        return bars
    return {name: [row[name] for row in bars] for name in BAR_COLUMNS}


def _utc(timestamp: float) -> datetime:
    # Naive UTC: mplfinance's date axis does not take time zones.
    return datetime.fromtimestamp(int(timestamp), timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class _Libraries:
    pandas: Any
    mplfinance: Any
    pyplot: Any
    Line2D: Any
    FuncFormatter: Any
    style: Any


_loaded: _Libraries | None = None


def _libraries() -> _Libraries:
    """matplotlib (Agg), pandas and mplfinance, imported once, on the first render."""
    global _loaded
    if _loaded is None:
        # Lambda's home is read-only: matplotlib would warn and rebuild its font cache in a new temporary
        # folder on every cold start. One known folder under /tmp is reused while the environment lives.
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "matplotlib"))
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
        import mplfinance
        import pandas
        from matplotlib.lines import Line2D
        from matplotlib.ticker import FuncFormatter

        colours = mplfinance.make_marketcolors(up="#26a69a", down="#ef5350", edge="inherit", wick="inherit", volume="in")
        colours["vcedge"] = colours["volume"]  # the base style outlines volume bars in blue
        style = mplfinance.make_mpf_style(
            base_mpf_style="yahoo", marketcolors=colours, gridstyle=":", gridcolor="#d8d8d8", y_on_right=False,
            rc={"figure.titleweight": "bold"},  # the base style asks for semibold, which DejaVu Sans lacks
        )
        _loaded = _Libraries(pandas, mplfinance, pyplot, Line2D, FuncFormatter, style)
    return _loaded
