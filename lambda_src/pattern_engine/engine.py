"""Lo–Mamaysky–Wang chart-pattern detection over rolling windows, in numpy.

Reference: Lo, Mamaysky & Wang (2000), "Foundations of Technical Analysis", Journal of Finance 55(4).
Every number the engine uses is defined here; the module constants carry the names in ``quotes``.
Measured accuracy and speed: docs/pattern-engine.md.

Windows and smoothing
    A window is ``WINDOW`` = 38 consecutive bars (the paper's l + d = 35 + 3). Only closes are used for
    detection. Inside each window the closes P_0..P_37 are smoothed at every bar j of the window by a
    Nadaraya–Watson Gaussian kernel estimator

        m(j) = sum_i K((j - i) / h) P_i / sum_i K((j - i) / h),   K(u) = exp(-u^2 / 2),

    with a FIXED bandwidth h = ``BANDWIDTH_BARS`` = 2.0 bars.
    Deliberate deviation from the paper, which uses 0.3 x the cross-validated bandwidth of each window:
    on 38-bar windows cross-validation picks a bandwidth under one bar in most windows, so almost
    nothing is smoothed, every wiggle becomes an extremum and match counts inflate. Of the fixed values
    tried (1.0, 1.5, 2.0, 2.5 bars), 2.0 puts head-and-shoulders on real daily data at the paper's
    3-4 per 1,000 stock-days and gives the best recall at 1% bar noise. A fixed bandwidth also makes
    the smoothing one constant linear map, m = W P, so all windows are smoothed by one matrix product
    (the engine multiplies by the 38 x 37 matrix of slopes m(j+1) - m(j) directly). The kernel is
    truncated at the window's edges and renormalised, so a window's smoothing uses only its own bars.
    The product is computed in float64: in float32, about one slope sign per million windows depended
    on how BLAS blocked the product, so batch and streaming could disagree.

Extrema
    The smoothed slope between bars j and j+1 is rising if it is above ``FLAT_SLOPE_EPS`` = 1e-9 x the
    window's last close, falling if below minus that, flat otherwise (so a constant price, whose
    slopes are pure rounding error, has no extrema). Bar j (1 <= j <= 36) is a smoothed maximum if the
    slope rises into it and falls out of it, a minimum if the reverse. As in the paper, each extremum
    is then snapped to the bar with the highest (maximum) or lowest (minimum) close among j-1, j, j+1,
    the earliest on ties; its price is that close. Snapped bars stay inside the window, so a window
    ending at bar t never reads a bar after t: there is no lookahead.

When a window reports a pattern
    Only patterns that complete near the window's end are reported: the window's last smoothed
    extremum must be 1 to ``CONFIRM_BARS`` = 4 bars before its newest bar (window positions 33-36).
    With h = 2 a turn is usually first visible 2-4 bars after it; the paper uses d = 3. E1..E5 are the
    window's five last extrema, E5 being that final one. Their snapped bars must be strictly
    increasing and maxima and minima must alternate.

Formal patterns (the paper's; "within x% of their mean" = every value within x% of the mean)
    head-and-shoulders           E1 max; E3 > E1 and E3 > E5; E1, E5 within 1.5% (``SHOULDER_TOL``)
                                 of their mean; E2, E4 within 1.5% of their mean.
    inverse-head-and-shoulders   E1 min; E3 < E1 and E3 < E5; the same two 1.5% tolerances.
    broadening-top               E1 max; E1 < E3 < E5; E2 > E4.
    broadening-bottom            E1 min; E1 > E3 > E5; E2 < E4.
    triangle-top                 E1 max; E1 > E3 > E5; E2 < E4.
    triangle-bottom              E1 min; E1 < E3 < E5; E2 > E4.
    rectangle-top                E1 max; E1, E3, E5 within 0.75% (``RECTANGLE_TOL``) of their mean;
                                 E2, E4 within 0.75% of their mean; lowest top > highest bottom.
    rectangle-bottom             E1 min; the same with bottoms E1, E3, E5 and tops E2, E4.
    double-top                   Ea, the window's last extremum, and E1, the window's first, are
                                 maxima; Ea is the highest maximum after E1; E1 within 1.5%
                                 (``DOUBLE_TOL``) of the mean of E1 and Ea; Ea more than 22 bars
                                 (``DOUBLE_MIN_SEPARATION``) after E1. Reported extrema: E1, the lowest
                                 minimum between them, Ea.
    double-bottom                the mirror image (minima; the highest maximum between them).

Trendline triangles (additions to the paper, tested on the same E1..E5)
    Pivot highs are the maxima and pivot lows the minima among E1..E5 (3 + 2 or 2 + 3). A least-squares
    line is fitted through each set; its slope divided by the mean pivot price is a scale-free slope in
    fraction of price per bar. A side is flat if |slope| <= ``FLAT_SLOPE`` = 0.001 (0.1% per bar, about
    1.2% over the 12 bars between two pivots of a side), rising if slope >= ``TREND_SLOPE`` = 0.002,
    falling if slope <= -0.002. Every pivot lies within ``PIVOT_FIT_TOL`` = 1.5% of its line, and the
    lines converge: at E5 the upper line is still above the lower one, by at most
    ``CONVERGENCE_RATIO`` = 0.8 of their gap at E1.
    ascending-triangle           flat upper line, rising lower line.
    descending-triangle          falling upper line, flat lower line.
    symmetric-triangle           falling upper line, rising lower line, the steeper at most
                                 ``SYMMETRY_RATIO`` = 2 times as steep as the other.

One match per occurrence
    One occurrence is seen by several consecutive windows. A match is identified by (pattern, bar of
    its final extremum) and only the first window reporting it (the smallest ``end``) is kept: the
    bar at which a streaming consumer first sees it. Windows reporting the same key end at most
    CONFIRM_BARS + 1 bars apart (the final extremum sits 1-4 bars before the window's end, +-1 for
    snapping), which is why ``detect_latest`` can reproduce the batch result exactly by also scanning
    the CONFIRM_BARS + 1 windows before the newest. All arithmetic on a window's values is done
    element-wise in a fixed order, so results do not depend on how many windows are processed together.

PatternMatch fields
    pattern     one of PATTERN_NAMES.
    start       bar index of the first reported extremum.
    end         last bar of the window that reported the match: the last bar the match used.
    confidence  see below.
    extrema     ((bar index, close), ...) of the reported extrema in time order: E1..E5, or
                (E1, turn between, Ea) for double tops and bottoms.

Confidence, in [0, 1]
    confidence = ``GEOMETRY_WEIGHT`` x geometry + (1 - GEOMETRY_WEIGHT) x clarity, weight 0.2.
    geometry    mean over the pattern's constraints of how far inside its tolerance it sits, each in
                [0, 1]: a tolerance "within x%" scores 1 - deviation / x (1 = equal, 0 = at the limit);
                an ordering "A beyond B" scores min(1, (A - B) / (``ORDERING_SCALE`` = 1.5% of their
                mean)), full marks once the gap is as wide as the equality tolerance; a flat side
                1 - |slope| / FLAT_SLOPE; a trending side min(1, |slope| / TREND_SLOPE - 1); pivot fit
                1 - worst pivot distance / PIVOT_FIT_TOL; convergence 1 - gap at E5 / gap at E1;
                symmetry (2 - steeper / shallower slope) / (2 - 1). Double tops and bottoms average
                the E1-Ea tolerance and the depth of the turn between them (an ordering).
    clarity     how cleanly the price moves along the drawn pattern. For each leg (straight line
                from one reported extremum to the next, over the bars between them inclusive),
                R^2 = 1 - SS(close - line) / SS(close - mean close of the leg). The worst leg
                counts: clarity = 0 at R^2 <= ``CLARITY_R2_FLOOR`` = 0.7, 1 at R^2 >=
                ``CLARITY_R2_FULL`` = 0.9, linear between.
    Why clarity: random walks satisfy the formal definitions about as often as real prices do (the
    paper says so too), so tolerances alone cannot separate pattern from chance. What random walks
    rarely do is move in clean legs between their turns, which is what makes a pattern visible on a
    chart. The score is scale-free (it compares each leg's swing with the bar-to-bar noise around it)
    and uses no volatility estimate. The weights (0.2, 0.7, 0.9) were chosen on seeds disjoint from
    those of the evaluation in docs/pattern-engine.md; the alerting threshold there is 0.9.

Streaming
    ``detect_latest`` reads only the last WINDOW + CONFIRM_BARS + 1 bars (validating those; lengths of
    all fields are checked in full) and runs the same tests as ``detect`` on Python floats, one
    window at a time: the newest window first (most updates stop there: it has no extremum in its
    confirmation zone, or it satisfies no definition), then, for the patterns it reports, the
    earlier windows among the CONFIRM_BARS + 1 before it that could report the same key. Every
    expression repeats the vectorised one's float operations in the same order (numpy's pairwise
    summation included), so both paths give the same matches and the same confidences to the bit;
    the tests compare them on every bar of random walks and planted patterns.
"""
from __future__ import annotations

