"""The engine's limits that callers validate against before calling it, importable without numpy.

The request models in patternwatch_shared.models check a requested window against MIN_WINDOW, so
the API refuses what the engine would refuse, with the same number, and a handler that never
detects anything never loads numpy.
"""
from __future__ import annotations

# The smallest `window` detect and detect_latest accept.
MIN_WINDOW = 12
