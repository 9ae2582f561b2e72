"""Fuzzing pattern-detector: its REST routes and its Step Functions actions.

API: every request is answered with a status (an exception would be API Gateway's 502): 200 for a
valid request, 400 for anything malformed (bodies, encodings, symbols, limits, tokens), 404/405 for
other routes; the body is valid JSON; the same request gives the same answer; GET changes nothing.

Workflow: every action returns output that is valid JSON, or raises InvalidInputError (the error the
state machine catches by name); `decide` queues an alert with the same id however often it runs.
"""
from __future__ import annotations

import base64
import copy
import functools
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_support import (
    DEEP_NESTING, EVENTS_PER_HANDLER, INVALID_SYMBOLS, NON_FINITE_TOKENS, T0, UNSTORABLE, VALID_SYMBOLS, count_event, fuzz,
    invalid_bar_texts, json_object, pairs_of, prices, read_strictly, tally, volumes,
)
from lambda_testkit import BAD_BASE64_BODIES, api_event, pattern_event_detail, planted_bars
from pattern_detector import handler
from patternwatch_shared.names.messages import PATTERN_FAMILIES
from patternwatch_shared.storage import StoredPattern, TradingPatternsTable
from patternwatch_shared.workflow import InvalidInputError

API = "pattern-detector API"
FAMILIES = sorted(PATTERN_FAMILIES)  # each family is named after the pattern that heads it
WORKFLOW = "pattern-detector workflow"


# --- request bodies -------------------------------------------------------------------------------
@st.composite
def series(draw, min_size: int = 1, max_size: int = 45) -> list[dict]:
    """Valid bars without a symbol, unique timestamps in any order; sometimes a planted pattern."""
    if draw(st.integers(0, 9)) == 0:
        bars, _ = planted_bars("PLANT", draw(st.sampled_from(FAMILIES)), seed=draw(st.integers(0, 2)))
        return [{k: v for k, v in bar.items() if k != "symbol"} for bar in bars]
    count = draw(st.integers(min_size, max_size))
    times = draw(st.permutations([T0 + 60 * i for i in range(count)]))
    out = []
    for timestamp in times:
        low, high = sorted((draw(prices), draw(prices)))
        out.append({"timestamp": timestamp, "open": low, "high": high, "low": low, "close": high, "volume": draw(volumes)})
    return out


@st.composite
def valid_bodies(draw) -> dict:
    body = {"symbol": draw(st.sampled_from(VALID_SYMBOLS)), "bars": draw(series())}
    if draw(st.booleans()):
        body["window"] = draw(st.sampled_from((12, 38, 500)))
    if draw(st.booleans()):
        body["patterns"] = draw(st.lists(st.sampled_from(FAMILIES), min_size=1, max_size=3))
    return body


TOO_LONG = '{"symbol":"AAPL","bars":[' + " " * 1_000_001 + "]}"


@st.composite
def invalid_bodies(draw) -> str | None:
    body = draw(valid_bodies())
    pairs = pairs_of(body)
    kind = draw(st.integers(0, 11))
    if kind == 0:
        return json.dumps({**body, "window": draw(st.sampled_from((5, 11, 0, -1, 501, 10**6, "38", 38.5, True, None)))})
    if kind == 1:
        return json.dumps({**body, "patterns": draw(st.sampled_from((["cup-and-handle"], [], "double-top", ["Double Top"])))})
    if kind == 2:
        return json.dumps({**body, "symbol": draw(st.sampled_from(INVALID_SYMBOLS))}, ensure_ascii=draw(st.booleans()))
    if kind == 3:
        return json.dumps({**body, "bars": draw(st.sampled_from(([], "lots", None, [[1, 2]])))})
    if kind == 4:  # one bar the platform refuses, among good ones
        text = draw(invalid_bar_texts().filter(lambda text_kind: isinstance(text_kind[0], str)))[0]
        return json.dumps({**body, "bars": "BAD"}).replace('"BAD"', f"[{json.dumps(body['bars'][0])},{text}]")
    if kind == 5:  # a number DynamoDB (and so the model) refuses, or a non-finite one
        bad = dict(body["bars"][0], close=draw(st.sampled_from(UNSTORABLE)))
        return json.dumps({**body, "bars": [bad]}).replace(repr(bad["close"]), draw(st.sampled_from((repr(bad["close"]), *NON_FINITE_TOKENS))), 1)
    if kind == 6:
        key, value = draw(st.sampled_from(pairs))
        return json_object([*pairs, (key, value)])
    if kind == 7:  # two bars at one time
        return json.dumps({**body, "bars": [body["bars"][0], body["bars"][0]]})
    if kind == 8:
        return json.dumps({**body, "extra": True})
    if kind == 9:
        return json.dumps({**body, "bars": [body["bars"][0]] * 5_001})
    if kind == 10:
        return draw(st.sampled_from((None, "", "{", "[]", "null", DEEP_NESTING, TOO_LONG, json.dumps(body)[:-1], "\ud800")))
    missing = draw(st.sampled_from(("symbol", "bars")))
    return json.dumps({k: v for k, v in body.items() if k != missing})