import gc
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .limits import MIN_WINDOW

WINDOW = 38
BANDWIDTH_BARS = 2.0
CONFIRM_BARS = 4
FLAT_SLOPE_EPS = 1e-9

SHOULDER_TOL = 0.015
RECTANGLE_TOL = 0.0075
DOUBLE_TOL = 0.015
DOUBLE_MIN_SEPARATION = 22
ORDERING_SCALE = 0.015

FLAT_SLOPE = 0.001
TREND_SLOPE = 0.002
PIVOT_FIT_TOL = 0.015
CONVERGENCE_RATIO = 0.8
SYMMETRY_RATIO = 2.0

GEOMETRY_WEIGHT = 0.2
CLARITY_R2_FLOOR = 0.7
CLARITY_R2_FULL = 0.9


PATTERN_NAMES: tuple[str, ...] = (
    "head-and-shoulders",
    "inverse-head-and-shoulders",
    "broadening-top",
    "broadening-bottom",
    "triangle-top",
    "triangle-bottom",
    "rectangle-top",
    "rectangle-bottom",
    "double-top",
    "double-bottom",
    "ascending-triangle",
    "descending-triangle",
    "symmetric-triangle",
)
_PATTERN_ID = {name: i for i, name in enumerate(PATTERN_NAMES)}
# The four ordering patterns: (name, E1 is a maximum, three (i, j) meaning E(i+1) beyond E(j+1)).
_ORDERINGS = (
    ("broadening-top", True, ((2, 0), (4, 2), (1, 3))),
    ("broadening-bottom", False, ((0, 2), (2, 4), (3, 1))),
    ("triangle-top", True, ((0, 2), (2, 4), (3, 1))),
    ("triangle-bottom", False, ((2, 0), (4, 2), (1, 3))),
)
_TRENDLINE_TRIANGLES = ("ascending-triangle", "descending-triangle", "symmetric-triangle")
_FIVE_EXTREMA_PATTERNS = tuple(n for n in PATTERN_NAMES if not n.startswith("double-"))

# Windows are processed in chunks: memory stays bounded (~5 MB per chunk, mostly copies of the
# windows that need all their slopes) while chunks are large enough to amortise numpy's per-call
# overhead; 32768 and 65536 measured fastest here.
_CHUNK_WINDOWS = 32768


@dataclass(frozen=True)
class PatternMatch:
    """One pattern occurrence; see the module docs for what each field holds."""

    pattern: str
    start: int
    end: int
    confidence: float
    extrema: tuple[tuple[int, float], ...]


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------

_PRICE_FIELDS = ("open", "high", "low", "close")


def _as_float_array(name: str, values: Any) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bars[{name!r}] must contain only numbers ({exc})") from None
    if array.ndim != 1:
        raise ValueError(f"bars[{name!r}] must be one-dimensional, got shape {array.shape}")
    return array


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _checked_prices(field: Callable[[str], Any], first: int) -> dict[str, np.ndarray]:
    """Convert and check the price fields one by one, raising for the first problem in field order."""
    prices = {}
    for name in _PRICE_FIELDS:
        array = _as_float_array(name, field(name))
        finite = np.isfinite(array)
        if not finite.all():
            raise ValueError(f"bars[{name!r}] contains NaN or inf at index {first + _first_bad(~finite)}")
        positive = array > 0
        if not positive.all():
            raise ValueError(
                f"bars[{name!r}] contains a non-positive price at index {first + _first_bad(~positive)}"
            )
        prices[name] = array
    return prices


def _validate_timestamps(values: Any, first: int) -> None:
    stamps = np.asarray(values)
    if stamps.ndim != 1:
        raise ValueError(f"bars['timestamp'] must be one-dimensional, got shape {stamps.shape}")
    if stamps.size < 2:
        return
    if stamps.dtype.kind in "USO":
        try:
            with warnings.catch_warnings():
                # numpy converts "Z" and "+hh:mm" suffixes to UTC correctly but warns that
                # datetime64 itself has no time zone; only the order matters here.
                warnings.filterwarnings("ignore", message="no explicit representation of timezones")
                stamps = stamps.astype("datetime64[ns]")
        except (TypeError, ValueError):
            raise ValueError(
                "bars['timestamp'] must be numbers, numpy datetime64 or ISO 8601 strings"
            ) from None
    elif stamps.dtype.kind not in "iufM":
        raise ValueError(f"bars['timestamp'] has unsupported dtype {stamps.dtype}")
    if stamps.dtype.kind == "f" and not np.all(np.isfinite(stamps)):
        raise ValueError(f"bars['timestamp'] contains NaN or inf at index {first + _first_bad(~np.isfinite(stamps))}")
    if stamps.dtype.kind == "M" and np.any(np.isnat(stamps)):
        raise ValueError(f"bars['timestamp'] contains NaT at index {first + _first_bad(np.isnat(stamps))}")
    step = stamps[1:] - stamps[:-1]  # np.diff, without its Python-level overhead
    zero = np.zeros((), dtype=step.dtype)
    if step.min() > zero:  # NaN and NaT were rejected above
        return
    if np.any(step == zero):
        i = first + _first_bad(step == zero) + 1
        raise ValueError(f"bars['timestamp'] has duplicate timestamps at index {i}")
    if np.any(step < zero):
        i = first + _first_bad(step < zero) + 1
        raise ValueError(f"bars['timestamp'] is not sorted ascending: index {i} is earlier than {i - 1}")


