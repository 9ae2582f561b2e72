"""Small fixed-seed versions of the accuracy targets (the full tables come from
benchmarks/evaluate_pattern_engine.py, on different seeds)."""
from __future__ import annotations

import numpy as np
import pytest

from pattern_engine import PATTERN_NAMES, detect
from pattern_engine.synthetic import is_recalled, planted, random_walk

# Hundreds of detections per test: `make test` runs them, `make test-fast` does not.
pytestmark = pytest.mark.slow

ALERT_THRESHOLD = 0.9
SEEDS = range(500, 508)


def recall(noise: float) -> tuple[float, float]:
    """(share of planted patterns found, share found with confidence >= the alerting threshold)."""
    found = alerted = total = 0
    for pattern in PATTERN_NAMES:
        for seed in SEEDS:
            series = planted(pattern, noise, seed)
            hits = [m for m in detect(series.bars, patterns=[pattern]) if is_recalled(series, [m])]
            total += 1
            found += bool(hits)
            alerted += any(m.confidence >= ALERT_THRESHOLD for m in hits)
    return found / total, alerted / total


@pytest.fixture(scope="module")
def recall_at_0_3_percent():
    return recall(0.003)


def test_recall_at_0_3_percent_noise(recall_at_0_3_percent):
    assert recall_at_0_3_percent[0] >= 0.95


def test_most_planted_patterns_at_0_3_percent_noise_reach_the_alerting_threshold(recall_at_0_3_percent):
    assert recall_at_0_3_percent[1] >= 0.7


def test_recall_at_1_percent_noise():
    assert recall(0.01)[0] >= 0.75


def test_random_walks_rarely_alert():
    n_bars = alerts = matches = 0
    for seed, volatility in ((600, 0.015), (601, 0.02)):
        bars = random_walk(25_000, seed=seed, daily_vol=volatility)
        found = detect(bars)
        n_bars += len(bars["close"])
        matches += len(found)
        alerts += sum(m.confidence >= ALERT_THRESHOLD for m in found)
    # Random walks satisfy the formal definitions all the time; the confidence score must not.
    assert matches / n_bars * 1000 > 10
    assert alerts / n_bars * 1000 <= 1.0


def test_confidence_separates_planted_patterns_from_random_walk_matches():
    walk = detect(random_walk(20_000, seed=602))
    planted_scores = [
        max((m.confidence for m in detect(s.bars, patterns=[p]) if is_recalled(s, [m])), default=0.0)
        for p in PATTERN_NAMES
        for s in (planted(p, 0.003, seed) for seed in SEEDS)
    ]
    assert np.median(planted_scores) > 0.9 > np.quantile([m.confidence for m in walk], 0.98)
