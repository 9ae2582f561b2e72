"""The charts in docs/, drawn by the one renderer (pattern_charts) from the demo's own data.

- `chart-demo-example.png`: IBM as `make demo` charts it (the newest 750 split- and dividend-adjusted daily
  bars from bokeh_sampledata, every match the engine reports on them);
- `chart-evidence-example.png`: the evidence chart the alert processor stores for the demo's planted
  head-and-shoulders (SYNTH): the same `build_evidence` call, on the match's window.

    python -m tooling.chart_examples [--output-dir docs/img]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .demo import PLANTED_SYMBOL, REAL_PRICE_BASIS, planted_bars, real_bars
from .local_platform import PROJECT_ROOT

DEMO_EXAMPLE = "chart-demo-example.png"
EVIDENCE_EXAMPLE = "chart-evidence-example.png"
DEMO_SYMBOL = "IBM"
DEMO_BARS = 750


def _detections(rows: list[dict]):
    from patternwatch_shared.detection import detect_in

    return detect_in(rows)


def demo_example():
    """IBM's chart as the demo draws it (matches from the engine rather than from the emulator's table)."""
    from pattern_charts.render import ChartMatch, render_chart

    rows = real_bars(DEMO_SYMBOL, DEMO_BARS)
    matches = [ChartMatch(d.pattern, d.confidence, d.start_timestamp, d.end_timestamp, d.extrema) for d in _detections(rows)]
    return render_chart(DEMO_SYMBOL, rows, matches, price_basis=REAL_PRICE_BASIS,
                        headline=f"{len(rows)} daily bars (the demo's newest {DEMO_BARS}); {len(matches)} detected patterns")


def evidence_example():
    """The evidence the alert processor builds for the planted head-and-shoulders's CRITICAL alert."""
    from pattern_charts.annotations import ALERT_CONFIDENCE_THRESHOLD
    from patternwatch_shared.alert_evidence import CONTEXT_BARS, ExtremaSource, build_evidence
    from patternwatch_shared.detection import severity_for
    from patternwatch_shared.keys import alert_id, pattern_sort_key
    from patternwatch_shared.models import AlertMessage

    rows = [{k: v for k, v in bar.items() if k != "symbol"} for bar in planted_bars()]
    match = max((d for d in _detections(rows) if d.pattern == "head-and-shoulders"), key=lambda d: d.confidence)
    start = next(i for i, row in enumerate(rows) if row["timestamp"] == match.start_timestamp)
    end = next(i for i, row in enumerate(rows) if row["timestamp"] == match.end_timestamp)
    alert = AlertMessage(
        alertId=alert_id(PLANTED_SYMBOL, pattern_sort_key(match.end_timestamp, match.pattern)), source="stream",
        severity=severity_for(match.confidence, ALERT_CONFIDENCE_THRESHOLD), detectedAt="2026-01-01T00:00:00.000000Z", confidence=match.confidence,
        symbol=PLANTED_SYMBOL, pattern=match.pattern, startTimestamp=match.start_timestamp, endTimestamp=match.end_timestamp,
    )
    return build_evidence(alert, bars=rows[max(0, start - CONTEXT_BARS) : end + 1], extrema=list(match.extrema),
                          extrema_source=ExtremaSource.STORED_PATTERN)


def write(output_dir: Path) -> list[Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    demo, evidence = output_dir / DEMO_EXAMPLE, output_dir / EVIDENCE_EXAMPLE
    demo.write_bytes(demo_example().png)
    evidence.write_bytes(evidence_example().chart_png)
    return [demo, evidence]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=PROJECT_ROOT / "docs" / "img")
    for path in write(parser.parse_args(argv).output_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