def _validate_bars(bars: Mapping[str, Any], tail: int | None = None) -> np.ndarray:
    """Check the bars and return the closes as float64.

    With ``tail`` only the last ``tail`` bars are checked and returned (lengths are always checked in
    full): the streaming path must not cost O(history) per update, and it reads nothing else.
    """
    if not isinstance(bars, Mapping):
        raise ValueError(f"bars must be a mapping of arrays, got {type(bars).__name__}")
    missing = [name for name in _PRICE_FIELDS if name not in bars]
    if missing:
        raise ValueError(f"bars is missing required field(s): {', '.join(missing)}")
    fields = list(_PRICE_FIELDS) + [name for name in ("volume", "timestamp") if name in bars]
    lengths = {}
    for name in fields:
        try:
            lengths[name] = len(bars[name])
        except TypeError:
            raise ValueError(f"bars[{name!r}] must be an array or list, got {type(bars[name]).__name__}") from None
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name}={length}" for name, length in lengths.items())
        raise ValueError(f"bars fields have mismatched lengths: {detail}")
    n = lengths["close"]
    first = 0 if tail is None else max(0, n - tail)

    def field(name: str) -> Any:
        values = bars[name]
        if first == 0:
            return values
        return values[first:]

    # Prices (and volume) in one conversion and three reductions: a streaming update validates 43
    # bars, where numpy's per-call overhead, not the data, is the cost. Only when that finds a
    # problem are the fields converted and checked one by one, in the order that names the first.
    numeric = _PRICE_FIELDS + (("volume",) if "volume" in bars else ())
    try:
        stacked = np.array([field(name) for name in numeric], dtype=np.float64)
        # NaN fails every comparison; min with initial=0 is 0 when there is no volume row.
        valid = stacked.ndim == 2 and (n == first or bool(
            stacked[:4].min() > 0 and stacked[4:].min(initial=0.0) >= 0 and stacked.max() < np.inf))
    except (TypeError, ValueError):
        valid = False
    prices = dict(zip(_PRICE_FIELDS, stacked)) if valid else _checked_prices(field, first)
    inverted = prices["high"] < prices["low"]
    if inverted.any():
        raise ValueError(f"bars has high < low at index {first + _first_bad(inverted)}")
    if "volume" in bars and not valid:
        volume = _as_float_array("volume", field("volume"))
        bad = ~np.isfinite(volume) | (volume < 0)
        if bad.any():
            raise ValueError(f"bars['volume'] contains NaN, inf or a negative value at index {first + _first_bad(bad)}")
    if "timestamp" in bars:
        _validate_timestamps(field("timestamp"), first)
    return prices["close"]


_ALL_PATTERNS = np.ones(len(PATTERN_NAMES), dtype=bool)
_ALL_PATTERNS.flags.writeable = False


def _pattern_ids(patterns: Iterable[str] | None) -> np.ndarray:
    if patterns is None:
        return _ALL_PATTERNS
    if isinstance(patterns, str):
        patterns = [patterns]
    wanted = np.zeros(len(PATTERN_NAMES), dtype=bool)
    unknown = []
    for name in patterns:
        pattern_id = _PATTERN_ID.get(name) if isinstance(name, str) else None
        if pattern_id is None:
            unknown.append(repr(name))
        else:
            wanted[pattern_id] = True
    if unknown:
        raise ValueError(f"unknown pattern name(s): {', '.join(unknown)}; known: {', '.join(PATTERN_NAMES)}")
    return wanted


def _validate_window(window: Any) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise ValueError(f"window must be an integer, got {window!r}")
    if window < MIN_WINDOW:
        raise ValueError(f"window must be at least {MIN_WINDOW} bars, got {window}")
    return int(window)


# --------------------------------------------------------------------------------------------
# Smoothing
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _slope_operator(window: int) -> np.ndarray:
    """(window, window - 1) matrix mapping a window's closes to its smoothed slopes."""
    position = np.arange(window, dtype=np.float64)
    kernel = np.exp(-0.5 * ((position[:, None] - position[None, :]) / BANDWIDTH_BARS) ** 2)
    smoother = kernel / kernel.sum(axis=1, keepdims=True)
    slope = smoother[1:] - smoother[:-1]
    return np.ascontiguousarray(slope.T)


@lru_cache(maxsize=8)
def _confirm_columns(window: int) -> tuple[int, int]:
    # Extremum column c is window position c + 1; final extrema may sit at positions
    # window - 1 - CONFIRM_BARS .. window - 2.
    return window - 2 - CONFIRM_BARS, window - 2


def _slope_signs(windows: np.ndarray, operator: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rising, falling) flags of the smoothed slopes given by ``operator``'s columns."""
    slopes = windows @ operator
    dead_band = FLAT_SLOPE_EPS * windows[:, -1:]
    return slopes > dead_band, slopes < -dead_band


# --------------------------------------------------------------------------------------------
# Scanning windows
# --------------------------------------------------------------------------------------------


