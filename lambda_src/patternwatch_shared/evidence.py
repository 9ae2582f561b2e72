"""Where an alert's evidence lives in the data bucket (the contract between its writer and its readers).

The alert processor writes, for every alert, `evidence/<sha256 hex of the alertId>/evidence.json` and, for
a pattern alert, `evidence/<same>/chart.png`; the approval page reads the chart back. The alertId is
hashed so that any alertId (it contains `#` and may contain `/`) gives a fixed-length, URL-safe key.
"""
from __future__ import annotations

import hashlib
from typing import NamedTuple

EVIDENCE_PREFIX = "evidence/"
CHART_FILE = "chart.png"
DATA_FILE = "evidence.json"


class EvidenceKeys(NamedTuple):
    chart: str  # image/png; absent in the bucket for threshold alerts (they have no single pattern)
    data: str  # application/json


def evidence_keys(alert_id: str) -> EvidenceKeys:
    folder = f"{EVIDENCE_PREFIX}{hashlib.sha256(alert_id.encode('utf-8')).hexdigest()}/"
    return EvidenceKeys(chart=f"{folder}{CHART_FILE}", data=f"{folder}{DATA_FILE}")
