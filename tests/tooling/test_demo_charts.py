"""The demo's charts and its evidence line, and the docs' example charts: all from the one renderer."""
from __future__ import annotations

import io

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from pattern_charts.annotations import ALERT_CONFIDENCE_THRESHOLD
from patternwatch_shared.detection import alerts, detect_in, severity_for
from patternwatch_shared.evidence import evidence_keys
from patternwatch_shared.models import Bar
from patternwatch_shared.names.table import ALERT_STATE_EVENT_EMITTED, ALERT_STATE_NOT_REQUIRED
from patternwatch_shared.storage import StoredPattern, TradingPatternsTable
from tooling import chart_examples, demo

REGION = "us-east-1"
OUTPUTS = {"trading_patterns_table_name": "TradingPatterns-test", "data_bucket_name": "patternwatch-data-test"}


@pytest.fixture
def stored_demo(monkeypatch, tmp_path):
    """The planted series stored as the stream consumer stores it: bars, and its patterns with alertState."""
    monkeypatch.setattr(demo, "OUTPUT_DIR", tmp_path)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        dynamodb = session.client("dynamodb")
        dynamodb.create_table(
            TableName=OUTPUTS["trading_patterns_table_name"], BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        )
        session.client("s3").create_bucket(Bucket=OUTPUTS["data_bucket_name"])
        table = TradingPatternsTable(dynamodb, OUTPUTS["trading_patterns_table_name"])
        bars = demo.planted_bars()
        table.put_bars([Bar.model_validate(bar) for bar in bars])
        detections = detect_in([{k: v for k, v in bar.items() if k != "symbol"} for bar in bars])
        for d in detections:
            table.put_pattern_once(StoredPattern(
                symbol=demo.PLANTED_SYMBOL, pattern=d.pattern, confidence=d.confidence, start_timestamp=d.start_timestamp,
                end_timestamp=d.end_timestamp, detected_at=demo.datetime.now(demo.timezone.utc), severity=severity_for(d.confidence, ALERT_CONFIDENCE_THRESHOLD),
                alert_state=ALERT_STATE_EVENT_EMITTED if alerts(d.confidence, ALERT_CONFIDENCE_THRESHOLD) else ALERT_STATE_NOT_REQUIRED, extrema=d.extrema,
            ))
        yield session, detections


def test_the_demo_draws_each_symbol_with_the_renderer_alerted_patterns_prominent(stored_demo, tmp_path):
    session, detections = stored_demo
    charts = demo.draw_charts(session, None, OUTPUTS, [demo.PLANTED_SYMBOL, "NOBARS"])
    (path,) = charts
    assert path == tmp_path / "SYNTH.png" and Image.open(path).format == "PNG"
    chart = charts[path]
    alerted = [d for d in detections if alerts(d.confidence, ALERT_CONFIDENCE_THRESHOLD)]
    assert [(m.pattern, m.confidence) for m in chart.prominent] == [(d.pattern, d.confidence) for d in alerted]
    assert [label for label, _, _ in chart.prominent[0].labels] == ["LS", "N1", "H", "N2", "RS"]
    assert len(chart.faint) + chart.omitted + len(chart.prominent) == len(detections)
    assert demo.PLANTED_PRICE_BASIS in chart.title and f"{len(detections)} detected patterns, {len(alerted)} alerted" in chart.title


def test_the_price_basis_says_where_the_prices_come_from():
    assert demo.price_basis("IBM", None) == "split- and dividend-adjusted"
    assert demo.price_basis("SYNTH", None) == demo.PLANTED_PRICE_BASIS
    assert demo.price_basis("XYZ", demo.Path("/tmp/my-bars.csv")) == "as given in my-bars.csv"


def test_the_evidence_line_counts_the_objects_and_copies_one_chart_out(stored_demo, tmp_path):
    session, _ = stored_demo
    s3 = session.client("s3")
    assert demo.evidence_summary(session, None, OUTPUTS).startswith("evidence objects written: 0 ")
    for alert_id in ("A#1", "B#2"):
        keys = evidence_keys(alert_id)
        s3.put_object(Bucket=OUTPUTS["data_bucket_name"], Key=keys.data, Body=b"{}")
    s3.put_object(Bucket=OUTPUTS["data_bucket_name"], Key=evidence_keys("A#1").chart, Body=b"\x89PNG chart")
    s3.put_object(Bucket=OUTPUTS["data_bucket_name"], Key="other/not-evidence.json", Body=b"{}")
    line = demo.evidence_summary(session, None, OUTPUTS)
    assert line.startswith("evidence objects written: 3 in s3://patternwatch-data-test/evidence/ (2 evidence.json, 1 chart.png)")
    assert (tmp_path / "evidence-chart.png").read_bytes() == b"\x89PNG chart"


def test_the_docs_examples_come_from_the_renderer(tmp_path):
    demo_png, evidence_png = chart_examples.write(tmp_path)
    assert Image.open(io.BytesIO(demo_png.read_bytes())).format == "PNG"
    evidence = chart_examples.evidence_example()
    assert evidence.chart_png == evidence_png.read_bytes()
    assert [p["label"] for p in evidence.document["match"]["extrema"]] == ["LS", "N1", "H", "N2", "RS"]
    shown = chart_examples.demo_example()
    assert shown.prominent == () and shown.omitted > len(shown.faint) > 0  # real stocks rarely reach the alerting bar