def _snap_offsets(close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per bar b, the offset (-1, 0 or +1) of the highest and of the lowest close among b-1..b+1.

    Ties go to the earliest bar. Smoothed extrema never sit on a window's first or last bar, so
    the first and last entries (0) are never used.
    """
    n = close.size
    to_max = np.zeros(n, dtype=np.int64)
    to_min = np.zeros(n, dtype=np.int64)
    if n >= 3:
        before, here, after = close[:-2], close[1:-1], close[2:]
        to_max[1:-1] = np.where((before >= here) & (before >= after), -1, np.where(here >= after, 0, 1))
        to_min[1:-1] = np.where((before <= here) & (before <= after), -1, np.where(here <= after, 0, 1))
    return to_max, to_min


class _Found:
    """Column-oriented matches from a scan: numpy arrays, converted to PatternMatch at the end."""

    def __init__(self) -> None:
        self.pattern: list[np.ndarray] = []
        self.end: list[np.ndarray] = []
        self.geometry: list[np.ndarray] = []
        self.points: list[np.ndarray] = []  # (m, 5) extremum bar indices, -1 padded
        self.count: list[np.ndarray] = []

    def add(self, pattern, end, geometry, points, count) -> None:
        if len(pattern):
            self.pattern.append(pattern)
            self.end.append(end)
            self.geometry.append(geometry)
            self.points.append(points)
            self.count.append(count)


def _row_sum(values: np.ndarray) -> np.ndarray:
    # Column by column on purpose: numpy's axis reductions may order the additions differently for
    # different numbers of rows, and a streaming update (a few rows) must reproduce batch results
    # (many rows) bit for bit.
    total = values[:, 0].copy()
    for column in range(1, values.shape[1]):
        total += values[:, column]
    return total


def _within(values: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """(all values within tol of their mean, 1 - worst relative deviation / tol), along axis 1."""
    mean = _row_sum(values) / values.shape[1]
    deviation = np.abs(values - mean[:, None]).max(axis=1) / mean
    return deviation <= tol, 1.0 - deviation / tol


def _beyond(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a > b, min(1, (a - b) / (ORDERING_SCALE x mean))) elementwise."""
    gap = (a - b) / (ORDERING_SCALE * 0.5 * (a + b))
    return a > b, np.minimum(gap, 1.0)


def _line_fit(t: np.ndarray, p: np.ndarray):
    """Least squares p ~ a + b t per row: (relative slope, slope, mean t, mean p, worst relative miss)."""
    t_mean = (_row_sum(t) / t.shape[1])[:, None]
    p_mean = (_row_sum(p) / p.shape[1])[:, None]
    dt = t - t_mean
    slope = _row_sum(dt * (p - p_mean)) / _row_sum(dt * dt)
    scale = p_mean[:, 0]
    miss = np.abs(p - (p_mean + slope[:, None] * dt)).max(axis=1) / scale
    return slope / scale, slope, t_mean[:, 0], p_mean[:, 0], miss


def _five_point_tests(values: np.ndarray, first_is_max: np.ndarray, wanted: np.ndarray):
    """Yield (pattern id, passed mask, geometry score) for the 5-extremum patterns."""
    e1, e2, e3, e4, e5 = values.T
    tops = first_is_max
    bottoms = ~first_is_max

    def wants(name: str) -> bool:
        return bool(wanted[_PATTERN_ID[name]])

    if wants("head-and-shoulders") or wants("inverse-head-and-shoulders"):
        shoulders_ok, shoulders_score = _within(values[:, [0, 4]], SHOULDER_TOL)
        troughs_ok, troughs_score = _within(values[:, [1, 3]], SHOULDER_TOL)
        base_ok = shoulders_ok & troughs_ok
        if wants("head-and-shoulders"):
            ok1, s1 = _beyond(e3, e1)
            ok2, s2 = _beyond(e3, e5)
            score = (shoulders_score + troughs_score + s1 + s2) / 4
            yield _PATTERN_ID["head-and-shoulders"], tops & base_ok & ok1 & ok2, score
        if wants("inverse-head-and-shoulders"):
            ok1, s1 = _beyond(e1, e3)
            ok2, s2 = _beyond(e5, e3)
            score = (shoulders_score + troughs_score + s1 + s2) / 4
            yield _PATTERN_ID["inverse-head-and-shoulders"], bottoms & base_ok & ok1 & ok2, score

    columns = values.T
    for name, top, orderings in _ORDERINGS:
        if wants(name):
            (ok1, s1), (ok2, s2), (ok3, s3) = (_beyond(columns[a], columns[b]) for a, b in orderings)
            yield _PATTERN_ID[name], (tops if top else bottoms) & ok1 & ok2 & ok3, (s1 + s2 + s3) / 3

    if wants("rectangle-top") or wants("rectangle-bottom"):
        odd = values[:, [0, 2, 4]]
        even = values[:, [1, 3]]
        odd_ok, odd_score = _within(odd, RECTANGLE_TOL)
        even_ok, even_score = _within(even, RECTANGLE_TOL)
        base_ok = odd_ok & even_ok
        if wants("rectangle-top"):
            ok, s = _beyond(odd.min(axis=1), even.max(axis=1))
            yield _PATTERN_ID["rectangle-top"], tops & base_ok & ok, (odd_score + even_score + s) / 3
        if wants("rectangle-bottom"):
            ok, s = _beyond(even.min(axis=1), odd.max(axis=1))
            yield _PATTERN_ID["rectangle-bottom"], bottoms & base_ok & ok, (odd_score + even_score + s) / 3


def _triangle_tests(values: np.ndarray, times: np.ndarray, first_is_max: np.ndarray, wanted: np.ndarray):
    """Yield (pattern id, passed mask, geometry score) for the trendline triangles."""
    if not any(wanted[_PATTERN_ID[n]] for n in _TRENDLINE_TRIANGLES):
        return
    # Bars since E1, so results do not depend on where the series (or a streaming tail) starts.
    elapsed = (times - times[:, :1]).astype(np.float64)
    # Both fits for every row, then each row takes its sides: the same arithmetic per row as
    # fitting each kind of row separately, without gathering and scattering rows.
    odd_cols, even_cols = [0, 2, 4], [1, 3]
    odd = _line_fit(elapsed[:, odd_cols], values[:, odd_cols])
    even = _line_fit(elapsed[:, even_cols], values[:, even_cols])
    # (relative slope, slope, mean t, mean price) of the line through the pivot highs and lows.
    upper = [np.where(first_is_max, a, b) for a, b in zip(odd[:4], even[:4])]
    lower = [np.where(first_is_max, b, a) for a, b in zip(odd[:4], even[:4])]
    misses = np.maximum(odd[4], even[4])  # both are >= 0, so the order of the two sides can't matter
    t_first = elapsed[:, 0]
    t_last = elapsed[:, 4]

    def line_at(line: list[np.ndarray], t: np.ndarray) -> np.ndarray:
        return line[3] + line[1] * (t - line[2])

    gap_first = line_at(upper, t_first) - line_at(lower, t_first)
    gap_last = line_at(upper, t_last) - line_at(lower, t_last)
    converging = (gap_last > 0) & (gap_last <= CONVERGENCE_RATIO * gap_first)
    fit_ok = misses <= PIVOT_FIT_TOL
    fit_score = 1.0 - misses / PIVOT_FIT_TOL
    convergence_score = np.clip(1.0 - gap_last / np.where(gap_first > 0, gap_first, np.inf), 0.0, 1.0)
    base_ok = converging & fit_ok
    up_rel, low_rel = upper[0], lower[0]

    def flat(rel):
        return np.abs(rel) <= FLAT_SLOPE, 1.0 - np.abs(rel) / FLAT_SLOPE

    def trend(rel):  # rel already signed towards the trend direction
        return rel >= TREND_SLOPE, np.clip(rel / TREND_SLOPE - 1.0, 0.0, 1.0)

    if wanted[_PATTERN_ID["ascending-triangle"]]:
        ok1, s1 = flat(up_rel)
        ok2, s2 = trend(low_rel)
        score = (s1 + s2 + fit_score + convergence_score) / 4
        yield _PATTERN_ID["ascending-triangle"], base_ok & ok1 & ok2, score
    if wanted[_PATTERN_ID["descending-triangle"]]:
        ok1, s1 = trend(-up_rel)
        ok2, s2 = flat(low_rel)
        score = (s1 + s2 + fit_score + convergence_score) / 4
        yield _PATTERN_ID["descending-triangle"], base_ok & ok1 & ok2, score
    if wanted[_PATTERN_ID["symmetric-triangle"]]:
        ok1, s1 = trend(-up_rel)
        ok2, s2 = trend(low_rel)
        steep = np.maximum(-up_rel, low_rel)
        shallow = np.minimum(-up_rel, low_rel)
        ok3 = steep <= SYMMETRY_RATIO * shallow
        s3 = np.clip((SYMMETRY_RATIO - steep / np.where(shallow > 0, shallow, np.inf)) / (SYMMETRY_RATIO - 1), 0, 1)
        score = (s1 + s2 + s3 + fit_score + convergence_score) / 5
        yield _PATTERN_ID["symmetric-triangle"], base_ok & ok1 & ok2 & ok3, score


def _clarity(close: np.ndarray, points: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Clarity from the worst leg's R^2 of the straight line between its extrema (see module docs)."""
    m = len(points)
    if m == 0:
        return np.zeros(0)
    # Legs of all matches laid end to end; leg k of a match runs from extremum k to k + 1 inclusive.
    has_leg = np.arange(points.shape[1] - 1)[None, :] < (count - 1)[:, None]
    t0 = points[:, :-1][has_leg]
    t1 = points[:, 1:][has_leg]
    length = t1 - t0 + 1
    leg_start = np.cumsum(length) - length
    bar = np.arange(length.sum()) + np.repeat(t0 - leg_start, length)
    p0 = close[t0]
    drawn = (np.repeat(p0, length)
             + np.repeat((close[t1] - p0) / (t1 - t0), length) * (bar - np.repeat(t0, length)))
    actual = close[bar]
    mean = np.add.reduceat(actual, leg_start) / length
    centred = actual - np.repeat(mean, length)
    residual = actual - drawn
    ss_res = np.add.reduceat(residual * residual, leg_start)
    ss_tot = np.add.reduceat(centred * centred, leg_start)
    r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), 0.0)
    legs = count - 1
    worst = np.minimum.reduceat(r2, np.cumsum(legs) - legs)
    return np.clip((worst - CLARITY_R2_FLOOR) / (CLARITY_R2_FULL - CLARITY_R2_FLOOR), 0.0, 1.0)


