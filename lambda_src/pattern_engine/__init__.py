"""PatternWatch chart-pattern engine: Lo–Mamaysky–Wang patterns plus trendline triangles, in numpy.

See ``pattern_engine.engine`` for every definition and number, and docs/pattern-engine.md for the
measured accuracy and speed.

The engine's names load the engine (and numpy) on first use; ``pattern_engine.limits`` does not, so
the request models can validate against the engine's limits without loading numpy.
"""
from __future__ import annotations

from typing import Any

from .limits import MIN_WINDOW

_ENGINE_NAMES = ("CONFIRM_BARS", "PATTERN_NAMES", "WINDOW", "PatternMatch", "detect", "detect_latest")

__all__ = [*_ENGINE_NAMES, "MIN_WINDOW"]


def __getattr__(name: str) -> Any:
    if name in _ENGINE_NAMES:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
