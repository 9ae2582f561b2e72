"""Pure tuning logic: input defaults, REPORT-line parsing, averages, the choice, and a text chart."""
from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from power_tuning.pricing import invocation_cost

DEFAULT_POWER_VALUES = (512, 1024, 1536, 2048, 3008)
DEFAULT_INVOCATIONS = 10
DEFAULT_STRATEGY = "cost"
STRATEGIES = ("cost", "speed", "balanced")
DEFAULT_BALANCED_WEIGHT = 0.5
# The slowest and fastest 20% of invocations are left out of the average, as the reference project does:
# one cold start or one noisy neighbour should not decide the memory size.
DEFAULT_DISCARD_TOP_BOTTOM = 0.2
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10_240  # what Lambda accepts
MAX_INVOCATIONS = 1_000
# Versions and aliases the tuner creates carry this, so the cleaner never deletes anything it did not make.
TUNING_MARKER = "patternwatch-power-tuning"
_LAMBDA_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}$")
_BILLED = re.compile(r"Billed Duration: (\d+(?:\.\d+)?) ms")


class TuningInputError(ValueError):
    """The tuning request cannot be run as given."""


# Every alias the tuner makes is RAM<memory>; its IAM policies name only these (patternwatch_infra/power_tuner.py).
TUNING_ALIAS_PREFIX = "RAM"


def alias_name(memory_mb: int) -> str:
    return f"{TUNING_ALIAS_PREFIX}{memory_mb}"


@dataclass(frozen=True)
class TuningInput:
    lambda_arn: str
    power_values: tuple[int, ...]
    num: int
    payload: Any
    strategy: str
    balanced_weight: float
    discard_top_bottom: float

    def as_event(self) -> dict[str, Any]:
        """The normalised input as the state machine carries it between steps."""
        return {
            "lambdaARN": self.lambda_arn,
            "powerValues": list(self.power_values),
            "num": self.num,
            "payload": self.payload,
            "strategy": self.strategy,
            "balancedWeight": self.balanced_weight,
            "discardTopBottom": self.discard_top_bottom,
        }


def _number(event: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = event.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise TuningInputError(f"{key} must be a number from {low} to {high}, got {value!r}")
    return float(value)


def parse_input(event: Any) -> TuningInput:
    """Validate a tuning request and fill in the defaults."""
    if not isinstance(event, Mapping):
        raise TuningInputError("input must be a JSON object")
    arn = event.get("lambdaARN")
    if not isinstance(arn, str) or not _LAMBDA_ARN.match(arn):
        raise TuningInputError(f"lambdaARN must be an unqualified Lambda function ARN, got {arn!r}")
    values = event.get("powerValues", list(DEFAULT_POWER_VALUES))
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, int) and not isinstance(v, bool) and MIN_MEMORY_MB <= v <= MAX_MEMORY_MB for v in values)
    ):
        raise TuningInputError(f"powerValues must be a non-empty list of MB values from {MIN_MEMORY_MB} to {MAX_MEMORY_MB}")
    num = event.get("num", DEFAULT_INVOCATIONS)
    if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_INVOCATIONS:
        raise TuningInputError(f"num must be an integer from 1 to {MAX_INVOCATIONS}, got {num!r}")
    strategy = event.get("strategy", DEFAULT_STRATEGY)
    if strategy not in STRATEGIES:
        raise TuningInputError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if "autoOptimize" in event:
        # The tuner recommends; memory is configuration (envs/<env>.json), changed through a deploy like the rest.
        raise TuningInputError("autoOptimize is not supported: the tuner only recommends; set lambda.memory_mb in envs/<env>.json and deploy")
    return TuningInput(
        lambda_arn=arn,
        power_values=tuple(sorted(set(values))),
        num=num,
        payload=event.get("payload", {}),
        strategy=strategy,
        balanced_weight=_number(event, "balancedWeight", DEFAULT_BALANCED_WEIGHT, 0.0, 1.0),
        discard_top_bottom=_number(event, "discardTopBottom", DEFAULT_DISCARD_TOP_BOTTOM, 0.0, 0.4),
    )


def billed_duration_from_log(log_result: str) -> float:
    """The billed duration (ms) from the base64 log tail that `Invoke(LogType=Tail)` returns."""
    text = base64.b64decode(log_result).decode("utf-8", errors="replace")
    for line in reversed(text.splitlines()):
        if line.startswith("REPORT"):
            match = _BILLED.search(line)
            if match:
                return float(match.group(1))
    raise ValueError("no REPORT line with a Billed Duration in the log tail")