def _zone_slopes(close: np.ndarray, window: int, chunk_start: int, chunk_stop: int,
                 zone_operator: np.ndarray) -> np.ndarray:
    """Slopes (columns of ``zone_operator``) of the windows starting at chunk_start..chunk_stop - 1,
    one row per column: row k is contiguous, as the row-wise tests that follow want.

    Windows ``window`` bars apart do not overlap, so the windows starting at chunk_start + r,
    chunk_start + r + window, ... are a reshape of ``close``, without copying: one product per r,
    instead of first copying every window (38 times the series) for a single product.
    """
    count = chunk_stop - chunk_start
    slopes = np.empty((zone_operator.shape[1], count))
    for r in range(min(window, count)):
        m = (count - r + window - 1) // window
        first = chunk_start + r
        slopes[:, r::window] = (close[first:first + m * window].reshape(m, window) @ zone_operator).T
    return slopes


def _scan(close: np.ndarray, window: int, first_start: int, last_start: int,
          wanted: np.ndarray, found: _Found) -> None:
    """Test windows starting at bars first_start..last_start (inclusive) and add their matches."""
    lo_col, hi_col = _confirm_columns(window)
    operator = _slope_operator(window)
    zone_operator = np.ascontiguousarray(operator[:, lo_col:hi_col + 1])
    all_windows = sliding_window_view(close, window)
    snap_to_max, snap_to_min = _snap_offsets(close)
    want_five = any(wanted[_PATTERN_ID[n]] for n in _FIVE_EXTREMA_PATTERNS)
    want_double = wanted[_PATTERN_ID["double-top"]] or wanted[_PATTERN_ID["double-bottom"]]
    for chunk_start in range(first_start, last_start + 1, _CHUNK_WINDOWS):
        chunk_stop = min(chunk_start + _CHUNK_WINDOWS, last_start + 1)
        # Most windows have no extremum near their end; find those that do from the five slopes
        # around the confirmation zone before computing all slopes for the remaining ones.
        zone_slopes = _zone_slopes(close, window, chunk_start, chunk_stop, zone_operator)
        dead_band = FLAT_SLOPE_EPS * close[chunk_start + window - 1:chunk_stop + window - 1]
        rising = zone_slopes > dead_band
        falling = zone_slopes < -dead_band
        in_zone = (rising[0] & falling[1]) | (falling[0] & rising[1])
        for k in range(1, zone_slopes.shape[0] - 1):
            in_zone |= (rising[k] & falling[k + 1]) | (falling[k] & rising[k + 1])
        candidate = np.flatnonzero(in_zone)
        if candidate.size == 0:
            continue
        rising, falling = _slope_signs(all_windows[chunk_start + candidate], operator)
        is_max = rising[:, :-1] & falling[:, 1:]
        # np.nonzero on the 2-D mask costs five times a flat search (same row-major order).
        turns = np.flatnonzero(is_max | (falling[:, :-1] & rising[:, 1:]))
        row = turns // is_max.shape[1]
        col = turns - row * is_max.shape[1]
        kind_max = is_max[row, col]
        counts = np.bincount(row, minlength=candidate.size)
        row_end = np.cumsum(counts)
        row_begin = row_end - counts
        window_start = chunk_start + candidate
        centre = window_start[row] + col + 1
        bar = centre + np.where(kind_max, snap_to_max[centre], snap_to_min[centre])
        price = close[bar]
        window_end = window_start + window - 1

        if want_five:
            five = np.flatnonzero(counts >= 5)
            if five.size:
                flat_idx = row_end[five, None] - 5 + np.arange(5)[None, :]
                times = bar[flat_idx]
                values = price[flat_idx]
                kinds = kind_max[flat_idx]
                first_is_max = kinds[:, 0]
                # A window whose E1..E5 are the same bars as the previous window's would repeat
                # its results one bar later, and deduplication would drop them: skip it.
                start = window_start[five]
                repeat = np.zeros(five.size, dtype=bool)
                repeat[1:] = (start[1:] == start[:-1] + 1) & (kinds[1:, 0] == kinds[:-1, 0])
                # Snapping can make neighbouring extrema share a bar; such windows have no
                # well-defined E1..E5 and are skipped.
                for k in range(5):
                    repeat[1:] &= times[1:, k] == times[:-1, k]
                usable = ~repeat
                for k in range(4):
                    usable &= (times[:, k + 1] > times[:, k]) & (kinds[:, k + 1] != kinds[:, k])
                valid = np.flatnonzero(usable)
                five, times, values, first_is_max = five[valid], times[valid], values[valid], kinds[valid, 0]
                tests = list(_five_point_tests(values, first_is_max, wanted))
                tests += list(_triangle_tests(values, times, first_is_max, wanted))
                for pattern_id, passed, geometry in tests:
                    hit = np.flatnonzero(passed)
                    if hit.size:
                        points = times[hit]
                        count = np.full(hit.size, 5)
                        found.add(np.full(hit.size, pattern_id), window_end[five[hit]], geometry[hit], points, count)

        if want_double:
            _double_tests(close, counts, row_begin, row_end, kind_max, bar, price, window_end, wanted, found)


def _double_tests(close, counts, row_begin, row_end, kind_max, bar, price, window_end,
                  wanted, found) -> None:
    """Double tops and bottoms over every extremum of each candidate window (see module docs)."""
    begin = row_begin
    last = row_end - 1
    tops = kind_max[begin]
    e1 = price[begin]
    ea = price[last]
    # Row-level conditions first: they are cheap and leave few rows for the per-extremum work.
    mean = 0.5 * (e1 + ea)
    deviation = np.abs(e1 - mean) / mean
    pattern = np.where(tops, _PATTERN_ID["double-top"], _PATTERN_ID["double-bottom"])
    rows = np.flatnonzero((counts >= 3) & (kind_max[last] == tops) & (deviation <= DOUBLE_TOL)
                          & (bar[last] - bar[begin] > DOUBLE_MIN_SEPARATION) & wanted[pattern])
    if rows.size == 0:
        return
    # The extrema of those rows laid end to end, one segment per row.
    n_rows = counts[rows]
    seg_start = np.cumsum(n_rows) - n_rows
    idx = np.arange(n_rows.sum()) + np.repeat(row_begin[rows] - seg_start, n_rows)
    is_top = np.repeat(tops[rows], n_rows)
    # Signed so that "more extreme" is always larger: tops as they are, bottoms negated.
    signed = np.where(is_top, price[idx], -price[idx])
    same_kind = kind_max[idx] == is_top
    same_kind[seg_start] = False  # E1 itself is not a later extremum
    most_extreme = np.maximum.reduceat(np.where(same_kind, signed, -np.inf), seg_start)
    final_is_most = signed[seg_start + n_rows - 1] >= most_extreme
    # Between two tops the deepest turn is the lowest minimum: the smallest signed value.
    opposite = np.where(kind_max[idx] != is_top, -signed, -np.inf)
    deepest = np.maximum.reduceat(opposite, seg_start)
    position = np.arange(idx.size)
    deepest_at = idx[np.minimum.reduceat(
        np.where(opposite == np.repeat(deepest, n_rows), position, idx.size), seg_start)]
    trough_bar = bar[deepest_at]
    # As for E1..E5, snapped bars must stay in time order.
    keep = final_is_most & (bar[begin[rows]] < trough_bar) & (trough_bar < bar[last[rows]])
    rows, trough_bar = rows[keep], trough_bar[keep]
    if rows.size == 0:
        return
    trough = close[trough_bar]
    top = tops[rows]
    first, final = e1[rows], ea[rows]
    # The turn between the peaks is always beyond them; its depth is scored like an ordering.
    _, depth_score = _beyond(np.where(top, np.minimum(first, final), trough),
                             np.where(top, trough, np.maximum(first, final)))
    geometry = (1.0 - deviation[rows] / DOUBLE_TOL + depth_score) / 2
    points = np.full((rows.size, 5), -1, dtype=np.int64)
    points[:, 0] = bar[begin[rows]]
    points[:, 1] = trough_bar
    points[:, 2] = bar[last[rows]]
    found.add(pattern[rows], window_end[rows], geometry, points, np.full(rows.size, 3))


