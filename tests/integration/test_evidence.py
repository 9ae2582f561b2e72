"""Each alert's evidence in the data bucket, on the deployed platform: written by AlertProcessor (its zip,
the shared layer and the chart layer, in a worker), encrypted with the platform key, under the lifecycle
rule, and named in the approval request."""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from patternwatch_shared.evidence import EVIDENCE_PREFIX, evidence_keys

from integration_helpers import as_records, drain, planted_bars, put_records, subscribe_inbox

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3(session, endpoint):
    return session.client("s3", endpoint_url=endpoint)


@pytest.fixture(scope="module")
def approval_request(deployed, runner, clients):
    """A planted head-and-shoulders streamed in: the approval request its CRITICAL alert produced (the first
    approver's; each approver gets their own link, with the same evidence keys)."""
    inbox = subscribe_inbox(clients, deployed["approval_requests_topic_arn"], "ItEvidenceApprovalInbox")
    put_records(clients, deployed["market_data_stream_name"], as_records(planted_bars("ITEVID")), "ITEVID")
    runner.drain()
    requests = [r for r in drain(clients, inbox) if r["alert"]["symbol"] == "ITEVID"]
    assert sorted(r["approver"] for r in requests) == ["ada", "grace"]  # envs/local.json
    assert requests[0]["evidence"] == requests[1]["evidence"]
    return requests[0]


def test_the_approval_request_names_the_evidence_written_before_it(deployed, approval_request, s3):
    where = evidence_keys(approval_request["alertId"])
    assert approval_request["evidence"] == {"chart": where.chart, "data": where.data}
    bucket = deployed["data_bucket_name"]
    evidence = json.loads(s3.get_object(Bucket=bucket, Key=where.data)["Body"].read())
    assert evidence["alertId"] == approval_request["alertId"]
    assert evidence["match"]["pattern"] == "head-and-shoulders"
    assert [p["label"] for p in evidence["match"]["extrema"]] == ["LS", "N1", "H", "N2", "RS"]
    rows = evidence["bars"]["rows"]
    assert rows and [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)
    assert rows[-1]["timestamp"] == approval_request["alert"]["endTimestamp"]
    chart = s3.get_object(Bucket=bucket, Key=where.chart)
    assert chart["ContentType"] == "image/png"
    assert Image.open(io.BytesIO(chart["Body"].read())).format == "PNG"


def test_evidence_objects_are_encrypted_with_the_platform_key(deployed, approval_request, s3):
    for key in approval_request["evidence"].values():
        head = s3.head_object(Bucket=deployed["data_bucket_name"], Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"] == deployed["kms_key_arn"], key
        assert head.get("BucketKeyEnabled") is True, key


def test_the_buckets_lifecycle_rule_covers_the_evidence_prefix(deployed, s3):
    rules = s3.get_bucket_lifecycle_configuration(Bucket=deployed["data_bucket_name"])["Rules"]

    def covers(rule: dict) -> bool:
        prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
        has_other_conditions = set(rule.get("Filter", {})) - {"Prefix"}
        return rule["Status"] == "Enabled" and EVIDENCE_PREFIX.startswith(prefix) and not has_other_conditions

    (rule,) = [r for r in rules if covers(r)]
    assert {"Days": 0, "StorageClass": "INTELLIGENT_TIERING"} in rule["Transitions"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
    assert s3.get_bucket_versioning(Bucket=deployed["data_bucket_name"])["Status"] == "Enabled"


def test_only_the_alert_processor_carries_the_chart_layer(deployed, clients):
    layers = {}
    for function in clients.lambda_.list_functions()["Functions"]:
        if function["FunctionName"].endswith("-local"):
            layers[function["FunctionName"]] = sorted(layer["Arn"].split(":")[6] for layer in function.get("Layers", []))
    assert layers["AlertProcessor-local"] == ["chart-dependencies-local", "shared-dependencies-local"]
    assert {name for name, names in layers.items() if "chart-dependencies-local" in names} == {"AlertProcessor-local"}