OK, BAD_REQUEST, NO_ROUTE = {200}, {400}, {404, 405}
# A symbol that cannot be one path segment ("", a space or newline, ...) does not match the route (404);
# API Gateway would not route it either.
BAD_SYMBOL = {400, 404}


@st.composite
def post_requests(draw) -> tuple[dict, set[int]]:
    """(an API Gateway event for POST /patterns, the statuses it may get)."""
    valid = draw(st.booleans())
    body = json.dumps(draw(valid_bodies())) if valid else draw(invalid_bodies())
    encoding = draw(st.sampled_from(("plain", "plain", "base64", "bad base64")))
    if encoding == "base64" and body is not None:
        body = base64.b64encode(body.encode("utf-8", errors="surrogatepass")).decode()
    elif encoding == "bad base64":
        body, valid = draw(st.sampled_from(BAD_BASE64_BODIES)), False
    event = api_event("POST", "/patterns", "/patterns", body=body, base64_encoded=encoding != "plain")
    return event, OK if valid else BAD_REQUEST


LIMITS_VALID = ("1", "20", "100", "005")
LIMITS_INVALID = ("0", "101", "-1", " 5", "+5", "", "ten", "1.5", "\u00b2", "\u0663", "\uff15", "1" * 4301, "0" * 4300 + "5")


@st.composite
def get_requests(draw, good_token: str) -> tuple[dict, set[int]]:
    """(an API Gateway event for GET /patterns/{symbol}, the statuses it may get)."""
    valid_symbol = draw(st.booleans())
    symbol = draw(st.sampled_from(VALID_SYMBOLS)) if valid_symbol else draw(st.sampled_from(INVALID_SYMBOLS))
    query: dict[str, str] = {}
    valid = True
    if draw(st.booleans()):
        limit_ok = draw(st.booleans())
        query["limit"] = draw(st.sampled_from(LIMITS_VALID if limit_ok else LIMITS_INVALID))
        valid = limit_ok
    if draw(st.booleans()):
        token = draw(st.sampled_from((good_token, "%%%", "A" * 5000, base64.urlsafe_b64encode(b"[1,2]").decode(),
                                      base64.urlsafe_b64encode(b'{"pk":"PATTERN#AAPL","pk":"PATTERN#AAPL","sk":"1"}').decode())))
        query["nextToken"] = token
        valid = valid and token == good_token and symbol == "AAPL"
    event = api_event("GET", "/patterns/{symbol}", f"/patterns/{symbol}", path_parameters={"symbol": symbol}, query=query or None)
    if not valid_symbol:
        return event, BAD_SYMBOL
    return event, OK if valid else BAD_REQUEST


@pytest.fixture
def stored_patterns(platform, lambda_context):
    """25 stored AAPL patterns (two pages of 20), and the nextToken of the first page."""
    table = TradingPatternsTable(platform.resources.dynamodb, "TradingPatterns-test")
    from datetime import datetime, timezone

    for i in range(25):
        table.put_pattern_once(StoredPattern(
            "AAPL", "double-top", 0.5 + i / 100, T0 + 60 * i, T0 + 3000 + 60 * i, datetime(2026, 1, 5, tzinfo=timezone.utc),
            "LOW", "NOT_REQUIRED", ((T0 + 60 * i, 10.0),),
        ))
    first = handler.lambda_handler(api_event("GET", "/patterns/{symbol}", "/patterns/AAPL", path_parameters={"symbol": "AAPL"}), lambda_context)
    return json.loads(first["body"])["nextToken"]


def test_every_request_is_answered_200_or_400_with_valid_json_and_get_changes_nothing(platform, stored_patterns, lambda_context):
    before = platform.resources.table_items()

    @fuzz()
    @given(request=st.one_of(post_requests(), get_requests(stored_patterns), st.sampled_from((
        (api_event("DELETE", "/patterns/{symbol}", "/patterns/AAPL", path_parameters={"symbol": "AAPL"}), NO_ROUTE),
        (api_event("GET", "/patterns", "/patterns"), NO_ROUTE),
        (api_event("POST", "/nowhere", "/nowhere", body="{}"), NO_ROUTE),
    ))))
    def send(request):
        event, statuses = request
        counts = count_event(API, 1)
        answers = []
        for _ in range(2):  # the same request again (a client's retry) gets the same answer
            response = handler.lambda_handler(event, lambda_context)
            counts.deliveries += 1
            answers.append((response["statusCode"], read_strictly(response["body"])))
        assert answers[0] == answers[1]
        status, body = answers[0]
        assert status in statuses, body
        if status == 200 and event["httpMethod"] == "POST":
            assert set(body) == {"symbol", "barCount", "matches"}
            assert all(0 <= m["confidence"] <= 1 and math.isfinite(m["confidence"]) for m in body["matches"])
        if status == 400:
            assert body["message"]

    send()
    assert platform.resources.table_items() == before  # neither GET nor POST writes anything
    assert tally(API).events >= EVENTS_PER_HANDLER