def trimmed_mean(values: Sequence[float], discard_fraction: float) -> float:
    """The mean after dropping the lowest and highest `discard_fraction` of the sorted values."""
    if not values:
        raise ValueError("no values to average")
    ordered = sorted(values)
    cut = math.floor(len(ordered) * discard_fraction)
    kept = ordered[cut: len(ordered) - cut] if len(ordered) - 2 * cut > 0 else ordered
    return sum(kept) / len(kept)


@dataclass(frozen=True)
class PowerResult:
    memory_mb: int
    average_duration_ms: float
    average_cost_usd: float

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.memory_mb, "averageDuration": self.average_duration_ms, "averagePrice": self.average_cost_usd}


def price_results(measurements: Sequence[Mapping[str, Any]]) -> list[PowerResult]:
    """Executor outputs ({value, averageDuration}) -> cost per invocation per memory value."""
    results = [
        PowerResult(int(m["value"]), float(m["averageDuration"]), invocation_cost(int(m["value"]), float(m["averageDuration"])))
        for m in measurements
    ]
    return sorted(results, key=lambda r: r.memory_mb)


def _normalised(value: float, low: float, high: float) -> float:
    return 0.0 if high == low else (value - low) / (high - low)


def choose(results: Sequence[PowerResult], strategy: str, balanced_weight: float = DEFAULT_BALANCED_WEIGHT) -> PowerResult:
    """cost: cheapest (then fastest); speed: fastest (then cheapest); balanced: the lowest weighted sum of
    cost and duration, each scaled to [0, 1] over the measured values (weight 1 = cost only, 0 = speed only).
    Remaining ties go to the smaller memory size."""
    if not results:
        raise ValueError("no results to choose from")
    if strategy == "cost":
        return min(results, key=lambda r: (r.average_cost_usd, r.average_duration_ms, r.memory_mb))
    if strategy == "speed":
        return min(results, key=lambda r: (r.average_duration_ms, r.average_cost_usd, r.memory_mb))
    if strategy != "balanced":
        raise ValueError(f"unknown strategy {strategy!r}")
    costs = [r.average_cost_usd for r in results]
    durations = [r.average_duration_ms for r in results]

    def score(r: PowerResult) -> float:
        return balanced_weight * _normalised(r.average_cost_usd, min(costs), max(costs)) + (1 - balanced_weight) * _normalised(
            r.average_duration_ms, min(durations), max(durations)
        )

    return min(results, key=lambda r: (score(r), r.memory_mb))


def analyze(measurements: Sequence[Mapping[str, Any]], strategy: str, balanced_weight: float = DEFAULT_BALANCED_WEIGHT) -> dict[str, Any]:
    results = price_results(measurements)
    best = choose(results, strategy, balanced_weight)
    return {
        "power": best.memory_mb,
        "cost": best.average_cost_usd,
        "duration": best.average_duration_ms,
        "strategy": strategy,
        "results": [r.as_dict() for r in results],
    }


def result_table(analysis: Mapping[str, Any]) -> str:
    lines = [f"{'memory MB':>9}  {'avg billed ms':>13}  {'USD / invocation':>16}  {'USD / 1M':>9}"]
    for row in analysis["results"]:
        mark = "  <- chosen" if row["value"] == analysis["power"] else ""
        lines.append(
            f"{row['value']:>9}  {row['averageDuration']:>13.1f}  {row['averagePrice']:>16.10f}  {row['averagePrice'] * 1e6:>9.2f}{mark}"
        )
    return "\n".join(lines)


def text_chart(analysis: Mapping[str, Any], width: int = 40) -> str:
    """Two horizontal bar charts, duration and cost per memory value, scaled to the largest value."""
    rows = analysis["results"]
    lines = []
    for title, key, fmt in (("avg billed duration (ms)", "averageDuration", "{:.1f}"), ("cost per 1M invocations (USD)", "averagePrice", "{:.2f}")):
        scale = 1e6 if key == "averagePrice" else 1.0
        top = max(row[key] * scale for row in rows) or 1.0
        lines.append(title)
        for row in rows:
            value = row[key] * scale
            lines.append(f"{row['value']:>6} MB |{'#' * max(1, round(width * value / top)):<{width}}| {fmt.format(value)}")
    return "\n".join(lines)