# --------------------------------------------------------------------------------------------
# Streaming: the same tests, one window at a time, on Python floats
# --------------------------------------------------------------------------------------------
#
# A streaming update decides the newest window and, when that window reports a pattern, the
# CONFIRM_BARS + 1 windows before it. The vectorised code above pays numpy's per-call overhead
# (~1 us) on each of its few hundred operations however few windows it is given; on Python floats
# the same tests cost a few microseconds per window. Each expression below performs its vectorised
# counterpart's IEEE operations on the same values in the same order, so the results are identical
# to the bit: sums are spelled out (Python's sum() compensates rounding since 3.12, numpy's
# element-wise sums do not), and _segment_sum adds in the order np.add.reduceat does.


def _clip01(x: float) -> float:
    """np.clip(x, 0, 1) for one float (NaN passes through, as in numpy)."""
    if x != x:
        return x
    x = x if x > 0.0 else 0.0
    return x if x < 1.0 else 1.0


def _ordering_score(a: float, b: float) -> float:
    """_beyond's score for one pair (its test is just a > b)."""
    gap = (a - b) / (ORDERING_SCALE * 0.5 * (a + b))
    return 1.0 if gap > 1.0 else gap


def _within_1(values: tuple[float, ...], tol: float) -> tuple[bool, float]:
    """_within for one group of two or three floats."""
    mean = (values[0] + values[1] + values[2]) / 3 if len(values) == 3 else (values[0] + values[1]) / 2
    deviation = max([abs(v - mean) for v in values]) / mean
    return deviation <= tol, 1.0 - deviation / tol


def _line_fit_1(t: tuple[float, ...], p: tuple[float, ...]) -> tuple[float, float, float, float, float]:
    """_line_fit for one line through two or three pivots."""
    if len(t) == 3:
        t_mean, p_mean = (t[0] + t[1] + t[2]) / 3, (p[0] + p[1] + p[2]) / 3
        d0, d1, d2 = t[0] - t_mean, t[1] - t_mean, t[2] - t_mean
        slope = ((d0 * (p[0] - p_mean) + d1 * (p[1] - p_mean) + d2 * (p[2] - p_mean))
                 / (d0 * d0 + d1 * d1 + d2 * d2))
        miss = max(abs(p[0] - (p_mean + slope * d0)), abs(p[1] - (p_mean + slope * d1)),
                   abs(p[2] - (p_mean + slope * d2))) / p_mean
    else:
        t_mean, p_mean = (t[0] + t[1]) / 2, (p[0] + p[1]) / 2
        d0, d1 = t[0] - t_mean, t[1] - t_mean
        slope = (d0 * (p[0] - p_mean) + d1 * (p[1] - p_mean)) / (d0 * d0 + d1 * d1)
        miss = max(abs(p[0] - (p_mean + slope * d0)), abs(p[1] - (p_mean + slope * d1))) / p_mean
    return slope / p_mean, slope, t_mean, p_mean, miss


def _pairwise_sum(values: list[float]) -> float:
    # numpy's pairwise summation (loops_utils.h): in order below 8 values; up to 128, eight partial
    # sums over every eighth value, combined as a tree, then the remainder in order; beyond 128, the
    # two halves (the first a multiple of 8 long) summed separately.
    n = len(values)
    if n < 8:
        total = 0.0
        for v in values:
            total += v
        return total
    if n > 128:
        half = n // 2
        half -= half % 8
        return _pairwise_sum(values[:half]) + _pairwise_sum(values[half:])
    r0, r1, r2, r3, r4, r5, r6, r7 = values[:8]
    stop = n - n % 8
    for i in range(8, stop, 8):
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for v in values[stop:]:
        total += v
    return total


def _segment_sum(values: list[float]) -> float:
    """One segment of np.add.reduceat: the first value plus the pairwise sum of the others. A segment of
    one value is that value as it is (reduceat copies it: -0.0 stays -0.0, where -0.0 + 0.0 is 0.0)."""
    return values[0] + _pairwise_sum(values[1:]) if len(values) > 1 else values[0]


def _leg_r2(prices: list[float], t0: int, t1: int) -> float:
    """R^2 of the closes t0..t1 around the straight line between their ends, as _clarity computes it."""
    p0 = prices[t0]
    slope = (prices[t1] - p0) / (t1 - t0)
    actual = prices[t0:t1 + 1]
    mean = _segment_sum(actual) / (t1 - t0 + 1)
    ss_res = _segment_sum([(r := a - (p0 + slope * k)) * r for k, a in enumerate(actual)])
    ss_tot = _segment_sum([(c := a - mean) * c for a in actual])
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0


def _clarity_1(prices: list[float], points: tuple[int, ...], legs: dict[tuple[int, int], float]) -> float:
    """_clarity for one match; ``legs`` caches each leg's R^2 (matches of one window share legs)."""
    worst = np.inf
    for leg in zip(points, points[1:]):
        r2 = legs.get(leg)
        if r2 is None:
            r2 = legs[leg] = _leg_r2(prices, *leg)
        worst = r2 if r2 < worst else worst
    return _clip01((worst - CLARITY_R2_FLOOR) / (CLARITY_R2_FULL - CLARITY_R2_FLOOR))


_HEAD_AND_SHOULDERS = {True: _PATTERN_ID["head-and-shoulders"], False: _PATTERN_ID["inverse-head-and-shoulders"]}
_RECTANGLE = {True: _PATTERN_ID["rectangle-top"], False: _PATTERN_ID["rectangle-bottom"]}
_DOUBLE = {True: _PATTERN_ID["double-top"], False: _PATTERN_ID["double-bottom"]}
_ORDERINGS_BY_SIDE = {top: [(_PATTERN_ID[name], pairs) for name, side, pairs in _ORDERINGS if side == top]
                      for top in (True, False)}
_ASCENDING, _DESCENDING, _SYMMETRIC = (_PATTERN_ID[name] for name in _TRENDLINE_TRIANGLES)


