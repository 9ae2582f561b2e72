"""Every alert's evidence in the data bucket, written before anything about the alert is published."""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image

from alert_processor import handler as alert_processor
from kinesis_consumer import handler as kinesis_consumer
from lambda_testkit import (
    APPROVERS, DATA_BUCKET, TRADING_PATTERNS, FlakyClient, alert_body, failed_ids, install_client, kinesis_bars_event,
    planted_bars, run_workflow, sqs_event,
)
from pattern_engine import detect
from patternwatch_shared import aws, keys
from patternwatch_shared.alert_evidence import (
    CONTEXT_BARS, STREAM_PRICE_BASIS, EvidenceWriter, ExtremaSource, build_evidence,
    extrema_from_details,
)
from patternwatch_shared.evidence import EVIDENCE_PREFIX, evidence_keys
from patternwatch_shared.models import AlertMessage, Bar
from patternwatch_shared.storage import StoredPattern, TradingPatternsTable


@pytest.fixture
def streamed_critical_alert(aws_resources, lambda_context):
    """A planted head-and-shoulders streamed through the kinesis consumer (its bars and pattern are stored),
    its PatternDetected event run through the analysis workflow's steps, whose decide step queues the CRITICAL
    alert on AlertQueue (returned as the parsed body, with the bars)."""
    bars, end = planted_bars("EVID")
    assert kinesis_consumer.lambda_handler(kinesis_bars_event(bars[: end + 1]), lambda_context) == {"batchItemFailures": []}
    (event,) = aws_resources.pattern_events()
    _, decided = run_workflow(event["detail"], lambda_context)
    assert decided["decision"] == "ALERT"
    (body,) = [b for b in aws_resources.drain(aws_resources.alert_queue_url) if b["severity"] == "CRITICAL"]
    return bars, body


def test_a_critical_alert_gets_its_chart_and_evidence_before_its_approval_request(aws_resources, lambda_context, streamed_critical_alert):
    bars, alert = streamed_critical_alert
    assert alert_processor.lambda_handler(sqs_event([json.dumps(alert)]), lambda_context) == {"batchItemFailures": []}

    where = evidence_keys(alert["alertId"])
    assert where.chart.startswith(EVIDENCE_PREFIX) and where.chart.endswith("/chart.png")
    objects = aws_resources.objects(EVIDENCE_PREFIX)
    assert set(objects) == {where.chart, where.data}
    head = aws_resources.s3.head_object(Bucket=DATA_BUCKET, Key=where.chart)
    assert head["ContentType"] == "image/png"
    assert aws_resources.s3.head_object(Bucket=DATA_BUCKET, Key=where.data)["ContentType"] == "application/json"
    assert Image.open(io.BytesIO(objects[where.chart])).format == "PNG"

    evidence = json.loads(objects[where.data])
    assert evidence["alert"] == alert and evidence["alertId"] == alert["alertId"]
    match = evidence["match"]
    assert (match["pattern"], match["startTimestamp"], match["endTimestamp"]) == ("head-and-shoulders", alert["startTimestamp"], alert["endTimestamp"])
    assert match["extremaSource"] == ExtremaSource.ALERT  # the workflow's alert carries the confirmed extrema
    assert [point["label"] for point in match["extrema"]] == ["LS", "N1", "H", "N2", "RS"]
    # The bars window: the CONTEXT_BARS before the match's first bar, through its last one, oldest first.
    timestamps = [bar["timestamp"] for bar in bars]
    first = timestamps.index(alert["startTimestamp"]) - CONTEXT_BARS
    window = evidence["bars"]["rows"]
    assert [row["timestamp"] for row in window] == timestamps[first : timestamps.index(alert["endTimestamp"]) + 1]
    assert window[0] == {k: bars[first][k] for k in ("timestamp", "open", "high", "low", "close", "volume")}
    assert evidence["bars"]["priceBasis"] == STREAM_PRICE_BASIS
    # What the chart shows, as the renderer reported it.
    chart = evidence["chart"]
    assert chart["key"] == where.chart and chart["bars"] == len(window)
    assert [entry["label"] for entry in chart["prominent"][0]["labels"]] == ["LS", "N1", "H", "N2", "RS"]
    assert [line["name"] for line in chart["prominent"][0]["lines"]] == ["neckline"]
    assert chart["priceAxis"] == "Price (USD)" and chart["volumeAxis"] == "Volume (shares)"
    assert f"Prices in USD, {STREAM_PRICE_BASIS}" in chart["title"]
    assert evidence["display"] == {"displayThreshold": 0.5, "alertThreshold": 0.9, "contextBars": CONTEXT_BARS}

    requests = aws_resources.published(aws_resources.approval_requests_inbox)  # one per approver
    assert len(requests) == len(APPROVERS)
    for request in requests:
        assert request["Message"]["evidence"] == {"chart": where.chart, "data": where.data}
        assert "X-Amz-Signature" not in json.dumps(request)


