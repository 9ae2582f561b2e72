"""The local runtime's pure rules: gateway routing and response mapping, EMF extraction, EventBridge target input."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from tooling.local_aws import api_gateway, event_delivery, telemetry


@dataclass
class FakeResource:
    id: str
    path: str
    resource_methods: dict = field(default_factory=dict)

    def get_path(self) -> str:
        return self.path


@dataclass
class FakeApi:
    resources: dict


def api_with(*paths: str) -> FakeApi:
    return FakeApi({str(i): FakeResource(str(i), p) for i, p in enumerate(paths)})


@pytest.mark.parametrize(
    ("path", "resource", "params"),
    [
        ("/patterns", "/patterns", {}),
        ("/patterns/AAPL", "/patterns/{symbol}", {"symbol": "AAPL"}),
        ("/patterns/latest", "/patterns/latest", {}),  # a literal segment wins over {symbol}
        ("/approve/abc/def", "/approve/{proxy+}", {"proxy": "abc/def"}),
        ("/", "/", {}),
    ],
)
def test_requests_are_matched_to_the_most_specific_resource(path, resource, params):
    api = api_with("/", "/patterns", "/patterns/{symbol}", "/patterns/latest", "/approve/{proxy+}")
    matched, found = api_gateway.match_resource(api, path)
    assert matched.get_path() == resource and found == params


def test_an_unknown_path_matches_nothing():
    assert api_gateway.match_resource(api_with("/patterns", "/patterns/{symbol}"), "/patterns/A/B") == (None, {})


def test_a_proxy_result_becomes_the_http_response():
    payload = {"statusCode": 201, "headers": {"Content-Type": "application/json", "X-One": "a"},
               "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "body": json.dumps({"ok": True})}
    response = api_gateway._proxy_response(json.dumps(payload).encode())
    assert response.status == 201 and json.loads(response.body) == {"ok": True}
    assert ("Set-Cookie", "a=1") in response.headers and ("Set-Cookie", "b=2") in response.headers
    assert ("X-One", "a") in response.headers


def test_a_binary_proxy_result_is_decoded():
    payload = {"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(b"\x89PNG").decode()}
    assert api_gateway._proxy_response(json.dumps(payload).encode()).body == b"\x89PNG"


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b'{"statusCode": "200"}', b'{"statusCode": 200, "extra": 1}'])
def test_a_malformed_proxy_result_is_refused(payload):
    assert api_gateway._proxy_response(payload) is None


def test_emf_yields_one_datum_per_dimension_set_with_every_value():
    line = json.dumps({
        "_aws": {"Timestamp": 1_700_000_000_000, "CloudWatchMetrics": [
            {"Namespace": "NS", "Dimensions": [["service"], ["service", "PatternType"]],
             "Metrics": [{"Name": "Duration", "Unit": "Milliseconds"}, {"Name": "Missing", "Unit": "Count"}]}]},
        "service": "svc", "PatternType": "double-top", "Duration": [1.5, 2.5],
    })
    ((namespace, data),) = telemetry.emf_metric_data(line)
    assert namespace == "NS" and len(data) == 2  # "Missing" has no member: skipped, as CloudWatch does
    assert {tuple(d["Name"] for d in datum["Dimensions"]) for datum in data} == {("service",), ("service", "PatternType")}
    assert all(datum["Values"] == [1.5, 2.5] and datum["Unit"] == "Milliseconds" for datum in data)
    assert data[0]["Timestamp"] == datetime(2023, 11, 14, 22, 13, 20)  # _aws.Timestamp, as moto's naive UTC


@pytest.mark.parametrize("line", ["plain text", '{"message": "no metrics"}', '{"_aws": {"Timestamp": 1}}', "{broken"])
def test_lines_that_are_not_emf_give_no_metrics(line):
    assert telemetry.emf_metric_data(line) == []


def test_an_emf_dimension_without_its_member_is_an_error():
    line = json.dumps({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "NS", "Dimensions": [["absent"]],
                                                                        "Metrics": [{"Name": "M"}]}]}, "M": 1})
    with pytest.raises(telemetry.EmfError):
        telemetry.emf_metric_data(line)


EVENT = {"version": "0", "id": "1", "detail-type": "PatternDetected", "source": "patternwatch.patterns", "account": "1",
         "time": 1_700_000_000.0, "region": "us-east-1", "resources": [], "detail": {"symbol": "A", "confidence": 0.95},
         "ingestion-time": 1_700_000_000.0}


def test_a_target_gets_input_then_input_path_then_the_whole_event():
    assert event_delivery.target_input({"Arn": "x", "Input": '{"fixed": 1}', "InputPath": "$.detail"}, EVENT) == '{"fixed": 1}'
    assert json.loads(event_delivery.target_input({"Arn": "x", "InputPath": "$.detail"}, EVENT)) == EVENT["detail"]
    whole = json.loads(event_delivery.target_input({"Arn": "x"}, EVENT))
    assert whole["time"] == "2023-11-14T22:13:20Z" and "ingestion-time" not in whole and whole["detail"] == EVENT["detail"]


def test_an_input_transformer_builds_the_targets_input():
    target = {"Arn": "x", "InputTransformer": {"InputPathsMap": {"s": "$.detail.symbol"}, "InputTemplate": '{"symbol": "<s>"}'}}
    assert json.loads(event_delivery.target_input(target, EVENT)) == {"symbol": "A"}
