"""What the demo reports after streaming: why the platform refused a record, and only this run's charts.

The stream consumer logs each record it refuses as one JSON line (`"message": "record rejected"`,
its sequence number as `record_id`, and the `reason`); the local Lambda service writes a function's
lines to its log group (/aws/lambda/<name>) on the emulator. The demo reads the consumer's group and
keeps the refusals of the records it sent, so the summary says why each record ended at the failure queue.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from collections.abc import Container, Iterable
from pathlib import Path
from typing import Any

from patternwatch_shared.names.functions import KINESIS_CONSUMER

REJECTED_MESSAGE = "record rejected"


@dataclass(frozen=True)
class Rejection:
    sequence_number: str
    reason: str


def read_rejections(lines: Iterable[str], sent: Container[str] | None = None) -> list[Rejection]:
    """The stream consumer's refusals among log `lines`, one per record (the last reason wins: a
    record refused again on a retry is one record); only the records in `sent`, if given."""
    found: dict[str, str] = {}
    for line in lines:
        if REJECTED_MESSAGE not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("message") == REJECTED_MESSAGE and entry.get("service") == KINESIS_CONSUMER.service_name:
            record = str(entry.get("record_id"))
            if sent is None or record in sent:
                found[record] = str(entry.get("reason"))
    return [Rejection(sequence, reason) for sequence, reason in found.items()]


def describe_rejections(
    rejections: list[Rejection],
    sent: dict[str, dict[str, Any]],
    lines: dict[tuple[str, int], int] | None = None,
    source: str | None = None,
) -> str:
    """One line per refused record: which bar it was (and its CSV line, if it came from one) and why.

    `sent` maps the sequence numbers Kinesis gave the demo's records to the bars it sent.
    """
    if not rejections:
        return "records refused by the platform: none"
    out = [f"records refused by the platform: {len(rejections)} (each went to the failure queue after its retries)"]
    for rejection in rejections:
        bar = sent.get(rejection.sequence_number)
        if bar is None:
            what = f"record {rejection.sequence_number} (not sent by this run)"
        else:
            day = datetime.fromtimestamp(bar["timestamp"], timezone.utc).strftime("%Y-%m-%d")
            line = (lines or {}).get((bar["symbol"], bar["timestamp"]))
            where = f" ({source}:{line})" if line is not None and source else ""
            what = f"{bar['symbol']} {day}{where}"
        out.append(f"  {what}: {rejection.reason}")
    return "\n".join(out)


def remove_stale_charts(output_dir: Path, keep: list[Path]) -> list[Path]:
    """Delete the PNGs in `output_dir` that this run did not write; returns what was removed."""
    kept = {path.resolve() for path in keep}
    removed = [path for path in sorted(output_dir.glob("*.png")) if path.resolve() not in kept]
    for path in removed:
        path.unlink()
    return removed
