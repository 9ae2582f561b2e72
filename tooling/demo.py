"""`make demo`: the whole platform on this machine, on real market data.

1. starts the AWS emulator (moto server with tooling/moto_extensions.py), or reuses a running one;
2. synthesizes `local`, runs terraform init and apply (progress per resource); synth and apply are skipped
   when nothing changed since the last run (tooling/local_platform.py);
3. streams real daily bars (AAPL, IBM, MSFT, GOOG from bokeh_sampledata) into MarketDataStream-local,
   plus seeded synthetic series with a planted pattern each so every alert and approval path has
   something to show (real stocks rarely reach the 0.9 alerting bar): HIGH alerts (SYNTHH), and CRITICAL
   ones whose approvals are rejected, expire, are clicked too late (tooling/demo_approvals.py
   decisions_step, which moves the platform clock past their deadline), approved on the page (SYNTH) and
   left pending (SYNTHB), the last two streamed after the clock moved; or the bars of --csv FILE, checked
   in full before anything is deployed (tooling/demo_input.py), without the synthetic series unless
   --with-synthetic;
4. lets the local trigger runner (tooling/local_runner.py) deliver them through the emulator's local
   Lambda service (each function in its own worker process): the consumer stores bars and patterns and
   puts a PatternDetected event on EventBridge for every match at or above the alert threshold; the
   `pattern-detected` rule starts PatternAnalysisWorkflow on the emulator's ASL interpreter, whose
   decide step queues the alert; the runner waits for those executions and drains the alert queue;
   then it fires the threshold checker's schedule through its EventBridge rule;
5. prints a summary (with the workflow's executions by status, and the reason for every record the
   platform refused, tooling/demo_results.py); approves one CRITICAL alert on its approval page in
   headless Chromium (the link as the approver received it, a screenshot in demo-output/approval-page.png)
   and prints the link of another one that is still pending (tooling/demo_approvals.py); writes one PNG
   per symbol to demo-output/ with the same renderer as the evidence charts (pattern_charts) and removes
   charts an earlier run left there, and lists the evidence objects the alert processor wrote to the
   data bucket (one of its charts copied to demo-output/); draws the deployed dashboard into
   demo-output/dashboard.png (tooling/dashboard_render.py) and prints each step's time.

Run it twice: the second run skips synth and apply and writes no duplicate patterns.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from . import dashboard_render, demo_approvals, demo_input, demo_results, local_platform
from .local_platform import PROJECT_ROOT, say
from patternwatch_shared.names.functions import KINESIS_CONSUMER

OUTPUT_DIR = PROJECT_ROOT / "demo-output"
REAL_SYMBOLS = ("AAPL", "IBM", "MSFT", "GOOG")
PLANTED_SYMBOL = "SYNTH"
HIGH_SYMBOL = "SYNTHH"
# Streamed last, after decisions_step has moved the platform clock past the other approvals' deadlines:
# the series the browser approves and the one whose approval stays pending.
STREAMED_LAST = (PLANTED_SYMBOL, demo_approvals.PENDING_SYMBOL)
DAY_SECONDS = 86_400
PUT_RECORDS_LIMIT = 500  # Kinesis PutRecords accepts at most 500 records a call


def real_bars(symbol: str, limit: int) -> list[dict]:
    """The newest `limit` daily bars of a bokeh_sampledata series, split- and dividend-adjusted."""
    from bokeh_sampledata import stocks

    data = getattr(stocks, symbol)
    rows = []
    for i in range(len(data["date"])):
        adjust = data["adj_close"][i] / data["close"][i]
        rows.append(_bar(symbol, data["date"][i], *(data[k][i] * adjust for k in ("open", "high", "low", "close")), data["volume"][i]))
    return rows[-limit:]


def planted_bars() -> list[dict]:
    """The seeded synthetic series with a clean head-and-shoulders, daily from 2021-01-04, priced near 10,000."""
    return demo_approvals.planted_series(PLANTED_SYMBOL)


def high_alert_bars() -> list[dict]:
    """A seeded double top whose alerts are HIGH (confidence between the alert threshold and the CRITICAL cut):
    alerts that go straight to TradingAlerts without an approval."""
    return demo_approvals.planted_series(HIGH_SYMBOL, "double-top", seed=2, noise=0.005)


def _bar(symbol: str, date, open_, high, low, close, volume) -> dict:
    if isinstance(date, str) and not date.isdigit():
        timestamp = int(datetime.fromisoformat(date[:10]).replace(tzinfo=timezone.utc).timestamp())
    else:
        timestamp = int(date)
    return {"symbol": symbol, "timestamp": timestamp, "open": round(open_, 4), "high": round(high, 4), "low": round(low, 4),
            "close": round(close, 4), "volume": float(volume)}


def stream(kinesis, stream_name: str, bars: list[dict], runner, sent: dict[str, dict] | None = None) -> int:
    """Put bars in time order (symbols interleaved, as a feed would) and let the runner keep up.

    `sent`, if given, receives each record's sequence number -> its bar (to explain refusals).
    """
    bars = sorted(bars, key=lambda b: (b["timestamp"], b["symbol"]))
    put = 0
    for offset in range(0, len(bars), PUT_RECORDS_LIMIT):
        chunk = bars[offset : offset + PUT_RECORDS_LIMIT]
        response = kinesis.put_records(
            StreamName=stream_name,
            Records=[{"Data": json.dumps(b).encode(), "PartitionKey": b["symbol"]} for b in chunk],
        )
        put += len(chunk) - response.get("FailedRecordCount", 0)
        if sent is not None:
            sent.update({r["SequenceNumber"]: b for r, b in zip(response["Records"], chunk) if "SequenceNumber" in r})
        runner.drain(idle_rounds=1)
        say(f"  streamed {put:,}/{len(bars):,} bars")
    return put


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, help="stream this CSV (symbol,date,open,high,low,close,volume) instead of the sample stocks")
    parser.add_argument("--bars-per-symbol", type=int, default=750, help="newest N daily bars of each sample stock (default 750)")
    parser.add_argument("--with-synthetic", action="store_true",
                        help=f"with --csv, also stream the synthetic {PLANTED_SYMBOL} series (always streamed without --csv)")
    parser.add_argument("--again", action="store_true",
                        help="stream the synthetic series again as the days after the newest bar the platform holds for them, so their "
                             "alerts and approvals happen again (a plain second run raises none)")
    parser.add_argument("--reapply", action="store_true",
                        help="run terraform apply even when the emulator already holds this exact deployment (checks for drift)")
    args = parser.parse_args(argv)
    timings: dict[str, float] = {}
    started = time.monotonic()

    # --- what to stream, checked before anything is deployed (tooling/demo_input.py) ---------------
    csv_input = None
    if args.csv:
        try:
            csv_input = demo_input.read_csv_bars(args.csv)
        except demo_input.InvalidInput as error:
            print(f"error: {args.csv} cannot be streamed (nothing was deployed):\n{error}", file=sys.stderr)
            return 2
        bars, source = csv_input.bars, csv_input.source
    else:
        bars = [b for s in REAL_SYMBOLS for b in real_bars(s, args.bars_per_symbol)]
        source = f"bokeh_sampledata (newest {args.bars_per_symbol} days of each sample stock)"
    synthetic: list[dict] = []
    if not args.csv or args.with_synthetic:
        synthetic = planted_bars() + demo_approvals.pending_series_bars() + demo_approvals.decided_series_bars() + high_alert_bars()
        source += (f" + {', '.join([PLANTED_SYMBOL, *demo_approvals.DECIDED_SYMBOLS])} (synthetic, planted head-and-shoulders), "
                   f"{demo_approvals.PENDING_SYMBOL} ({demo_approvals.PENDING_PATTERN}), {HIGH_SYMBOL} (double-top, HIGH alerts)")

    deploy_timings: dict[str, float] = {}
    step = time.monotonic()
    outputs = local_platform.deploy(timings=deploy_timings, reapply=args.reapply)
    timings["deploy"] = time.monotonic() - step
    session, config = local_platform.emulator_session()
    endpoint = config.emulator.endpoint
    if args.again and synthetic:
        synthetic = after_stored_bars(session, endpoint, outputs, synthetic)
    bars += synthetic

    from .local_runner import LocalRunner

    step = time.monotonic()
    inboxes = demo_approvals.approver_inboxes(session, endpoint, outputs["approval_requests_topic_arn"], [a.id for a in config.approvers])
    runner = LocalRunner(session, endpoint, suffix=config.resource_suffix)
    say(f"runner: {len(runner.streams)} stream + {len(runner.queues)} queue mappings, {len(runner.schedules)} schedule(s), "
        f"{len(runner.routes)} API routes read back from the emulator")
    say(f"streaming {demo_input.describe_bars(bars, source)}")
    kinesis = session.client("kinesis", endpoint_url=endpoint)
    sent: dict[str, dict] = {}
    streamed = stream(kinesis, outputs["market_data_stream_name"], [b for b in bars if b["symbol"] not in STREAMED_LAST], runner, sent)
    timings["stream"] = time.monotonic() - step

    step = time.monotonic()
    runner.drain()  # the workflows the stream's PatternDetected events started, and the alerts they queued
    runner.run_schedules(force=True)
    runner.drain()
    timings["wait"] = time.monotonic() - step

    step = time.monotonic()
    decisions = demo_approvals.decisions_step(session, endpoint, runner, inboxes, expiry_seconds=config.approval_expiry_seconds)
    last = [b for b in bars if b["symbol"] in STREAMED_LAST]
    if last:
        streamed += stream(kinesis, outputs["market_data_stream_name"], last, runner, sent)
        runner.drain()
    timings["decisions"] = time.monotonic() - step

    step = time.monotonic()
    workflow = workflow_summary(session, endpoint, outputs)
    summary = summarize(session, endpoint, outputs, runner, streamed, sorted({b["symbol"] for b in bars}))
    rejections = demo_results.read_rejections(consumer_log_lines(session, endpoint, outputs), sent)
    timings["summary"] = time.monotonic() - step

    step = time.monotonic()
    OUTPUT_DIR.mkdir(exist_ok=True)
    approval = demo_approvals.approval_step(session, endpoint, runner, inboxes, output_dir=OUTPUT_DIR)
    timings["approval"] = time.monotonic() - step

    step = time.monotonic()
    # SYNTHR, SYNTHX and SYNTHL carry SYNTH's very bars (only their approvals differ): SYNTH's chart shows them.
    charts = draw_charts(session, endpoint, outputs, sorted({b["symbol"] for b in bars} - set(demo_approvals.DECIDED_SYMBOLS)), args.csv)
    timings["charts"] = time.monotonic() - step

    step = time.monotonic()
    runtime = runtime_summary(session, endpoint, outputs)  # flushes the metrics the dashboard is drawn from
    dashboard = dashboard_render.render_for_demo(session, endpoint, outputs)
    timings["dashboard"] = time.monotonic() - step

    step = time.monotonic()
    demo_results.remove_stale_charts(OUTPUT_DIR, keep=[*charts, dashboard.path, *([approval.screenshot] if approval.screenshot else [])])
    evidence = evidence_summary(session, endpoint, outputs)  # after the stale charts went: it adds one
    timings["evidence"] = time.monotonic() - step
    timings["total"] = time.monotonic() - started

    say("\n=== PatternWatch on the local emulator ===")
    say(f"streamed: {demo_input.describe_bars(bars, source)}")
    say(summary)
    say(demo_results.describe_rejections(rejections, sent, csv_input.lines if csv_input else None, str(args.csv)))
    say(workflow)
    say(runtime)
    say("\n".join(decisions))
    say(approval.text)
    say(evidence)
    say(f"charts: {', '.join(str(c.relative_to(PROJECT_ROOT)) for c in charts)}")
    say(f"dashboard: {dashboard.summary()}")
    say(describe_timings(timings, deploy_timings))
    say("tear down with: make down")
    return 0


def after_stored_bars(session, endpoint: str, outputs: dict, series: list[dict]) -> list[dict]:
    """`series` moved to start the day after the newest bar the platform holds for any of its symbols: the next
    days of those symbols, so their planted patterns, alerts and approvals happen again."""
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    newest = []
    for symbol in sorted({bar["symbol"] for bar in series}):
        items = dynamodb.query(TableName=outputs["trading_patterns_table_name"], KeyConditionExpression="PK = :pk",
                               ExpressionAttributeValues={":pk": {"S": f"BAR#{symbol}"}}, ScanIndexForward=False, Limit=1)["Items"]
        newest += [int(item["timestamp"]["N"]) for item in items]
    if not newest:
        return series
    shift = max(newest) + DAY_SECONDS - min(bar["timestamp"] for bar in series)
    return [{**bar, "timestamp": bar["timestamp"] + shift} for bar in series]


def describe_timings(timings: dict[str, float], deploy_timings: dict[str, float]) -> str:
    """`step times: deploy 95.0 s (emulator 2.1 s, synth 0.4 s, ...), stream 20.1 s, ..., total 140.2 s`."""
    parts = []
    for name, seconds in timings.items():
        detail = f" ({', '.join(f'{k} {v:.1f} s' for k, v in deploy_timings.items())})" if name == "deploy" and deploy_timings else ""
        parts.append(f"{name} {seconds:.1f} s{detail}")
    return "step times: " + ", ".join(parts)


def workflow_summary(session, endpoint: str, outputs: dict) -> str:
    """PatternAnalysisWorkflow as the stream drove it: executions by status, and the path and decision of the
    newest execution for the planted series (a second run starts none: its pattern is stored and alerted once)."""
    stepfunctions = session.client("stepfunctions", endpoint_url=endpoint)
    machine = outputs["analysis_state_machine_arn"]
    executions = [e for page in stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=machine) for e in page["executions"]]
    statuses = Counter(e["status"] for e in executions)
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) or "none"
    line = f"workflow: {machine.split(':')[-1]} executions by status: {by_status}"
    for summary in sorted(executions, key=lambda e: e["startDate"], reverse=True):
        execution = stepfunctions.describe_execution(executionArn=summary["executionArn"])
        if json.loads(execution["input"]).get("symbol") != PLANTED_SYMBOL:
            continue
        history = stepfunctions.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
        path = " -> ".join(dict.fromkeys(e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e))
        return (f"{line}\n  newest PatternDetected({PLANTED_SYMBOL}) from the stream -> {execution['status']} via {path}; "
                f"output {execution.get('output', execution.get('error'))}")
    return line


def consumer_log_lines(session, endpoint: str, outputs: dict) -> list[str]:
    """Every line the stream consumer logged on the emulator (its /aws/lambda/<name> group)."""
    logs = session.client("logs", endpoint_url=endpoint)
    group = f"/aws/lambda/{outputs[f'{KINESIS_CONSUMER.package}_function_name']}"
    try:
        pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName=group))
    except logs.exceptions.ResourceNotFoundException:
        return []  # it never ran
    return [event["message"] for page in pages for event in page["events"]]


def runtime_summary(session, endpoint: str, outputs: dict) -> str:
    """What the local Lambda service ran, and what reached CloudWatch Logs and metrics."""
    from .local_aws import admin

    admin.flush_metrics(endpoint)
    stats = admin.lambda_stats(endpoint)
    logs = session.client("logs", endpoint_url=endpoint)
    cloudwatch = session.client("cloudwatch", endpoint_url=endpoint)
    groups = [g for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"] if g["logGroupName"].endswith("-local")]
    with_lines = sum(1 for g in groups if g.get("storedBytes", 0) or logs.describe_log_streams(logGroupName=g["logGroupName"], limit=1)["logStreams"])
    distinct = {(m["Namespace"], m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m.get("Dimensions", []))))
                for page in cloudwatch.get_paginator("list_metrics").paginate() for m in page["Metrics"]}
    namespaces = Counter(namespace for namespace, _, _ in distinct)
    return (f"lambda: {stats['invocations']} invocations in worker processes ({stats['coldStarts']} cold starts, {stats['errors']} errors, "
            f"{len(stats['droppedEvents'])} async events dropped); {with_lines}/{len(groups)} function log groups have log lines; "
            "distinct metrics by namespace: " + ", ".join(f"{k} {v}" for k, v in sorted(namespaces.items())))


def _query_all(dynamodb, table: str, partition: str, **extra) -> list[dict]:
    items, request = [], {"TableName": table, "KeyConditionExpression": "PK = :pk", "ExpressionAttributeValues": {":pk": {"S": partition}}, **extra}
    while True:
        response = dynamodb.query(**request)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def summarize(session, endpoint: str, outputs: dict, runner, streamed: int, symbols: list[str]) -> str:
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    table = outputs["trading_patterns_table_name"]
    lines = [f"bars streamed: {streamed:,}; delivered to KinesisConsumer: {sum(p.delivered for p in runner.streams):,}; "
             f"sent to the failure queue: {sum(p.sent_to_failure_destination for p in runner.streams)}"]
    lines.append(f"{'symbol':<8} {'bars':>6}  patterns by type")
    for symbol in symbols:
        bars = sum(int(r) for r in [_count(dynamodb, table, f"BAR#{symbol}")])
        patterns = Counter(item["pattern"]["S"] for item in _query_all(dynamodb, table, f"PATTERN#{symbol}"))
        described = ", ".join(f"{name} {count}" for name, count in sorted(patterns.items())) or "none"
        lines.append(f"{symbol:<8} {bars:>6}  {described}")
    alerts = sum(q.delivered for q in runner.queues if q.function.name.startswith("AlertProcessor-"))
    # Each open approval's expiry timer sits in PendingApprovals, received and waiting for its deadline.
    timers = sqs.get_queue_attributes(QueueUrl=outputs["pending_approvals_queue_url"],
                                      AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    pending = int(timers["ApproximateNumberOfMessages"]) + int(timers["ApproximateNumberOfMessagesNotVisible"])
    lines.append(f"alerts processed by AlertProcessor: {alerts}; approvals with a running expiry timer: {pending}")
    return "\n".join(lines)


def _count(dynamodb, table: str, partition: str) -> int:
    total, request = 0, {"TableName": table, "KeyConditionExpression": "PK = :pk", "ExpressionAttributeValues": {":pk": {"S": partition}}, "Select": "COUNT"}
    while True:
        response = dynamodb.query(**request)
        total += response["Count"]
        if "LastEvaluatedKey" not in response:
            return total
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# What the demo's prices are, per source (the chart's title and price axis say it).
REAL_PRICE_BASIS = "split- and dividend-adjusted"
PLANTED_PRICE_BASIS = "synthetic (seeded series with a planted pattern)"


def price_basis(symbol: str, csv_path: Path | None) -> str:
    if symbol in (PLANTED_SYMBOL, HIGH_SYMBOL, demo_approvals.PENDING_SYMBOL, *demo_approvals.DECIDED_SYMBOLS):
        return PLANTED_PRICE_BASIS
    return f"as given in {csv_path.name}" if csv_path else REAL_PRICE_BASIS


def draw_charts(session, endpoint: str, outputs: dict, symbols: list[str], csv_path: Path | None = None) -> dict[Path, object]:
    """One PNG per symbol from the renderer the evidence uses: every stored bar and pattern, alerted ones
    (alertState other than NOT_REQUIRED) prominent. Returns each PNG's path with what the renderer drew."""
    from pattern_charts.render import ChartMatch, render_chart
    from patternwatch_shared.names.table import ALERT_STATE_NOT_REQUIRED, PATTERN_ALERT_STATE_ATTRIBUTE
    from patternwatch_shared.storage import pattern_from_item

    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    table = outputs["trading_patterns_table_name"]
    OUTPUT_DIR.mkdir(exist_ok=True)
    written = {}
    for symbol in symbols:
        bars = [{"timestamp": int(b["timestamp"]["N"]), **{k: float(b[k]["N"]) for k in ("open", "high", "low", "close", "volume")}}
                for b in _query_all(dynamodb, table, f"BAR#{symbol}")]
        if not bars:
            continue
        matches = []
        for item in _query_all(dynamodb, table, f"PATTERN#{symbol}"):
            stored = pattern_from_item(item)
            alerted = item.get(PATTERN_ALERT_STATE_ATTRIBUTE, {}).get("S", ALERT_STATE_NOT_REQUIRED) != ALERT_STATE_NOT_REQUIRED
            matches.append(ChartMatch(stored["pattern"], stored["confidence"], stored["startTimestamp"], stored["endTimestamp"],
                                      tuple((e["timestamp"], e["price"]) for e in stored["extrema"]), alerted=alerted))
        first, last = (datetime.fromtimestamp(bars[i]["timestamp"], timezone.utc).date() for i in (0, -1))
        alerts = sum(m.alerted for m in matches)
        chart = render_chart(symbol, bars, matches, price_basis=price_basis(symbol, csv_path),
                             headline=f"{len(bars)} bars, {first} to {last}; {len(matches)} detected patterns, {alerts} alerted")
        path = OUTPUT_DIR / f"{symbol}.png"
        path.write_bytes(chart.png)
        written[path] = chart
    return written


