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
    all fields are checked in full). A plain-Python restatement of the tests, loosened by a 1e-9
    relative slack, first asks which patterns the newest window could report; only those are then
    decided by the same vectorised tests as ``detect``, so the prefilter saves time and cannot change
    a result.
"""
from __future__ import annotations

import gc
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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

MIN_WINDOW = 12

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
_FIVE_EXTREMA_PATTERNS = tuple(n for n in PATTERN_NAMES if not n.startswith("double-"))

# Windows are processed in chunks: memory stays bounded (~10 MB of window copies per chunk) while
# chunks are large enough to amortise numpy's per-call overhead; 32768 measured fastest here.
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
    step = np.diff(stamps)
    zero = np.zeros((), dtype=step.dtype)
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
    inverted = prices["high"] < prices["low"]
    if inverted.any():
        raise ValueError(f"bars has high < low at index {first + _first_bad(inverted)}")
    if "volume" in bars:
        volume = _as_float_array("volume", field("volume"))
        bad = ~np.isfinite(volume) | (volume < 0)
        if bad.any():
            raise ValueError(f"bars['volume'] contains NaN, inf or a negative value at index {first + _first_bad(bad)}")
    if "timestamp" in bars:
        _validate_timestamps(field("timestamp"), first)
    return prices["close"]


def _pattern_ids(patterns: Iterable[str] | None) -> np.ndarray:
    if patterns is None:
        return np.ones(len(PATTERN_NAMES), dtype=bool)
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

    for name, side, a, b, c in (
        ("broadening-top", tops, (e3, e1), (e5, e3), (e2, e4)),
        ("broadening-bottom", bottoms, (e1, e3), (e3, e5), (e4, e2)),
        ("triangle-top", tops, (e1, e3), (e3, e5), (e4, e2)),
        ("triangle-bottom", bottoms, (e3, e1), (e5, e3), (e2, e4)),
    ):
        if wants(name):
            ok1, s1 = _beyond(*a)
            ok2, s2 = _beyond(*b)
            ok3, s3 = _beyond(*c)
            yield _PATTERN_ID[name], side & ok1 & ok2 & ok3, (s1 + s2 + s3) / 3

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
    names = ("ascending-triangle", "descending-triangle", "symmetric-triangle")
    if not any(wanted[_PATTERN_ID[n]] for n in names):
        return
    m = len(values)
    # Bars since E1, so results do not depend on where the series (or a streaming tail) starts.
    elapsed = (times - times[:, :1]).astype(np.float64)
    upper = np.empty((m, 4))  # relative slope, slope, t_mean, p_mean
    lower = np.empty((m, 4))
    misses = np.zeros(m)
    for is_max_first, rows in ((True, first_is_max), (False, ~first_is_max)):
        if not rows.any():
            continue
        odd_cols, even_cols = [0, 2, 4], [1, 3]
        high_cols, low_cols = (odd_cols, even_cols) if is_max_first else (even_cols, odd_cols)
        for cols, out in ((high_cols, upper), (low_cols, lower)):
            rel, slope, t_mean, p_mean, miss = _line_fit(elapsed[rows][:, cols], values[rows][:, cols])
            out[rows] = np.stack([rel, slope, t_mean, p_mean], axis=1)
            misses[rows] = np.maximum(misses[rows], miss)
    t_first = elapsed[:, 0]
    t_last = elapsed[:, 4]

    def line_at(line: np.ndarray, t: np.ndarray) -> np.ndarray:
        return line[:, 3] + line[:, 1] * (t - line[:, 2])

    gap_first = line_at(upper, t_first) - line_at(lower, t_first)
    gap_last = line_at(upper, t_last) - line_at(lower, t_last)
    converging = (gap_last > 0) & (gap_last <= CONVERGENCE_RATIO * gap_first)
    fit_ok = misses <= PIVOT_FIT_TOL
    fit_score = 1.0 - misses / PIVOT_FIT_TOL
    convergence_score = np.clip(1.0 - gap_last / np.where(gap_first > 0, gap_first, np.inf), 0.0, 1.0)
    base_ok = converging & fit_ok
    up_rel, low_rel = upper[:, 0], lower[:, 0]

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


def _scan(close: np.ndarray, window: int, first_start: int, last_start: int,
          wanted: np.ndarray, found: _Found) -> None:
    """Test windows starting at bars first_start..last_start (inclusive) and add their matches."""
    lo_col, hi_col = _confirm_columns(window)
    operator = _slope_operator(window)
    zone_operator_t = np.ascontiguousarray(operator[:, lo_col:hi_col + 1].T)
    all_windows = sliding_window_view(close, window)
    snap_to_max, snap_to_min = _snap_offsets(close)
    want_five = any(wanted[_PATTERN_ID[n]] for n in _FIVE_EXTREMA_PATTERNS)
    want_double = wanted[_PATTERN_ID["double-top"]] or wanted[_PATTERN_ID["double-bottom"]]
    for chunk_start in range(first_start, last_start + 1, _CHUNK_WINDOWS):
        chunk_stop = min(chunk_start + _CHUNK_WINDOWS, last_start + 1)
        windows = np.ascontiguousarray(all_windows[chunk_start:chunk_stop])
        # Most windows have no extremum near their end; find those that do from the four slopes
        # around the confirmation zone before computing all slopes for the remaining ones.
        # Transposed so each slope column is contiguous: numpy's row-wise any() over three
        # booleans costs more than the product itself.
        zone_slopes = zone_operator_t @ windows.T
        dead_band = FLAT_SLOPE_EPS * windows[:, -1]
        rising = zone_slopes > dead_band
        falling = zone_slopes < -dead_band
        in_zone = (rising[0] & falling[1]) | (falling[0] & rising[1])
        for k in range(1, zone_slopes.shape[0] - 1):
            in_zone |= (rising[k] & falling[k + 1]) | (falling[k] & rising[k + 1])
        candidate = np.flatnonzero(in_zone)
        if candidate.size == 0:
            continue
        rising, falling = _slope_signs(windows[candidate], operator)
        is_max = rising[:, :-1] & falling[:, 1:]
        row, col = np.nonzero(is_max | (falling[:, :-1] & rising[:, 1:]))
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
# Streaming prefilter
# --------------------------------------------------------------------------------------------

# Slack that makes the prefilter accept anything the vectorised tests could accept despite a
# different order of float operations.
_PREFILTER_SLACK = 1e-9


def _newest_window_candidates(close: np.ndarray, window: int, wanted: np.ndarray) -> np.ndarray:
    """Which wanted patterns could the window ending at the last bar of ``close`` report?

    A plain-Python restatement of the tests for that one window, loosened by _PREFILTER_SLACK, so
    the answer is a superset (a boolean mask over PATTERN_NAMES). A streaming update pays numpy's
    per-call overhead (~1 us) on each of the few hundred operations of the vectorised tests; this
    check costs a tenth of that, rejects ~93% of updates outright and narrows the rest to the one or
    two patterns worth confirming. Only patterns it allows are then decided by the same vectorised
    code as batch ``detect``, and dropping a pattern can't change another's matches (deduplication
    is per pattern), so it can only save time, never change a result. The test suite also checks it
    never rejects a window that has a match.
    """
    possible = np.zeros(len(PATTERN_NAMES), dtype=bool)
    values = close[-window:]
    slopes = (values @ _slope_operator(window)).tolist()
    prices = values.tolist()
    band = FLAT_SLOPE_EPS * prices[-1]
    lo_col, _ = _confirm_columns(window)
    # Extremum at position j needs slopes j - 1 and j; walk back from the newest bar.
    kinds: list[bool] = []
    bars: list[int] = []
    for j in range(window - 2, 0, -1):
        if not kinds and j <= lo_col:
            return possible
        before, after = slopes[j - 1], slopes[j]
        if before > band and after < -band:
            kinds.append(True)
        elif before < -band and after > band:
            kinds.append(False)
        else:
            continue
        triple = prices[j - 1:j + 2]
        best = max(triple) if kinds[-1] else min(triple)
        bars.append(j - 1 + triple.index(best))
    kinds.reverse()
    bars.reverse()
    level = [prices[b] for b in bars]
    count = len(kinds)
    tol = 1.0 + _PREFILTER_SLACK

    def allow(name: str) -> None:
        possible[_PATTERN_ID[name]] = wanted[_PATTERN_ID[name]]

    if count >= 3 and kinds[-1] == kinds[0]:
        top = kinds[0]
        same = [level[i] if top else -level[i] for i in range(1, count) if kinds[i] == top]
        final = level[-1] if top else -level[-1]
        mean = 0.5 * (level[0] + level[-1])
        if (final >= max(same) - _PREFILTER_SLACK * abs(final)
                and abs(level[0] - mean) <= DOUBLE_TOL * mean * tol
                and bars[-1] - bars[0] > DOUBLE_MIN_SEPARATION):
            allow("double-top" if top else "double-bottom")

    if count < 5:
        return possible
    k5, b5, (e1, e2, e3, e4, e5) = kinds[-5:], bars[-5:], level[-5:]
    if any(b5[i + 1] <= b5[i] for i in range(4)) or any(k5[i + 1] == k5[i] for i in range(4)):
        return possible
    top = k5[0]
    eps = _PREFILTER_SLACK * e3

    def within(group, limit):
        mean = sum(group) / len(group)
        return max(abs(v - mean) for v in group) <= limit * mean * tol

    if within((e1, e5), SHOULDER_TOL) and within((e2, e4), SHOULDER_TOL):
        if top and e3 > e1 - eps and e3 > e5 - eps:
            allow("head-and-shoulders")
        if not top and e3 < e1 + eps and e3 < e5 + eps:
            allow("inverse-head-and-shoulders")
    rectangle = within((e1, e3, e5), RECTANGLE_TOL) and within((e2, e4), RECTANGLE_TOL)
    if top:
        if e3 > e1 - eps and e5 > e3 - eps and e2 > e4 - eps:
            allow("broadening-top")
        if e1 > e3 - eps and e3 > e5 - eps and e4 > e2 - eps:
            allow("triangle-top")
        if rectangle and min(e1, e3, e5) > max(e2, e4) - eps:
            allow("rectangle-top")
    else:
        if e1 > e3 - eps and e3 > e5 - eps and e4 > e2 - eps:
            allow("broadening-bottom")
        if e3 > e1 - eps and e5 > e3 - eps and e2 > e4 - eps:
            allow("triangle-bottom")
        if rectangle and min(e2, e4) > max(e1, e3, e5) - eps:
            allow("rectangle-bottom")

    odd = ((b5[0], e1), (b5[2], e3), (b5[4], e5))
    even = ((b5[1], e2), (b5[3], e4))
    highs, lows = (odd, even) if top else (even, odd)

    def fit(points):
        t_mean = sum(t for t, _ in points) / len(points)
        p_mean = sum(p for _, p in points) / len(points)
        slope = sum((t - t_mean) * (p - p_mean) for t, p in points) / sum((t - t_mean) ** 2 for t, _ in points)
        miss = max(abs(p - (p_mean + slope * (t - t_mean))) for t, p in points) / p_mean
        return slope / p_mean, lambda t: p_mean + slope * (t - t_mean), miss

    up_rel, upper, up_miss = fit(highs)
    low_rel, lower, low_miss = fit(lows)
    gap_first = upper(b5[0]) - lower(b5[0])
    gap_last = upper(b5[4]) - lower(b5[4])
    loose = 1e-6  # relative slack on slopes and gaps, far above any rounding difference
    if (max(up_miss, low_miss) > PIVOT_FIT_TOL * tol or gap_last <= -loose * e3
            or gap_last > CONVERGENCE_RATIO * gap_first + loose * e3):
        return possible
    flat_up = abs(up_rel) <= FLAT_SLOPE + loose
    flat_low = abs(low_rel) <= FLAT_SLOPE + loose
    rising_low = low_rel >= TREND_SLOPE - loose
    falling_up = -up_rel >= TREND_SLOPE - loose
    if flat_up and rising_low:
        allow("ascending-triangle")
    if falling_up and flat_low:
        allow("descending-triangle")
    if falling_up and rising_low and max(-up_rel, low_rel) <= SYMMETRY_RATIO * min(-up_rel, low_rel) + loose:
        allow("symmetric-triangle")
    return possible


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


def _to_matches(columns, close: np.ndarray, offset: int, only_end: int | None = None) -> list[PatternMatch]:
    if columns is None:
        return []
    collect_garbage = gc.isenabled()
    # Tens of thousands of small tuples trigger the cyclic collector's full passes, which then
    # cost as much as building them; none of these objects can form a cycle.
    gc.disable()
    try:
        return _build_matches(columns, close, offset, only_end)
    finally:
        if collect_garbage:
            gc.enable()


def _build_matches(columns, close: np.ndarray, offset: int, only_end: int | None) -> list[PatternMatch]:
    pattern, end, confidence, points, count = columns
    if only_end is not None:
        keep = end == only_end
        pattern, end, confidence, points, count = (a[keep] for a in (pattern, end, confidence, points, count))
    # Plain Python values, assembled column-wise by zip (in C): building tens of thousands of
    # matches row by row from numpy scalars costs more than the detection itself.
    matches: list[PatternMatch] = []
    order: list[int] = []
    for n_points in (3, 5):
        rows = np.flatnonzero(count == n_points)
        if rows.size == 0:
            continue
        pairs = [
            zip((points[rows, k] + offset).tolist(), close[points[rows, k]].tolist(), strict=True)
            for k in range(n_points)
        ]
        extrema = zip(*pairs, strict=True)
        names = [PATTERN_NAMES[p] for p in pattern[rows].tolist()]
        matches += map(PatternMatch, names, (points[rows, 0] + offset).tolist(), (end[rows] + offset).tolist(),
                       confidence[rows].tolist(), extrema)
        order += rows.tolist()
    # Doubles and five-point matches were built in two groups; restore the (end, pattern) order.
    if order != sorted(order):
        matches = [matches[i] for i in np.argsort(order, kind="stable").tolist()]
    return matches


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
    return _to_matches(_first_occurrences(found, close), close, 0)


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
    offset = n_total - close.size
    possible = _newest_window_candidates(close, window, wanted)
    if not possible.any():
        return []
    found = _Found()
    last_start = close.size - window
    _scan(close, window, max(0, last_start - CONFIRM_BARS - 1), last_start, possible, found)
    return _to_matches(_first_occurrences(found, close), close, offset, only_end=close.size - 1)
