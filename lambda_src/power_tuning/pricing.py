"""What one invocation costs on arm64: pure arithmetic, no AWS calls.

Prices: AWS Lambda pricing page (https://aws.amazon.com/lambda/pricing/), US East (N. Virginia), Arm,
first duration tier (up to 7.5 billion GB-seconds a month); unchanged since arm64 launched in
September 2021 and still listed when checked in November 2026. Other regions differ by a few percent;
the ranking of memory values, which is what the tuner decides, does not.
"""
from __future__ import annotations

import math

ARM64_PRICE_PER_GB_SECOND = 0.0000133334  # USD
PRICE_PER_REQUEST = 0.0000002  # USD: $0.20 per million requests, both architectures
MB_PER_GB = 1024  # Lambda prices memory in GB of 1024 MB (the pricing page's 1024 MB row = 1 GB)


def billed_milliseconds(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the next millisecond."""
    if duration_ms < 0 or not math.isfinite(duration_ms):
        raise ValueError(f"duration must be a finite, non-negative number of ms, got {duration_ms!r}")
    return math.ceil(duration_ms)


def invocation_cost(memory_mb: int, billed_ms: float) -> float:
    """USD for one invocation: the request plus memory (GB) x billed time (s) x the GB-second price."""
    if memory_mb <= 0:
        raise ValueError(f"memory must be positive, got {memory_mb}")
    if billed_ms < 0:
        raise ValueError(f"billed duration must not be negative, got {billed_ms}")
    return PRICE_PER_REQUEST + ARM64_PRICE_PER_GB_SECOND * (memory_mb / MB_PER_GB) * (billed_ms / 1000.0)