def _five_point_reports(e: list[float], times: list[int], top: bool, wanted: list[bool],
                        reports: list) -> None:
    """_five_point_tests and _triangle_tests for one window's E1..E5: appends (id, geometry, bars).

    The comparisons (the "ok" half of _beyond) come first, so most scores are never computed.
    """
    e1, e2, e3, e4, e5 = e
    points = tuple(times)
    pattern = _HEAD_AND_SHOULDERS[top]
    if wanted[pattern] and ((e3 > e1 and e3 > e5) if top else (e1 > e3 and e5 > e3)):
        shoulders_ok, shoulders_score = _within_1((e1, e5), SHOULDER_TOL)
        troughs_ok, troughs_score = _within_1((e2, e4), SHOULDER_TOL)
        if shoulders_ok and troughs_ok:
            s1 = _ordering_score(e3, e1) if top else _ordering_score(e1, e3)
            s2 = _ordering_score(e3, e5) if top else _ordering_score(e5, e3)
            reports.append((pattern, (shoulders_score + troughs_score + s1 + s2) / 4, points))
    for pattern, ((a1, b1), (a2, b2), (a3, b3)) in _ORDERINGS_BY_SIDE[top]:
        if wanted[pattern] and e[a1] > e[b1] and e[a2] > e[b2] and e[a3] > e[b3]:
            score = (_ordering_score(e[a1], e[b1]) + _ordering_score(e[a2], e[b2])
                     + _ordering_score(e[a3], e[b3])) / 3
            reports.append((pattern, score, points))
    pattern = _RECTANGLE[top]
    odd, even = (e1, e3, e5), (e2, e4)
    high, low = (min(odd), max(even)) if top else (min(even), max(odd))
    if wanted[pattern] and high > low:
        odd_ok, odd_score = _within_1(odd, RECTANGLE_TOL)
        even_ok, even_score = _within_1(even, RECTANGLE_TOL)
        if odd_ok and even_ok:
            reports.append((pattern, (odd_score + even_score + _ordering_score(high, low)) / 3, points))

    if not (wanted[_ASCENDING] or wanted[_DESCENDING] or wanted[_SYMMETRIC]):
        return
    t = [float(bar - times[0]) for bar in times]  # bars since E1, as in _triangle_tests
    (t_high, p_high), (t_low, p_low) = ((t[0::2], e[0::2]), (t[1::2], e[1::2]))[::1 if top else -1]
    up_rel, up_slope, up_t, up_p, up_miss = _line_fit_1(t_high, p_high)
    low_rel, low_slope, low_t, low_p, low_miss = _line_fit_1(t_low, p_low)
    misses = max(up_miss, low_miss)
    gap_first = (up_p + up_slope * (t[0] - up_t)) - (low_p + low_slope * (t[0] - low_t))
    gap_last = (up_p + up_slope * (t[4] - up_t)) - (low_p + low_slope * (t[4] - low_t))
    if not (gap_last > 0 and gap_last <= CONVERGENCE_RATIO * gap_first and misses <= PIVOT_FIT_TOL):
        return
    fit = 1.0 - misses / PIVOT_FIT_TOL
    convergence = _clip01(1.0 - gap_last / (gap_first if gap_first > 0 else np.inf))
    if wanted[_ASCENDING] and abs(up_rel) <= FLAT_SLOPE and low_rel >= TREND_SLOPE:
        flat_up, rising_low = 1.0 - abs(up_rel) / FLAT_SLOPE, _clip01(low_rel / TREND_SLOPE - 1.0)
        reports.append((_ASCENDING, (flat_up + rising_low + fit + convergence) / 4, points))
    if wanted[_DESCENDING] and -up_rel >= TREND_SLOPE and abs(low_rel) <= FLAT_SLOPE:
        falling_up, flat_low = _clip01(-up_rel / TREND_SLOPE - 1.0), 1.0 - abs(low_rel) / FLAT_SLOPE
        reports.append((_DESCENDING, (falling_up + flat_low + fit + convergence) / 4, points))
    if wanted[_SYMMETRIC] and -up_rel >= TREND_SLOPE and low_rel >= TREND_SLOPE:
        steep, shallow = max(-up_rel, low_rel), min(-up_rel, low_rel)
        if steep <= SYMMETRY_RATIO * shallow:
            falling_up, rising_low = _clip01(-up_rel / TREND_SLOPE - 1.0), _clip01(low_rel / TREND_SLOPE - 1.0)
            balance = _clip01((SYMMETRY_RATIO - steep / (shallow if shallow > 0 else np.inf)) / (SYMMETRY_RATIO - 1))
            reports.append((_SYMMETRIC, (falling_up + rising_low + balance + fit + convergence) / 5, points))


def _double_report(prices: list[float], kinds: list[bool], bars: list[int], wanted: list[bool],
                   reports: list) -> None:
    """_double_tests for one window's extrema."""
    if len(kinds) < 3 or kinds[-1] != kinds[0] or not wanted[_DOUBLE[kinds[0]]]:
        return
    top = kinds[0]
    first, final = prices[bars[0]], prices[bars[-1]]
    mean = 0.5 * (first + final)
    deviation = abs(first - mean) / mean
    if not (deviation <= DOUBLE_TOL and bars[-1] - bars[0] > DOUBLE_MIN_SEPARATION):
        return
    # Signed so that "more extreme" is always larger, as in _double_tests; the trough is the
    # earliest of the most extreme opposite turns.
    most_extreme = deepest = -np.inf
    trough_bar = bars[0]
    for kind, bar in zip(kinds[1:], bars[1:]):
        signed = prices[bar] if top else -prices[bar]
        if kind == top:
            most_extreme = signed if signed > most_extreme else most_extreme
        elif -signed > deepest:
            deepest, trough_bar = -signed, bar
    if not ((final if top else -final) >= most_extreme and bars[0] < trough_bar < bars[-1]):
        return
    trough = prices[trough_bar]
    depth_score = _ordering_score(min(first, final), trough) if top else _ordering_score(trough, max(first, final))
    reports.append((_DOUBLE[top], (1.0 - deviation / DOUBLE_TOL + depth_score) / 2, (bars[0], trough_bar, bars[-1])))


def _snapped(prices: list[float], centre: int, is_max: bool) -> int:
    """The bar an extremum at ``centre`` snaps to: _snap_offsets for one bar."""
    before, here, after = prices[centre - 1], prices[centre], prices[centre + 1]
    if is_max:
        return centre - 1 if before >= here and before >= after else (centre if here >= after else centre + 1)
    return centre - 1 if before <= here and before <= after else (centre if here <= after else centre + 1)


def _window_reports(prices: list[float], slopes: list[float], start: int, window: int, wanted: list[bool],
                    final_bar: int | None = None) -> list[tuple[int, float, tuple[int, ...]]]:
    """(pattern id, geometry, extremum bars) of each wanted pattern that the window starting at
    ``start`` reports before deduplication, as _scan tests it; bars index ``prices``.

    With ``final_bar``, only reports whose final extremum is that bar (the others are not needed).
    """
    band = FLAT_SLOPE_EPS * prices[start + window - 1]
    low = -band
    # Slope c rises if above band, falls if below -band; an extremum at position c + 1 needs slopes
    # c and c + 1 to do opposite things. Nothing to report unless the window's last extremum lies
    # in the confirmation zone (true of about a third of windows): look there first.
    lo_col, _ = _confirm_columns(window)
    last = window - 3
    while last >= lo_col and not ((slopes[last] > band and slopes[last + 1] < low)
                                  or (slopes[last] < low and slopes[last + 1] > band)):
        last -= 1
    if last < lo_col or (final_bar is not None
                         and _snapped(prices, start + last + 1, slopes[last] > band) != final_bar):
        return []
    kinds: list[bool] = []
    bars: list[int] = []
    rising, falling = slopes[0] > band, slopes[0] < low
    for centre, slope in enumerate(slopes[1:last + 2], start + 1):
        rises, falls = slope > band, slope < low
        if (rising and falls) or (falling and rises):
            kinds.append(rising)
            bars.append(_snapped(prices, centre, rising))
        rising, falling = rises, falls
    reports: list = []
    if len(kinds) >= 5:
        k5, t5 = kinds[-5:], bars[-5:]
        if all(t5[i + 1] > t5[i] and k5[i + 1] != k5[i] for i in range(4)):
            _five_point_reports([prices[t] for t in t5], t5, k5[0], wanted, reports)
    _double_report(prices, kinds, bars, wanted, reports)
    return reports


