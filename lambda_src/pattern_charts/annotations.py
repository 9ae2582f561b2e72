"""What a chart says about a match, before anything is drawn: its tier, its extrema's labels, its lines.

Pure (no matplotlib, no numpy), so the rules are tested on their own and the renderer only draws them.

Tiers (see docs/charts.md for how the display threshold was chosen):
- prominent: the match alerted (confidence at or above the alert threshold, or it is the alert's own match);
  drawn thick, every extremum labelled, its neckline or trendlines drawn and named;
- faint: confidence at or above the display threshold; a thin line through its extrema, no labels;
- omitted: below the display threshold. Not drawn as a detected pattern; counted in the legend.

Positions are bar positions in the charted window (0 = oldest bar), not timestamps: the engine measures
slopes per bar, and the chart spaces bars evenly (weekends and holidays take no room), so a straight
line in bar positions is a straight line on the chart.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

# The default alert threshold (envs/*.json `alerts.confidence_threshold`, patternwatch_infra.config
# AlertsConfig; not imported: this package must not pull in the rest of the code). A test checks that the
# two agree; callers that know their environment's threshold pass it in DisplaySettings.
ALERT_CONFIDENCE_THRESHOLD: Final = 0.9
# Matches below this confidence are not drawn as detected patterns. Chosen from data (docs/charts.md,
# benchmarks/chart_display_threshold.py): 94% of random-walk matches (chance) score below it, 88% of
# planted patterns at 0.2-0.5% bar noise at or above it; the demo's real stocks keep 5 of 121 matches.
DISPLAY_CONFIDENCE_THRESHOLD: Final = 0.5

Tier = Literal["prominent", "faint", "omitted"]
Point = tuple[float, float]  # (bar position, price)


@dataclass(frozen=True)
class DisplaySettings:
    display_threshold: float = DISPLAY_CONFIDENCE_THRESHOLD
    alert_threshold: float = ALERT_CONFIDENCE_THRESHOLD

    def __post_init__(self) -> None:
        if not 0.0 <= self.display_threshold <= self.alert_threshold <= 1.0:
            raise ValueError(
                f"need 0 <= display threshold ({self.display_threshold}) <= alert threshold ({self.alert_threshold}) <= 1"
            )

    def tier(self, confidence: float, *, alerted: bool = False) -> Tier:
        """Alerting means at or above the alert threshold, as the alerting rule says (detection.alerts)."""
        if alerted or confidence >= self.alert_threshold:
            return "prominent"
        return "faint" if confidence >= self.display_threshold else "omitted"

    def as_dict(self) -> dict[str, float]:
        return {"displayThreshold": self.display_threshold, "alertThreshold": self.alert_threshold}


@dataclass(frozen=True)
class Line:
    name: str  # "neckline", "resistance", "support", ...
    start: Point
    end: Point


@dataclass(frozen=True)
class Annotation:
    labels: tuple[str, ...]  # one per extremum, in time order
    highs: tuple[bool, ...]  # per extremum: a high (its label goes above it) or a low
    lines: tuple[Line, ...]


# Labels of the extrema, in time order, where a pattern has names for them.
_NAMED_EXTREMA: Final = {
    "head-and-shoulders": ("LS", "N1", "H", "N2", "RS"),  # shoulders, head, neckline points
    "inverse-head-and-shoulders": ("LS", "N1", "H", "N2", "RS"),
    "double-top": ("T1", "V", "T2"),  # two tops and the valley between them
    "double-bottom": ("B1", "P", "B2"),  # two bottoms and the peak between them
}
_NECKLINE_PATTERNS: Final = ("head-and-shoulders", "inverse-head-and-shoulders")
_DOUBLE_PATTERNS: Final = ("double-top", "double-bottom")
_RECTANGLES: Final = ("rectangle-top", "rectangle-bottom")


def annotate(pattern: str, extrema: Sequence[Point], end_position: float) -> Annotation:
    """Labels for `extrema` (time order) and the pattern's lines, ending at most at `end_position`
    (the last bar the match used: a neckline is drawn on to there, where the break would be seen)."""
    points = [(float(x), float(p)) for x, p in extrema]
    highs = _high_flags(points)
    labels = _NAMED_EXTREMA.get(pattern)
    if labels is None or len(labels) != len(points):
        labels = tuple(_alternating_labels(highs))
    lines = tuple(_lines(pattern, points, highs, end_position)) if len(points) >= 2 else ()
    return Annotation(labels=labels, highs=highs, lines=lines)


def _high_flags(points: Sequence[Point]) -> tuple[bool, ...]:
    """Extrema alternate between highs and lows; the first is a high if it is above the second."""
    first_is_high = len(points) < 2 or points[0][1] >= points[1][1]
    return tuple((index % 2 == 0) == first_is_high for index in range(len(points)))


def _alternating_labels(highs: Sequence[bool]) -> list[str]:
    """H1, L1, H2, ... : highs and lows numbered separately."""
    counts = {"H": 0, "L": 0}
    labels = []
    for high in highs:
        kind = "H" if high else "L"
        counts[kind] += 1
        labels.append(f"{kind}{counts[kind]}")
    return labels


def _lines(pattern: str, points: list[Point], high_flags: Sequence[bool], end_position: float) -> list[Line]:
    first_x, last_x = points[0][0], points[-1][0]
    if pattern in _NECKLINE_PATTERNS and len(points) == 5:
        return [_extended("neckline", points[1], points[3], end_position)]
    if pattern in _DOUBLE_PATTERNS and len(points) == 3:
        level = points[1][1]
        return [Line("neckline", (first_x, level), (max(end_position, last_x), level))]
    highs = [point for point, high in zip(points, high_flags) if high]
    lows = [point for point, high in zip(points, high_flags) if not high]
    if pattern in _RECTANGLES:
        top = sum(p for _, p in highs) / len(highs)
        bottom = sum(p for _, p in lows) / len(lows)
        return [Line("resistance", (first_x, top), (last_x, top)), Line("support", (first_x, bottom), (last_x, bottom))]
    return [
        _fitted("upper trendline", highs, first_x, last_x),
        _fitted("lower trendline", lows, first_x, last_x),
    ]


def _extended(name: str, a: Point, b: Point, end_position: float) -> Line:
    """The line through a and b, from a to end_position (or to b if that is later)."""
    end_x = max(end_position, b[0])
    slope = (b[1] - a[1]) / (b[0] - a[0]) if b[0] != a[0] else 0.0
    return Line(name, a, (end_x, a[1] + slope * (end_x - a[0])))


def _fitted(name: str, points: Sequence[Point], first_x: float, last_x: float) -> Line:
    """Least-squares line through `points` (as the engine fits its triangles), drawn over [first_x, last_x]."""
    if len(points) == 1:
        (x, p), = points
        return Line(name, (first_x, p), (last_x, p))
    mean_x = sum(x for x, _ in points) / len(points)
    mean_p = sum(p for _, p in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (p - mean_p) for x, p in points) / spread if spread else 0.0
    return Line(name, (first_x, mean_p + slope * (first_x - mean_x)), (last_x, mean_p + slope * (last_x - mean_x)))
