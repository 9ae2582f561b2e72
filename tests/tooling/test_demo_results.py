"""What the demo reports after streaming: the platform's reason for each refused record, this run's charts only."""
from __future__ import annotations

import json

from patternwatch_shared.names.functions import ALERT_PROCESSOR, KINESIS_CONSUMER
from tooling.demo_results import Rejection, describe_rejections, read_rejections, remove_stale_charts


def log_line(message: str, service: str = KINESIS_CONSUMER.service_name, **extra) -> str:
    return json.dumps({"level": "WARNING", "message": message, "service": service, **extra})


def test_only_this_runs_refusals_by_the_stream_consumer_are_read_one_per_record():
    lines = [
        log_line("record rejected", record_id="1", reason="from an earlier run"),
        log_line("record rejected", record_id="2", reason="invalid bar: high 9.0 is below low 9.5"),
        '{"_aws": {"CloudWatchMetrics": []}, "RecordsRejected": [1]}',  # an EMF blob
        "not json, record rejected",
        log_line("record rejected", service=ALERT_PROCESSOR.service_name, record_id="m-1", reason="another function"),
        log_line("batch ingested", records=3),
        log_line("record rejected", record_id="2", reason="invalid bar: high 9.0 is below low 9.5"),  # its retry
        log_line("record rejected", record_id="3", reason="DynamoDB refused the bar: Item too large"),
    ]
    assert read_rejections(lines, sent={"2": {}, "3": {}}) == [
        Rejection("2", "invalid bar: high 9.0 is below low 9.5"),
        Rejection("3", "DynamoDB refused the bar: Item too large"),
    ]
    assert [r.sequence_number for r in read_rejections(lines)] == ["1", "2", "3"]
    assert read_rejections([]) == []


def test_each_refusal_is_described_by_its_bar_csv_line_and_reason():
    sent = {"2": {"symbol": "AAPL", "timestamp": 1704153600}, "3": {"symbol": "SYNTH", "timestamp": 1704240000}}
    text = describe_rejections(
        [Rejection("2", "invalid bar: boom"), Rejection("3", "DynamoDB refused the bar: x"), Rejection("9", "old")],
        sent,
        lines={("AAPL", 1704153600): 7},
        source="my.csv",
    )
    assert text.splitlines() == [
        "records refused by the platform: 3 (each went to the failure queue after its retries)",
        "  AAPL 2024-01-02 (my.csv:7): invalid bar: boom",
        "  SYNTH 2024-01-03: DynamoDB refused the bar: x",
        "  record 9 (not sent by this run): old",
    ]
    assert describe_rejections([], sent) == "records refused by the platform: none"


def test_charts_an_earlier_run_left_are_removed_and_this_runs_kept(tmp_path):
    for name in ("AAPL.png", "OLD.png", "notes.txt"):
        (tmp_path / name).write_text("x")
    removed = remove_stale_charts(tmp_path, keep=[tmp_path / "AAPL.png"])
    assert removed == [tmp_path / "OLD.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["AAPL.png", "notes.txt"]