def test_a_failed_evidence_write_fails_the_message_and_nothing_is_published(aws_resources, lambda_context, streamed_critical_alert):
    _, alert = streamed_critical_alert
    event = sqs_event([json.dumps(alert), json.dumps(alert_body(alertId="other-high"))])
    install_client("s3", FlakyClient(aws_resources.s3, "put_object", failing_calls={1}))  # the CRITICAL alert's chart
    assert failed_ids(alert_processor.lambda_handler(event, lambda_context)) == [event["Records"][0]["messageId"]]
    assert aws_resources.published(aws_resources.approval_requests_inbox) == []
    assert aws_resources.drain(aws_resources.pending_queue_url) == []
    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["other-high"]

    # SQS redelivers it: now the evidence is written, then the approval is requested.
    assert alert_processor.lambda_handler({"Records": [event["Records"][0]]}, lambda_context) == {"batchItemFailures": []}
    assert evidence_keys(alert["alertId"]).chart in aws_resources.objects(EVIDENCE_PREFIX)
    assert len(aws_resources.published(aws_resources.approval_requests_inbox)) == len(APPROVERS)  # one per approver


def test_writing_the_same_alert_again_writes_the_same_keys_and_bytes(aws_resources, streamed_critical_alert):
    _, alert = streamed_critical_alert
    writer = EvidenceWriter(aws.client("s3"), DATA_BUCKET, TradingPatternsTable(aws.client("dynamodb"), TRADING_PATTERNS))
    message = AlertMessage.model_validate(alert)
    first = writer.write(message)
    stored = aws_resources.objects(EVIDENCE_PREFIX)
    second = writer.write(message)
    assert second.keys == first.keys and second.data_bytes == first.data_bytes and second.chart_png == first.chart_png
    assert aws_resources.objects(EVIDENCE_PREFIX) == stored


def test_an_alert_without_extrema_takes_them_from_the_stored_pattern(aws_resources, streamed_critical_alert):
    _, alert = streamed_critical_alert
    message = AlertMessage.model_validate({k: v for k, v in alert.items() if k != "details"})
    table = TradingPatternsTable(aws.client("dynamodb"), TRADING_PATTERNS)
    evidence = EvidenceWriter(aws.client("s3"), DATA_BUCKET, table).gather(message)
    match = evidence.document["match"]
    assert match["extremaSource"] == ExtremaSource.STORED_PATTERN
    assert [[p["timestamp"], p["price"]] for p in match["extrema"]] == alert["details"]["extrema"]
    assert [p["label"] for p in match["extrema"]] == ["LS", "N1", "H", "N2", "RS"]


def test_a_threshold_alert_gets_its_breaches_and_no_chart(aws_resources, lambda_context):
    table = TradingPatternsTable(aws.client("dynamodb"), TRADING_PATTERNS)
    window_end = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    for index, (confidence, minutes_before) in enumerate([(0.95, 1), (0.92, 2), (0.5, 3), (0.99, 30)]):
        table.put_pattern_once(StoredPattern(
            symbol=f"S{index}", pattern="double-top", confidence=confidence, start_timestamp=1_700_000_000,
            end_timestamp=1_700_003_000, detected_at=window_end - timedelta(minutes=minutes_before), severity="HIGH",
            alert_state="NOT_REQUIRED", extrema=((1_700_000_000, 10.0), (1_700_001_500, 9.0), (1_700_003_000, 10.0)),
        ))
    alert = alert_body(
        alertId=f"threshold#{keys.iso_utc(window_end)}", source="threshold", symbol=None, pattern=None, startTimestamp=None,
        endTimestamp=None, confidence=0.95,
        details={"breaches": 2, "evaluated": 3, "errorThreshold": 1, "confidenceThreshold": 0.9,
                 "windowStart": keys.iso_utc(window_end - timedelta(minutes=5)), "windowEnd": keys.iso_utc(window_end),
                 "topSymbol": "S0", "topPattern": "double-top"},
    )
    alert = {k: v for k, v in alert.items() if v is not None}
    assert alert_processor.lambda_handler(sqs_event([json.dumps(alert)]), lambda_context) == {"batchItemFailures": []}

    where = evidence_keys(alert["alertId"])
    objects = aws_resources.objects(EVIDENCE_PREFIX)
    assert set(objects) == {where.data}  # no chart for a threshold alert
    evidence = json.loads(objects[where.data])
    assert [(b["symbol"], b["confidence"]) for b in evidence["breaches"]] == [("S1", 0.92), ("S0", 0.95)]
    assert evidence["chart"] is None and "threshold" in evidence["chartOmitted"]
    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == [alert["alertId"]]