def evidence_summary(session, endpoint: str, outputs: dict) -> str:
    """What the alert processor stored in the data bucket, and one evidence chart copied out to look at."""
    from patternwatch_shared.evidence import CHART_FILE, DATA_FILE, EVIDENCE_PREFIX

    s3 = session.client("s3", endpoint_url=endpoint)
    bucket = outputs["data_bucket_name"]
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=EVIDENCE_PREFIX) for o in page.get("Contents", [])]
    charts = sorted(k for k in keys if k.endswith(f"/{CHART_FILE}"))
    line = (f"evidence objects written: {len(keys)} in s3://{bucket}/{EVIDENCE_PREFIX} "
            f"({sum(k.endswith(f'/{DATA_FILE}') for k in keys)} evidence.json, {len(charts)} chart.png)")
    if charts:
        OUTPUT_DIR.mkdir(exist_ok=True)
        example = OUTPUT_DIR / "evidence-chart.png"
        example.write_bytes(s3.get_object(Bucket=bucket, Key=charts[0])["Body"].read())
        shown = example.relative_to(PROJECT_ROOT) if example.is_relative_to(PROJECT_ROOT) else example
        line += f"; one of the charts: {shown} (from {charts[0]})"
    return line


if __name__ == "__main__":
    sys.exit(main())