# --- workflow actions -------------------------------------------------------------------------------
# PatternDetected details as the consumer emits them (the engine runs once per detail, so they are
# built once per session).
DETAIL_SEEDS = {"head-and-shoulders": 0, "double-top": 1, "ascending-triangle": 1}


@functools.cache
def detail_for(pattern: str) -> dict:
    return pattern_event_detail("AAPL", pattern, seed=DETAIL_SEEDS[pattern])


@st.composite
def workflow_events(draw) -> tuple[object, bool]:
    """(a task input, whether it is valid), in the shapes the analysis workflow passes between its states."""
    detail = copy.deepcopy(detail_for(draw(st.sampled_from(sorted(DETAIL_SEEDS)))))
    symbol = detail["symbol"]
    candidate = {k: v for k, v in detail.items() if k not in ("symbol", "bars")}
    confirmed = {"pattern": candidate["pattern"], "confidence": draw(st.one_of(st.just(candidate["confidence"]), st.floats(0, 1))),
                 "start": 0, "end": len(detail["bars"]) - 1, "startTimestamp": candidate["startTimestamp"],
                 "endTimestamp": candidate["endTimestamp"], "extrema": candidate["extrema"]}
    bars = draw(st.one_of(series(max_size=40), st.just([{k: v for k, v in bar.items()} for bar in detail["bars"]])))
    action = draw(st.sampled_from(("validate", "detect", "score", "decide")))
    valid_events = {
        "validate": {"action": "validate", "detail": detail, "correlationId": "exec-1"},
        "detect": {"action": "detect", "family": draw(st.sampled_from(FAMILIES)), "symbol": symbol, "bars": bars},
        "score": {"action": "score", "symbol": symbol, "candidate": candidate,
                  "results": [{"family": family, "symbol": symbol, "matches": [confirmed] if candidate["pattern"] in PATTERN_FAMILIES[family] else []}
                              for family in FAMILIES]},
        "decide": {"action": "decide", "symbol": symbol, "candidate": candidate, "confirmed": draw(st.sampled_from((confirmed, None)))},
    }
    event = valid_events[action]
    if draw(st.booleans()):
        return event, True
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return draw(st.sampled_from(([event], "validate", None, 42, {}))), False
    if kind == 1:
        return {**event, "action": draw(st.sampled_from(("VALIDATE", "delete", None, 1, "")))}, False
    if kind == 2:
        bad_symbol = draw(st.sampled_from(INVALID_SYMBOLS))
        if action == "validate":
            return {**event, "detail": {**detail, "symbol": bad_symbol}}, False
        return {**event, "symbol": bad_symbol}, False
    if kind == 3:
        return {**event, "unexpected": 1}, False
    if kind == 4:
        return {k: v for k, v in event.items() if k not in ("symbol", "detail")}, False
    if kind == 5:  # a number DynamoDB (and so the model) refuses, or a non-finite one, in a bar
        bad_bar = dict(detail["bars"][0], close=draw(st.sampled_from((*UNSTORABLE, math.nan, math.inf))))
        if action == "validate":
            return {**event, "detail": {**detail, "bars": [bad_bar, *detail["bars"][1:]]}}, False
        return {"action": "detect", "family": FAMILIES[0], "symbol": symbol, "bars": [bad_bar, *detail["bars"][1:]]}, False
    if kind == 6:  # a confidence that is not a probability
        bad = draw(st.sampled_from((math.nan, math.inf, 1.5, -0.1)))
        return {"action": "decide", "symbol": symbol, "candidate": {**candidate, "confidence": bad}, "confirmed": {**confirmed, "confidence": bad}}, False
    return {**event, "correlationId": draw(st.sampled_from(("", "x" * 300, 7)))}, False


def test_every_workflow_action_returns_valid_json_or_raises_invalid_input(platform, lambda_context):
    @fuzz()
    @given(request=workflow_events())
    def run(request):
        platform.clear(queues=[platform.resources.alert_queue_url])
        event, valid = request
        counts = count_event(WORKFLOW, 1)
        outputs = []
        for _ in range(2):  # Step Functions retries a task: the same input, the same output
            counts.deliveries += 1
            if not valid:
                with pytest.raises(InvalidInputError):
                    handler.lambda_handler(event, lambda_context)
                continue
            output = handler.lambda_handler(event, lambda_context)
            read_strictly(json.dumps(output))
            outputs.append(output)
        queued = platform.messages(platform.resources.alert_queue_url)
        if valid:
            assert outputs[0] == outputs[1]
            if outputs[0].get("decision") == "ALERT":
                # Both runs queue the alert (at-least-once) with one id, which alert-processor delivers once.
                assert [a["alertId"] for a in queued] == [outputs[0]["alertId"]] * 2
                return
        assert queued == []

    run()
    assert tally(WORKFLOW).events >= EVENTS_PER_HANDLER