def _newest_window_candidates(close: np.ndarray, window: int, wanted: np.ndarray) -> np.ndarray:
    """Which wanted patterns the window ending at the last bar of ``close`` reports (a mask over
    PATTERN_NAMES): a superset of its matches, which deduplication against earlier windows may drop."""
    values = close[-window:]
    reports = _window_reports(values.tolist(), (values @ _slope_operator(window)).tolist(), 0, window,
                              wanted.tolist())
    possible = np.zeros(len(PATTERN_NAMES), dtype=bool)
    possible[[pattern for pattern, _, _ in reports]] = True
    return possible


def _latest_matches(close: np.ndarray, window: int, wanted: np.ndarray, offset: int) -> list[PatternMatch]:
    """detect_latest's matches from the validated tail ``close`` (bar i of it is bar offset + i)."""
    prices = close.tolist()
    last_start = len(prices) - window
    operator = _slope_operator(window)
    wanted_list = wanted.tolist()
    reports = _window_reports(prices, (close[last_start:] @ operator).tolist(), last_start, window, wanted_list)
    if not reports:
        return []
    # One match per (pattern, final bar): drop what one of the CONFIRM_BARS + 1 windows before
    # already reported. All of the newest window's reports end at its last extremum, bar B, and an
    # earlier window can only report B if B is inside it: it starts at B - window + 1 or later.
    final_bar = reports[0][2][-1]
    first_start = max(0, last_start - CONFIRM_BARS - 1, final_bar - window + 1)
    # Nearest first: an occurrence usually was already reported by the window just before, and
    # the search stops once every pattern of the newest window has been seen.
    unseen = [False] * len(PATTERN_NAMES)
    for pattern, _, _ in reports:
        unseen[pattern] = True
    for start in range(last_start - 1, first_start - 1, -1):
        slopes = (close[start:start + window] @ operator).tolist()
        for pattern, _, _ in _window_reports(prices, slopes, start, window, unseen, final_bar):
            unseen[pattern] = False
        if not any(unseen):
            return []
    reports = [report for report in reports if unseen[report[0]]]
    end = len(prices) - 1 + offset
    legs: dict[tuple[int, int], float] = {}
    return [
        PatternMatch(PATTERN_NAMES[pattern], points[0] + offset, end,
                     GEOMETRY_WEIGHT * _clip01(geometry) + (1.0 - GEOMETRY_WEIGHT) * _clarity_1(prices, points, legs),
                     tuple((bar + offset, prices[bar]) for bar in points))
        for pattern, geometry, points in sorted(reports)
    ]


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _first_occurrences(found: _Found, close: np.ndarray):
    """Keep the first window reporting each (pattern, final bar), then score those matches."""
    if not found.pattern:
        return None
    pattern = np.concatenate(found.pattern)
    end = np.concatenate(found.end)
    geometry = np.concatenate(found.geometry)
    points = np.concatenate(found.points)
    count = np.concatenate(found.count)
    final_bar = points[np.arange(len(points)), count - 1]
    key = final_bar * len(PATTERN_NAMES) + pattern
    # np.unique's first index of each key is its earliest window once rows are ordered by end.
    order = np.lexsort((pattern, end))
    _, first = np.unique(key[order], return_index=True)
    keep = order[np.sort(first)]
    # Geometry depends only on the extrema and clarity only on the bars between them, so scoring
    # after deduplication gives each occurrence the score its first window would have given it.
    clarity = _clarity(close, points[keep], count[keep])
    confidence = GEOMETRY_WEIGHT * np.clip(geometry[keep], 0.0, 1.0) + (1.0 - GEOMETRY_WEIGHT) * clarity
    return pattern[keep], end[keep], confidence, points[keep], count[keep]


def _to_matches(columns, close: np.ndarray) -> list[PatternMatch]:
    if columns is None:
        return []
    collect_garbage = gc.isenabled()
    # Tens of thousands of small tuples trigger the cyclic collector's full passes, which then
    # cost as much as building them; none of these objects can form a cycle.
    gc.disable()
    try:
        return _build_matches(columns, close)
    finally:
        if collect_garbage:
            gc.enable()


def _new_match(pattern: str, start: int, end: int, confidence: float,
               extrema: tuple[tuple[int, float], ...]) -> PatternMatch:
    # What the frozen dataclass's __init__ does, without its five object.__setattr__ calls: half
    # the cost of building tens of thousands of matches.
    match = _object_new(PatternMatch)
    match.__dict__.update(pattern=pattern, start=start, end=end, confidence=confidence, extrema=extrema)
    return match


_object_new = object.__new__


def _build_matches(columns, close: np.ndarray) -> list[PatternMatch]:
    pattern, end, confidence, points, count = columns
    # Plain Python values, assembled column-wise by zip (in C): building tens of thousands of
    # matches row by row from numpy scalars costs more than the detection itself.
    extrema: list[Any] = [None] * len(pattern)
    for n_points in (3, 5):
        rows = np.flatnonzero(count == n_points)
        pairs = [zip(points[rows, k].tolist(), close[points[rows, k]].tolist(), strict=True) for k in range(n_points)]
        for row, row_extrema in zip(rows.tolist(), zip(*pairs, strict=True)):
            extrema[row] = row_extrema
    names = [PATTERN_NAMES[p] for p in pattern.tolist()]
    return list(map(_new_match, names, points[:, 0].tolist(), end.tolist(), confidence.tolist(), extrema))


def detect(bars: Mapping[str, Any], *, patterns: Iterable[str] | None = None,
           window: int = WINDOW) -> list[PatternMatch]:
    """Every pattern occurrence in ``bars``, one match each, ordered by ``end`` then pattern order.

    ``bars`` maps "open", "high", "low", "close" (and optionally "volume", "timestamp") to equal-length
    lists or 1-D arrays, oldest bar first. Raises ValueError naming the problem for bad input; returns
    [] when there are fewer bars than ``window``.
    """
    wanted = _pattern_ids(patterns)
    window = _validate_window(window)
    close = _validate_bars(bars)
    n = close.size
    if n < window or not wanted.any():
        return []
    found = _Found()
    _scan(close, window, 0, n - window, wanted, found)
    return _to_matches(_first_occurrences(found, close), close)


def detect_latest(bars: Mapping[str, Any], *, patterns: Iterable[str] | None = None,
                  window: int = WINDOW) -> list[PatternMatch]:
    """Matches first reported by the window ending at the newest bar.

    Exactly ``[m for m in detect(bars, ...) if m.end == len(bars["close"]) - 1]``: the windows ending
    at the CONFIRM_BARS + 1 previous bars are also scanned, only to drop occurrences they already
    reported. Only the last ``window + CONFIRM_BARS + 1`` bars are read and validated (lengths of all
    fields are still checked), so the cost per update does not grow with the history passed in.
    """
    wanted = _pattern_ids(patterns)
    window = _validate_window(window)
    tail = window + CONFIRM_BARS + 1
    close = _validate_bars(bars, tail=tail)
    n_total = len(bars["close"])
    if n_total < window or not wanted.any():
        return []
    return _latest_matches(close, window, wanted, n_total - close.size)
