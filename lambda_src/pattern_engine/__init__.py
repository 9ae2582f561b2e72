"""PatternWatch chart-pattern engine: Lo–Mamaysky–Wang patterns plus trendline triangles, in numpy.

See ``pattern_engine.engine`` for every definition and number, and docs/pattern-engine.md for the
measured accuracy and speed.
"""
from .engine import (
    CONFIRM_BARS,
    PATTERN_NAMES,
    WINDOW,
    PatternMatch,
    detect,
    detect_latest,
)

__all__ = ["CONFIRM_BARS", "PATTERN_NAMES", "WINDOW", "PatternMatch", "detect", "detect_latest"]
