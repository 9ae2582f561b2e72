"""Where an alert's evidence lives in the data bucket: one helper computes the keys, for writers and readers.

    evidence/<sha256 hex of the alertId>/evidence.json   the alert, the match, the bars window (application/json)
    evidence/<sha256 hex of the alertId>/chart.png       that window with the pattern's extrema marked (image/png)

The alert processor writes both before it publishes anything about the alert (threshold alerts get no
chart); the approval page reads the chart. Hashing the alertId keeps keys fixed-length and free of the
`#` and symbols an id carries, and the same alert always lands on the same keys.
"""
from __future__ import annotations

import hashlib
from typing import Final, NamedTuple

EVIDENCE_PREFIX: Final = "evidence/"
CHART_FILE: Final = "chart.png"
DATA_FILE: Final = "evidence.json"
CHART_CONTENT_TYPE: Final = "image/png"
DATA_CONTENT_TYPE: Final = "application/json"


class EvidenceKeys(NamedTuple):
    chart: str
    data: str


def evidence_keys(alert_id: str) -> EvidenceKeys:
    folder = f"{EVIDENCE_PREFIX}{hashlib.sha256(alert_id.encode('utf-8')).hexdigest()}/"
    return EvidenceKeys(chart=folder + CHART_FILE, data=folder + DATA_FILE)