def test_an_alert_whose_bars_are_not_stored_still_gets_its_evidence_and_is_delivered(aws_resources, lambda_context):
    body = alert_body(alertId="no-bars")
    assert alert_processor.lambda_handler(sqs_event([json.dumps(body)]), lambda_context) == {"batchItemFailures": []}
    where = evidence_keys("no-bars")
    evidence = json.loads(aws_resources.objects(EVIDENCE_PREFIX)[where.data])
    assert evidence["bars"]["rows"] == [] and evidence["chart"] is None
    assert evidence["match"]["extremaSource"] == "unavailable"
    assert where.chart not in aws_resources.objects(EVIDENCE_PREFIX)
    assert [p["Message"]["alertId"] for p in aws_resources.published(aws_resources.trading_alerts_inbox)] == ["no-bars"]


def test_without_a_stored_pattern_the_extrema_are_found_again_by_the_engine(aws_resources):
    """A workflow alert for bars that were streamed, but whose pattern item is missing: the engine re-runs."""
    bars, end = planted_bars("REDO")
    table = TradingPatternsTable(aws.client("dynamodb"), TRADING_PATTERNS)
    table.put_bars([Bar.model_validate(bar) for bar in bars[: end + 1]])
    columns = {k: [bar[k] for bar in bars] for k in ("timestamp", "open", "high", "low", "close", "volume")}
    (match,) = [m for m in detect(columns) if m.end == end and m.pattern == "head-and-shoulders"]
    alert = AlertMessage.model_validate(alert_body(
        alertId="REDO#x", source="workflow", severity="CRITICAL", symbol="REDO", pattern="head-and-shoulders",
        confidence=match.confidence, startTimestamp=bars[match.start]["timestamp"], endTimestamp=bars[end]["timestamp"],
    ))
    evidence = EvidenceWriter(aws.client("s3"), DATA_BUCKET, table).gather(alert)
    assert evidence.document["match"]["extremaSource"] == ExtremaSource.RE_DETECTED
    assert [(p["timestamp"], p["price"]) for p in evidence.document["match"]["extrema"]] == [(bars[i]["timestamp"], price) for i, price in match.extrema]
    assert evidence.chart_png is not None


# Today's AlertMessage.details holds scalars only; the alert path may add the extrema (shared contract 3).
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_extrema_carried_by_the_alert_are_used_as_they_are():
    points = [[1_700_000_000, 10.0], [1_700_000_600, 9.0], [1_700_001_200, 10.5]]
    carried = AlertMessage.model_construct(**{**alert_body(), "details": {"extrema": points}})
    assert extrema_from_details(carried) == [(1_700_000_000, 10.0), (1_700_000_600, 9.0), (1_700_001_200, 10.5)]
    for malformed in ([[1, 2, 3]], [["t", 1.0]], [[True, 1.0]], "no", []):
        assert extrema_from_details(AlertMessage.model_construct(**{**alert_body(), "details": {"extrema": malformed}})) is None
    assert extrema_from_details(AlertMessage.model_validate(alert_body())) is None
    evidence = build_evidence(carried, bars=[], extrema=extrema_from_details(carried), extrema_source=ExtremaSource.ALERT)
    assert evidence.document["match"]["extremaSource"] == "alert" and evidence.written_keys() == {"data": evidence.keys.data}
