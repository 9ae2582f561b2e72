"""pattern-detector's REST routes: POST /patterns and GET /patterns/{symbol} (paginated)."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from lambda_testkit import BAD_BASE64_BODIES, api_event, planted_bars
from patternwatch_shared.names.table import ALERT_STATE_NOT_REQUIRED
from patternwatch_shared.storage import StoredPattern, TradingPatternsTable
from pattern_detector import handler


def post_patterns(body, context) -> tuple[int, dict]:
    raw = body if isinstance(body, str) or body is None else json.dumps(body)
    response = handler.lambda_handler(api_event("POST", "/patterns", "/patterns", body=raw), context)
    return response["statusCode"], json.loads(response["body"])


def get_patterns(symbol: str, context, **query) -> tuple[int, dict]:
    event = api_event("GET", "/patterns/{symbol}", f"/patterns/{symbol}", path_parameters={"symbol": symbol}, query=query or None)
    response = handler.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def request_bars(pattern="double-top", seed=1):
    bars, end = planted_bars("API", pattern, seed=seed)
    return [{k: v for k, v in bar.items() if k != "symbol"} for bar in bars], end


def test_post_patterns_returns_the_planted_match(aws_resources, lambda_context):
    bars, end = request_bars()
    code, body = post_patterns({"symbol": "API", "bars": bars}, lambda_context)
    assert code == 200
    assert body["barCount"] == len(bars)
    found = [m for m in body["matches"] if m["pattern"] == "double-top" and m["end"] == end]
    assert found and found[0]["confidence"] > 0.95
    assert found[0]["endTimestamp"] == bars[end]["timestamp"]
    assert len(found[0]["extrema"]) == 3


def test_post_patterns_can_restrict_patterns_and_window(aws_resources, lambda_context):
    bars, _ = request_bars()
    code, body = post_patterns({"symbol": "API", "bars": bars, "patterns": ["head-and-shoulders"], "window": 38}, lambda_context)
    assert code == 200
    assert all(m["pattern"] == "head-and-shoulders" for m in body["matches"])


GOOD = {"timestamp": 1_700_000_000, "open": 2.0, "high": 3.0, "low": 1.0, "close": 2.0, "volume": 1.0}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (None, "required"),
        ("", "required"),
        ("{not json", "JSON"),
        ({"bars": [GOOD]}, "symbol"),
        ({"symbol": "AAPL"}, "bars"),
        ({"symbol": "AAPL", "bars": [GOOD], "debug": True}, "debug"),
        ({"symbol": "AAPL", "bars": "lots"}, "bars"),
        ({"symbol": "AAPL", "bars": [{**GOOD, "high": 0.5}]}, "high"),
        ({"symbol": "AAPL", "bars": [{**GOOD, "close": -2.0}]}, "close"),
        ('{"symbol":"AAPL","bars":[{"timestamp":1700000000,"open":NaN,"high":3,"low":1,"close":2,"volume":1}]}', "open"),
        ({"symbol": "AAPL", "bars": [GOOD], "patterns": ["cup-and-handle"]}, "unknown patterns: cup-and-handle"),
        ({"symbol": "AAPL", "bars": [GOOD], "window": 3}, "window"),
        ({"symbol": "AAPL", "bars": [GOOD], "window": "38"}, "window"),
        ({"symbol": "AAPL", "bars": [{**GOOD, "timestamp": 1_700_000_000 + i} for i in range(5001)]}, "bars"),
        ({"symbol": "A" * 100, "bars": [GOOD]}, "symbol"),
        ('{"symbol":"AAPL","symbol":"MSFT","bars":[]}', "duplicate key 'symbol'"),
        (json.dumps({"symbol": "AAPL", "bars": [GOOD]}).replace('"volume": 1.0', '"volume": 1.0, "volume": 2.0'), "duplicate key 'volume'"),
        ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ],
)
def test_post_patterns_rejects_bad_bodies_with_400(aws_resources, lambda_context, body, reason):
    code, payload = post_patterns(body, lambda_context)
    assert code == 400
    assert reason in payload["message"]


@pytest.mark.parametrize("body", BAD_BASE64_BODIES)
def test_post_patterns_with_a_base64_flag_and_a_body_that_does_not_decode_is_400(aws_resources, lambda_context, body):
    event = api_event("POST", "/patterns", "/patterns", body=body, base64_encoded=True)
    response = handler.lambda_handler(event, lambda_context)
    assert response["statusCode"] == 400
    assert "base64" in json.loads(response["body"])["message"]


def test_post_patterns_accepts_a_base64_encoded_body(aws_resources, lambda_context):
    bars, _ = request_bars()
    body = base64.b64encode(json.dumps({"symbol": "API", "bars": bars}).encode()).decode()
    response = handler.lambda_handler(api_event("POST", "/patterns", "/patterns", body=body, base64_encoded=True), lambda_context)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["barCount"] == len(bars)


def test_the_window_is_one_contract_in_the_model_the_engine_and_the_api_docs():
    from pathlib import Path

    from pattern_engine import detect
    from pattern_engine.limits import MIN_WINDOW
    from patternwatch_shared.models import MAX_REQUEST_WINDOW, PatternsRequest

    window = PatternsRequest.model_json_schema()["properties"]["window"]
    assert (window["minimum"], window["maximum"]) == (MIN_WINDOW, MAX_REQUEST_WINDOW)
    with pytest.raises(ValueError, match=f"window must be at least {MIN_WINDOW} bars"):
        detect({"timestamp": [], "open": [], "high": [], "low": [], "close": [], "volume": []}, window=MIN_WINDOW - 1)
    docs = (Path(__file__).resolve().parents[3] / "docs" / "lambda.md").read_text()
    assert f'"window"?:{MIN_WINDOW}..{MAX_REQUEST_WINDOW}' in docs


@pytest.mark.parametrize(("window", "code"), [(5, 400), (11, 400), (12, 200), (500, 200), (501, 400)])
def test_post_patterns_window_bounds_are_the_engines(aws_resources, lambda_context, window, code):
    bars, _ = request_bars()
    status, body = post_patterns({"symbol": "API", "bars": bars, "window": window}, lambda_context)
    assert status == code
    if code == 400:
        assert body["message"].startswith("window: Input should be")


def store_patterns(resources, symbol: str, count: int) -> list[str]:
    table = TradingPatternsTable(resources.dynamodb, "TradingPatterns-test")
    detected = datetime(2026, 1, 5, tzinfo=timezone.utc)
    sort_keys = []
    for i in range(count):
        stored = StoredPattern(
            symbol=symbol, pattern="double-top", confidence=0.5 + i / 100, start_timestamp=1_700_000_000 + i * 60,
            end_timestamp=1_700_003_000 + i * 60, detected_at=detected + timedelta(minutes=i), severity="LOW",
            alert_state=ALERT_STATE_NOT_REQUIRED, extrema=((1_700_000_000 + i * 60, 10.0),),
        )
        table.put_pattern_once(stored)
        sort_keys.append(stored.sort_key)
    return sort_keys


def test_get_patterns_pages_through_every_match_once_newest_first(aws_resources, lambda_context):
    store_patterns(aws_resources, "AAPL", 25)
    store_patterns(aws_resources, "MSFT", 3)
    seen, token, pages = [], None, 0
    while True:
        query = {"limit": "10"} | ({"nextToken": token} if token else {})
        code, body = get_patterns("AAPL", lambda_context, **query)
        assert code == 200 and body["symbol"] == "AAPL"
        seen.extend(item["endTimestamp"] for item in body["items"])
        pages += 1
        token = body["nextToken"]
        if not token:
            break
    assert pages >= 3
    assert seen == sorted({1_700_003_000 + i * 60 for i in range(25)}, reverse=True)


def test_get_patterns_default_page_and_unknown_symbol(aws_resources, lambda_context):
    store_patterns(aws_resources, "AAPL", 3)
    code, body = get_patterns("AAPL", lambda_context)
    assert code == 200 and len(body["items"]) == 3 and body["nextToken"] is None
    assert body["items"][0]["extrema"] == [{"timestamp": 1_700_000_120, "price": 10.0}]
    assert get_patterns("ZZZZ", lambda_context) == (200, {"symbol": "ZZZZ", "items": [], "nextToken": None})


def foreign_token(symbol: str) -> str:
    raw = json.dumps({"pk": f"PATTERN#{symbol}", "sk": "000000000001#double-top"}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("symbol", "query"),
    [
        ("aapl", {}),
        ("A" * 40, {}),
        ("AAPL", {"limit": "0"}),
        ("AAPL", {"limit": "101"}),
        ("AAPL", {"limit": "ten"}),
        # Unicode digits pass str.isdigit() but not int(); 4,301 digits exceed int()'s default limit.
        ("AAPL", {"limit": "\u00b2"}),
        ("AAPL", {"limit": "\u0663"}),
        ("AAPL", {"limit": "\uff15"}),
        ("AAPL", {"limit": "1" * 4301}),
        ("AAPL", {"limit": "0" * 4300 + "5"}),
        ("AAPL", {"limit": " 5"}),
        ("AAPL", {"limit": "+5"}),
        ("AAPL", {"limit": ""}),
        ("AAPL", {"nextToken": "%%%"}),
        ("AAPL", {"nextToken": base64.urlsafe_b64encode(b"[1,2]").decode()}),
        ("AAPL", {"nextToken": foreign_token("MSFT")}),
        ("AAPL", {"nextToken": "A" * 5000}),
        ("AAPL", {"nextToken": base64.urlsafe_b64encode(b'{"pk":"PATTERN#MSFT","pk":"PATTERN#AAPL","sk":"1"}').decode()}),
    ],
)
def test_get_patterns_rejects_bad_symbol_limit_and_token(aws_resources, lambda_context, symbol, query):
    code, body = get_patterns(symbol, lambda_context, **query)
    assert code == 400 and body["message"]


def test_a_non_finite_number_never_leaves_in_an_api_response(aws_resources, lambda_context, monkeypatch):
    from patternwatch_shared.detection import Detection

    broken = Detection("double-top", float("nan"), 0, 37, 1_700_000_000, 1_700_002_220, ((1_700_000_000, float("inf")),))
    monkeypatch.setattr(handler, "detect_in", lambda *args, **kwargs: [broken])
    bars, _ = request_bars()
    with pytest.raises(ValueError, match="not JSON compliant"):
        post_patterns({"symbol": "API", "bars": bars}, lambda_context)
