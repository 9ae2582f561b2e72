"""`make load`: stream generated 1-minute bars through the deployed `local` platform and measure it.

    make load LOAD_ARGS="--symbols 20 --bars-per-symbol 110 --rate 8 --duration 400"
    .venv/bin/python -m tooling.load_test --help

1. deploys (or reuses) the `local` stack on the emulator, exactly as `make demo` does (tooling/local_platform.py);
2. generates `--symbols` series of `--bars-per-symbol` 1-minute bars (seeded random walks, plus one in ten
   with a planted head-and-shoulders from pattern_engine.synthetic, so the alert and approval path runs);
3. puts them on MarketDataStream-local bar time by bar time (every symbol's bar of a minute in one
   PutRecords, as a feed publishes them) at `--rate` bars per second, while the trigger runner
   (tooling/local_runner.py) polls the stream and the queues in a thread of its own, as Lambda's pollers do;
4. stops at the last bar or after `--duration` seconds, whichever is first, lets the platform drain, and reports:
   - throughput (bars put per second, bars stored per second);
   - end-to-end latency percentiles from PutRecord to: bar stored (the consumer invocation holding it
     returned), pattern stored (the item's detectedAt), alert queued (AlertQueue's SentTimestamp), approval
     request sent (the SentTimestamp of the AlertApprovalRequests message in an SQS inbox subscribed to it);
   - the consumer's CPU ms per record (CPU time of its worker processes, from /proc);
   - DynamoDB request units and calls per bar (the emulator's call counter, tooling/local_aws/call_counts.py);
   - Step Functions executions and Lambda invocations per 1,000 bars;
5. writes load-output/load-report.json (its `model_inputs` feed `python -m tooling.capacity_model --measured`)
   and load-output/load-latency-throughput.png.

The emulator is not AWS. Every figure is the cost of our code and our calls on this machine (moto in one
Python process, workers on the same cores, a poller in this process), not AWS latency or throughput.
Traffic only ever goes to the emulator on this machine: a non-loopback endpoint is refused.
"""
from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

from .demo_approvals import approver_inboxes

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = PROJECT_ROOT / "load-output"
EMULATOR_CAVEAT = ("The emulator is not AWS: these are the costs of our code and our calls on this machine "
                   "(moto in one process, Lambda workers on the same cores), not AWS latency or throughput.")
PUT_RECORDS_LIMIT = 500
BAR_SECONDS = 60
PLANTED_EVERY = 10  # one symbol in ten carries a planted head-and-shoulders
STAGES = ("bar stored", "pattern stored", "alert queued", "approval request sent")
PERCENTILES = (50, 90, 95, 99)
THROUGHPUT_BIN_SECONDS = 5.0
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


@dataclass(frozen=True)
class Bound:
    low: float
    high: float


BOUNDS = {
    "symbols": Bound(1, 500),
    "bars_per_symbol": Bound(1, 1000),
    "rate": Bound(1, 5000),
    "duration": Bound(5, 1800),
}
MAX_TOTAL_BARS = 50_000


class LoadSettingsError(ValueError):
    """Settings out of bounds; the message names the option and its range."""


@dataclass(frozen=True)
class LoadSettings:
    symbols: int = 20
    bars_per_symbol: int = 120
    rate: float = 50.0  # bars put per second
    duration: float = 300.0  # seconds of streaming at most; draining gets the same again at most

    def __post_init__(self) -> None:
        for name, bound in BOUNDS.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not bound.low <= value <= bound.high:
                option = "--" + name.replace("_", "-")
                raise LoadSettingsError(f"{option} must be between {bound.low:g} and {bound.high:g}, got {value!r}")
        if self.total_bars > MAX_TOTAL_BARS:
            raise LoadSettingsError(f"--symbols x --bars-per-symbol = {self.total_bars:,} bars; at most {MAX_TOTAL_BARS:,} per run")

    @property
    def total_bars(self) -> int:
        return self.symbols * self.bars_per_symbol


def require_local_endpoint(endpoint: str) -> str:
    """The endpoint, if it is the emulator on this machine (a loopback address); anything else is refused."""
    host = urlparse(endpoint).hostname or ""
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = host.lower() in LOOPBACK_NAMES
    if not local or urlparse(endpoint).scheme not in ("http", "https"):
        raise LoadSettingsError(f"refusing to send load to {endpoint!r}: the load test only talks to the local emulator (127.0.0.1)")
    return endpoint


# --- pure report math --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float] | None:
    """count, min, p50/p90/p95/p99 and max in milliseconds; None without samples."""
    if not latencies_s:
        return None
    ms = [v * 1000 for v in latencies_s]
    return {"count": len(ms), "min_ms": min(ms), **{f"p{q}_ms": percentile(ms, q) for q in PERCENTILES}, "max_ms": max(ms)}


def per_thousand(count: float, bars: int) -> float:
    return count * 1000 / bars if bars else 0.0


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of ys on xs; with one distinct x, (0, mean y / mean x)."""
    if len(xs) != len(ys) or not xs:
        raise ValueError("need as many ys as xs, at least one")
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0, (mean_y / mean_x if mean_x else 0.0)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread
    return mean_y - slope * mean_x, slope


def rate_series(times: Sequence[float], start: float, width: float = 1.0) -> tuple[list[float], list[float]]:
    """Events per second in consecutive bins of `width` seconds from `start`: (bin starts, rates)."""
    if not times:
        return [], []
    bins = int((max(times) - start) // width) + 1
    counts = [0] * bins
    for t in times:
        if t >= start:
            counts[int((t - start) // width)] += 1
    return [start + i * width for i in range(bins)], [c / width for c in counts]


def counter_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(before) | set(after)) if after.get(k, 0) != before.get(k, 0)}


# --- generated bars ------------------------------------------------------------------------------------


def run_symbols(count: int, run_tag: str) -> list[str]:
    """Symbols of this run (`L<tag>-<n>`): a second run never meets the first one's history or patterns."""
    return [f"L{run_tag}-{i:03d}" for i in range(count)]


def generate_bars(symbols: Sequence[str], bars_per_symbol: int, start: int) -> list[list[dict]]:
    """One list per bar time, every symbol's bar of that minute in it."""
    import numpy as np

    from pattern_engine.synthetic import bar_records, planted_bar_records, random_walk

    series = []
    for index, symbol in enumerate(symbols):
        if index % PLANTED_EVERY == PLANTED_EVERY - 1:
            records = planted_bar_records(symbol, "head-and-shoulders", seed=index, start=0, scale=1.0)
            if len(records) < bars_per_symbol:  # continue after the pattern with a walk from its last close
                tail = random_walk(bars_per_symbol - len(records), seed=index, start=records[-1]["close"])
                records += bar_records(symbol, tail, start=0)
        else:
            records = bar_records(symbol, random_walk(bars_per_symbol, seed=index), start=0)
        records = records[:bars_per_symbol]
        for minute, record in enumerate(records):
            record["timestamp"] = start + minute * BAR_SECONDS
            for key in ("open", "high", "low", "close", "volume"):
                record[key] = round(float(np.float64(record[key])), 4)
        series.append(records)
    return [[s[minute] for s in series] for minute in range(bars_per_symbol)]


# --- observation -----------------------------------------------------------------------------------------


@dataclass
class Observations:
    """What the load test saw, keyed by (symbol, bar timestamp); times are epoch seconds of this machine."""

    put_at: dict[tuple[str, int], float] = field(default_factory=dict)
    stored_at: dict[tuple[str, int], float] = field(default_factory=dict)
    alert_queued_at: dict[tuple[str, int], float] = field(default_factory=dict)
    consumer_calls: list[tuple[int, float]] = field(default_factory=list)  # (records, seconds)
    other_calls: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def observe_invocations(invoker, observations: Observations, clock_offset: float) -> None:
    """Wrap the runner's invoker: note when each consumer batch returned, and when each alert was queued."""
    original = invoker.invoke

    def invoke(function, event):
        started = time.time()
        invocation = original(function, event)
        ended = time.time()
        records = event.get("Records", []) if isinstance(event, dict) else []
        with observations.lock:
            if records and records[0].get("eventSource") == "aws:kinesis":
                observations.consumer_calls.append((len(records), ended - started))
                failed = set() if invocation.failed else {f.get("itemIdentifier") for f in (invocation.payload or {}).get("batchItemFailures", [])}
                if not invocation.failed:
                    for record in records:
                        if record["kinesis"]["sequenceNumber"] in failed:
                            continue
                        bar = json.loads(base64.b64decode(record["kinesis"]["data"]))
                        observations.stored_at.setdefault((bar["symbol"], int(bar["timestamp"])), ended)
            else:
                observations.other_calls.append(ended - started)
                for record in records:
                    if record.get("eventSource") != "aws:sqs":
                        continue
                    key = alert_key(record.get("body", ""))
                    sent = record.get("attributes", {}).get("SentTimestamp")
                    if key and sent:
                        observations.alert_queued_at.setdefault(key, int(sent) / 1000 - clock_offset)
        return invocation

    invoker.invoke = invoke


def alert_key(body: str) -> tuple[str, int] | None:
    """(symbol, end timestamp) of an alert message (or of a message carrying one under "alert")."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if isinstance(message, dict) and isinstance(message.get("alert"), dict):
        message = message["alert"]
    if not isinstance(message, dict) or "symbol" not in message or "endTimestamp" not in message:
        return None
    return message["symbol"], int(message["endTimestamp"])


def worker_cpu_seconds(emulator_pid: int | None, function_prefix: str) -> float:
    """User + system CPU of the emulator's worker processes running `function_prefix`* (Linux /proc)."""
    if emulator_pid is None or not Path("/proc").is_dir():
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    total, pending = 0.0, list(children.get(emulator_pid, []))
    while pending:
        pid = pending.pop()
        pending += children.get(pid, [])
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if not any(v.startswith(f"AWS_LAMBDA_FUNCTION_NAME={function_prefix}".encode()) for v in environ):
                continue
            fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields_[11]) + int(fields_[12])) / ticks  # utime, stime
    return total


def emulator_pid() -> int | None:
    from . import emulator

    try:
        return int(emulator.PID_FILE.read_text())
    except (OSError, ValueError):
        return None


# --- the run -----------------------------------------------------------------------------------------------


class RunnerThread(threading.Thread):
    """The trigger runner polling in the background, as Lambda's pollers do."""

    def __init__(self, runner) -> None:
        super().__init__(name="load-runner", daemon=True)
        self.runner = runner
        self.stop_requested = threading.Event()
        self.last_work = time.monotonic()
        self.polling = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_requested.is_set():
                self.polling = True
                found = self.runner.poll_once()
                self.polling = False
                if found:
                    self.last_work = time.monotonic()
                else:
                    time.sleep(0.05)
        except BaseException as error:  # reported by the main thread
            self.error = error
        finally:
            self.polling = False

    def idle_for(self) -> float:
        """Seconds since the last poll that found work; 0 while a poll is running (an invocation may take long)."""
        return 0.0 if self.polling else time.monotonic() - self.last_work


def stream_bars(kinesis, stream_name: str, bar_times: list[list[dict]], settings: LoadSettings, observations: Observations,
                say: Callable[[str], None]) -> tuple[int, float]:
    """Put bar time after bar time at `settings.rate` bars/s until done or `settings.duration` is up."""
    started = time.time()
    put = 0
    for index, bars in enumerate(bar_times):
        if time.time() - started >= settings.duration:
            say(f"  duration of {settings.duration:g} s reached after {index} of {len(bar_times)} bar times")
            break
        for offset in range(0, len(bars), PUT_RECORDS_LIMIT):
            chunk = bars[offset:offset + PUT_RECORDS_LIMIT]
            response = kinesis.put_records(StreamName=stream_name, Records=[
                {"Data": json.dumps(b).encode(), "PartitionKey": b["symbol"]} for b in chunk])
            now = time.time()
            for bar, result in zip(chunk, response["Records"]):
                if "SequenceNumber" in result:
                    observations.put_at[(bar["symbol"], bar["timestamp"])] = now
                    put += 1
        wait = started + put / settings.rate - time.time()
        if wait > 0:
            time.sleep(wait)
        if (index + 1) % max(1, len(bar_times) // 10) == 0:
            say(f"  put {put:,} bars ({index + 1}/{len(bar_times)} bar times)")
    return put, started


def warm_up(kinesis, stream_name: str, runner, symbol: str, start: int, say: Callable[[str], None]) -> None:
    """A few bars of a symbol of its own, through every shard's consumer, so that cold starts stay out of the figures."""
    from pattern_engine.synthetic import bar_records, random_walk

    records = bar_records(symbol, random_walk(3, seed=1), start=0)
    for minute, record in enumerate(records):
        record["timestamp"] = start + minute * BAR_SECONDS
    kinesis.put_records(StreamName=stream_name, Records=[{"Data": json.dumps(r).encode(), "PartitionKey": r["symbol"]} for r in records])
    handled = runner.drain(idle_rounds=2, max_seconds=120)
    say(f"warm-up: {handled} bars of {symbol} through the consumer (cold start kept out of the figures)")


def wait_until_drained(runner_thread: RunnerThread, endpoint: str, deadline: float, *, busy: Callable[[], bool] = lambda: False,
                       quiet_seconds: float = 5.0) -> bool:
    """Wait until the runner has found nothing for `quiet_seconds`, no async invocation is queued and not `busy()`."""
    from .local_aws import admin

    while time.monotonic() < deadline:
        if runner_thread.error:
            raise runner_thread.error
        if runner_thread.idle_for() >= quiet_seconds and admin.lambda_stats(endpoint).get("asyncPending", 0) == 0 and not busy():
            return True
        time.sleep(0.5)
    return False


def count_executions(stepfunctions, machine_arn: str) -> int:
    return sum(len(page["executions"]) for page in stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=machine_arn))


def execution_seconds(stepfunctions, machine_arn: str, since: float, sample: int = 50) -> float | None:
    """Mean duration of up to `sample` finished executions that started after `since` (epoch seconds)."""
    durations = []
    for page in stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=machine_arn):
        for execution in page["executions"]:
            if execution["startDate"].timestamp() >= since and execution.get("stopDate"):
                durations.append((execution["stopDate"] - execution["startDate"]).total_seconds())
            if len(durations) >= sample:
                return sum(durations) / len(durations)
    return sum(durations) / len(durations) if durations else None


def patterns_stored(dynamodb, table: str, symbols: Sequence[str], clock_offset: float) -> dict[tuple[str, int], float]:
    """(symbol, end timestamp) -> when the pattern was stored (its detectedAt), for this run's symbols."""
    out = {}
    for symbol in symbols:
        request = {"TableName": table, "KeyConditionExpression": "PK = :pk", "ExpressionAttributeValues": {":pk": {"S": f"PATTERN#{symbol}"}}}
        while True:
            response = dynamodb.query(**request)
            for item in response.get("Items", []):
                end = int(item["SK"]["S"].split("#", 1)[0])
                detected = datetime.fromisoformat(item["detectedAt"]["S"].replace("Z", "+00:00")).timestamp() - clock_offset
                out[(symbol, end)] = min(detected, out.get((symbol, end), detected))
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return out


def approval_requests(sqs, inbox_url: str, clock_offset: float, symbols: set[str]) -> dict[tuple[str, int], float]:
    """Read (and delete) the inbox's approval requests for this run's symbols: (symbol, end timestamp) -> sent at."""
    out = {}
    while True:
        messages = sqs.receive_message(QueueUrl=inbox_url, MaxNumberOfMessages=10, AttributeNames=["SentTimestamp"]).get("Messages", [])
        if not messages:
            return out
        for message in messages:
            key = alert_key(message["Body"])
            if key and key[0] in symbols:
                out.setdefault(key, int(message["Attributes"]["SentTimestamp"]) / 1000 - clock_offset)
                sqs.delete_message(QueueUrl=inbox_url, ReceiptHandle=message["ReceiptHandle"])


def stage_latencies(observations: Observations, patterns: dict, approvals: dict) -> dict[str, list[float]]:
    put = observations.put_at
    stages = {"bar stored": observations.stored_at, "pattern stored": patterns, "alert queued": observations.alert_queued_at,
              "approval request sent": approvals}
    return {name: [max(0.0, at - put[key]) for key, at in seen.items() if key in put] for name, seen in stages.items()}


def log_bytes(logs, group: str, since_ms: int, limit_events: int = 200_000) -> tuple[int, int]:
    """(bytes, events) written to `group` since `since_ms`, bounded."""
    total, events, request = 0, 0, {"logGroupName": group, "startTime": since_ms}
    while events < limit_events:
        try:
            response = logs.filter_log_events(**request)
        except logs.exceptions.ResourceNotFoundException:
            return 0, 0
        for event in response.get("events", []):
            total += len(event["message"].encode()) + 26  # CloudWatch bills each event's message plus 26 bytes
            events += 1
        if not response.get("nextToken"):
            break
        request["nextToken"] = response["nextToken"]
    return total, events


def bar_item_bytes(dynamodb, table: str, symbol: str) -> float:
    from .local_aws.call_counts import item_size

    items = dynamodb.query(TableName=table, KeyConditionExpression="PK = :pk", Limit=20,
                           ExpressionAttributeValues={":pk": {"S": f"BAR#{symbol}"}}).get("Items", [])
    return sum(item_size(i) for i in items) / len(items) + 100 if items else float("nan")  # DynamoDB adds 100 bytes an item


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=EMULATOR_CAVEAT)
    parser.add_argument("--symbols", type=int, default=LoadSettings.symbols, help=f"symbols to stream (1-500, default {LoadSettings.symbols})")
    parser.add_argument("--bars-per-symbol", type=int, default=LoadSettings.bars_per_symbol,
                        help=f"1-minute bars per symbol (1-1000, default {LoadSettings.bars_per_symbol}; the engine needs 43 before it reports)")
    parser.add_argument("--rate", type=float, default=LoadSettings.rate, help=f"bars put per second (1-5000, default {LoadSettings.rate:g})")
    parser.add_argument("--duration", type=float, default=LoadSettings.duration,
                        help=f"stop putting after this many seconds (5-1800, default {LoadSettings.duration:g}); draining gets as long again at most")
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR, help="where the report and the PNG go (default load-output/)")
    args = parser.parse_args(argv)
    try:
        settings = LoadSettings(args.symbols, args.bars_per_symbol, args.rate, args.duration)
        from patternwatch_infra.config import load_environment

        require_local_endpoint(load_environment("local").emulator.endpoint)
    except LoadSettingsError as error:
        parser.error(str(error))
    return run(settings, args.output)


def run(settings: LoadSettings, output: Path) -> int:
    from . import local_platform
    from .local_aws import admin
    from .local_platform import say
    from .local_runner import LocalRunner

    say(EMULATOR_CAVEAT)
    outputs = local_platform.deploy()
    session, config = local_platform.emulator_session()
    endpoint = require_local_endpoint(config.emulator.endpoint)
    kinesis = session.client("kinesis", endpoint_url=endpoint)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    stepfunctions = session.client("stepfunctions", endpoint_url=endpoint)
    logs = session.client("logs", endpoint_url=endpoint)
    table = outputs["trading_patterns_table_name"]
    machine = outputs["analysis_state_machine_arn"]
    consumer_prefix = "KinesisConsumer-"

    # Each CRITICAL alert sends one request per approver; the first approver's requests time "approval request sent".
    first_approver = config.approvers[0].id
    inbox = approver_inboxes(session, endpoint, outputs["approval_requests_topic_arn"], [first_approver],
                             prefix="LoadTestApprovalInbox", suffix=config.resource_suffix)[first_approver]
    runner = LocalRunner(session, endpoint, suffix=config.resource_suffix)
    clock_offset = float(admin.platform_clock(endpoint)["offsetSeconds"])
    observations = Observations()

    run_tag = base36(int(time.time()) // 60 % 36**4).rjust(4, "0")
    symbols = run_symbols(settings.symbols, run_tag)
    start = (int(time.time()) // BAR_SECONDS) * BAR_SECONDS - settings.bars_per_symbol * BAR_SECONDS
    bar_times = generate_bars(symbols, settings.bars_per_symbol, start)
    say(f"load: {settings.symbols} symbols (L{run_tag}-000..) x {settings.bars_per_symbol} 1-minute bars = {settings.total_bars:,} bars, "
        f"{sum(1 for i in range(settings.symbols) if i % PLANTED_EVERY == PLANTED_EVERY - 1)} with a planted head-and-shoulders; "
        f"at most {settings.rate:g} bars/s for at most {settings.duration:g} s, to {endpoint}")

    warm_up(kinesis, outputs["market_data_stream_name"], runner, f"W{run_tag}", start, say)
    observe_invocations(runner.invoker, observations, clock_offset)
    calls_before = admin.call_counts(endpoint)
    stats_before = admin.lambda_stats(endpoint)
    executions_before = count_executions(stepfunctions, machine)
    pid = emulator_pid()
    cpu_before = worker_cpu_seconds(pid, consumer_prefix)
    logs_since_ms = int((time.time() + clock_offset) * 1000)

    runner_thread = RunnerThread(runner)
    runner_thread.start()
    put, started = stream_bars(kinesis, outputs["market_data_stream_name"], bar_times, settings, observations, say)
    streamed_for = time.time() - started
    running = lambda: bool(stepfunctions.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"])  # noqa: E731
    drained = wait_until_drained(runner_thread, endpoint, time.monotonic() + settings.duration, busy=running)
    runner_thread.stop_requested.set()
    runner_thread.join(timeout=120)
    if runner_thread.error:
        raise runner_thread.error
    admin.flush_metrics(endpoint)
    finished = time.time()

    calls_after = admin.call_counts(endpoint)
    stats_after = admin.lambda_stats(endpoint)
    executions = count_executions(stepfunctions, machine) - executions_before
    cpu_seconds = worker_cpu_seconds(pid, consumer_prefix) - cpu_before
    patterns = patterns_stored(dynamodb, table, symbols, clock_offset)
    approvals = approval_requests(sqs, inbox, clock_offset, set(symbols))
    consumer_log_bytes, consumer_log_events = log_bytes(logs, f"/aws/lambda/{consumer_prefix}{config.resource_suffix}", logs_since_ms)

    stored = len(observations.stored_at.keys() & observations.put_at.keys())
    calls = counter_delta(calls_before["calls"], calls_after["calls"])
    units = {t: counter_delta(calls_before["dynamodb"].get(t, {}), u) for t, u in calls_after["dynamodb"].items()}
    units = {t: u for t, u in units.items() if u}
    invocations = stats_after["invocations"] - stats_before["invocations"]
    consumer_invocations = len(observations.consumer_calls)
    intercept, slope = linear_fit([r for r, _ in observations.consumer_calls], [s * 1000 for _, s in observations.consumer_calls]) \
        if observations.consumer_calls else (float("nan"), float("nan"))
    write_units = sum(u.get("writeUnits", 0) for u in units.values())
    read_units = sum(u.get("readUnits", 0) for u in units.values())
    record_bytes = sum(len(json.dumps(b)) for bars in bar_times for b in bars) / settings.total_bars
    latencies = stage_latencies(observations, patterns, approvals)

    report = {
        "source": (f"make load {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: {settings.symbols} symbols x {settings.bars_per_symbol} "
                   f"1-minute bars at up to {settings.rate:g} bars/s on the local emulator ({put:,} bars put)"),
        "caveat": EMULATOR_CAVEAT,
        "settings": asdict(settings),
        "run": {"symbols": f"L{run_tag}-000..{settings.symbols - 1:03d}", "bars_put": put, "bars_stored": stored,
                "streaming_seconds": round(streamed_for, 2), "total_seconds": round(finished - started, 2), "drained": drained,
                "patterns_stored": len(patterns), "alerts_queued": len(observations.alert_queued_at),
                "approval_requests": len(approvals)},
        "throughput": {"put_bars_per_second": put / streamed_for if streamed_for else 0.0,
                       "stored_bars_per_second": stored / (max(observations.stored_at.values()) - started) if stored else 0.0},
        "latency": {stage: latency_summary(latencies[stage]) for stage in STAGES},
        "consumer": {"invocations": consumer_invocations, "records_per_invocation": stored / consumer_invocations if consumer_invocations else 0,
                     "cpu_ms_per_record": cpu_seconds * 1000 / stored if stored else float("nan"),
                     "invoke_ms_fixed": intercept, "invoke_ms_per_record": slope,
                     "log_bytes_per_invocation": consumer_log_bytes / consumer_invocations if consumer_invocations else 0,
                     "log_events": consumer_log_events},
        # per bar stored: the bars the consumer took (a run cut short by --duration leaves some unread)
        "per_bar": {"dynamodb_write_units": write_units / stored if stored else 0, "dynamodb_read_units": read_units / stored if stored else 0,
                    "dynamodb_calls": {k.split(".", 1)[1]: v / stored for k, v in calls.items() if k.startswith("dynamodb.")} if stored else {}},
        "per_1000_bars": {"step_functions_executions": per_thousand(executions, stored), "lambda_invocations": per_thousand(invocations, stored),
                          "consumer_invocations": per_thousand(consumer_invocations, stored),
                          "eventbridge_put_events_calls": per_thousand(calls.get("events.PutEvents", 0), stored),
                          "sqs_send_calls": per_thousand(calls.get("sqs.SendMessage", 0) + calls.get("sqs.SendMessageBatch", 0), stored),
                          "sns_publish_calls": per_thousand(calls.get("sns.Publish", 0) + calls.get("sns.PublishBatch", 0), stored)},
        "dynamodb_by_table": units,
        "calls": calls,
    }
    report["model_inputs"] = model_inputs(report, units, calls, stored, observations, intercept,
                                          execution_seconds(stepfunctions, machine, started + clock_offset),
                                          record_bytes, bar_item_bytes(dynamodb, table, symbols[0])) if stored else None
    output.mkdir(parents=True, exist_ok=True)
    (output / "load-report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    png = draw(observations, patterns, approvals, started, output / "load-latency-throughput.png", settings)
    say(render(report))
    say(f"report: {output / 'load-report.json'}; chart: {png}")
    return 0


def model_inputs(report: dict, units: dict[str, dict[str, float]], calls: dict[str, float], stored: int, observations: Observations,
                 fixed_ms: float, express_seconds: float | None, record_bytes: float, item_bytes: float) -> dict[str, float]:
    """The per-bar counts tooling/capacity_model.py takes, in the shape of production 1-minute bars.

    In production every batch holds one bar per symbol (a bar a minute), so the consumer makes one history
    Query per bar; a run that falls behind packs several bars of a symbol into a batch and makes fewer.
    So reads are taken per Query and counted once a bar; writes, messages and invocations per bar as measured.
    """
    if not stored:
        raise ValueError("no bar was stored: nothing to measure")
    total = {name: sum(table.get(name, 0) for table in units.values())
             for name in ("writeUnits", "readUnits", "Query.readUnits")}
    queries = calls.get("dynamodb.Query", 0)
    read_units_per_query = total["Query.readUnits"] / queries if queries else 0.0
    other_reads = total["readUnits"] - total["Query.readUnits"]
    consumer_writes = sum(calls.get(f"dynamodb.{op}", 0) for op in ("BatchWriteItem", "PutItem", "UpdateItem"))
    consumer_invocations = len(observations.consumer_calls)
    invocations_per_1000 = report["per_1000_bars"]["lambda_invocations"]
    sends = calls.get("sqs.SendMessage", 0) + calls.get("sqs.SendMessageBatch", 0)
    return {
        "dynamodb_write_units": total["writeUnits"] / stored,
        "dynamodb_read_units": read_units_per_query + other_reads / stored,
        "consumer_ms_per_invocation": max(0.0, fixed_ms) if math.isfinite(fixed_ms) else 0.0,
        "consumer_cpu_ms_per_record": report["consumer"]["cpu_ms_per_record"],
        "dynamodb_calls_per_record": 1.0 + consumer_writes / stored,
        "other_lambda_invocations_per_1000": max(0.0, invocations_per_1000 - per_thousand(consumer_invocations, stored)),
        "other_lambda_ms_per_invocation": 1000 * sum(observations.other_calls) / len(observations.other_calls) if observations.other_calls else 50.0,
        "express_executions_per_1000": report["per_1000_bars"]["step_functions_executions"],
        # measured when the run started executions; else about what one analysis takes on the emulator (docs/local-platform.md)
        "express_seconds_per_execution": express_seconds or 2.0,
        "eventbridge_events_per_1000": report["per_1000_bars"]["eventbridge_put_events_calls"],
        # each message sent is received and deleted once by its consumer: 3 requests per send call
        "sqs_requests_per_1000": per_thousand(3 * sends, stored),
        "sns_publishes_per_1000": report["per_1000_bars"]["sns_publish_calls"],
        "record_bytes": record_bytes,
        "item_bytes": item_bytes,
        "log_bytes_per_invocation": report["consumer"]["log_bytes_per_invocation"],
    }


def base36(number: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while True:
        number, remainder = divmod(number, 36)
        out = digits[remainder] + out
        if not number:
            return out


def render(report: dict) -> str:
    run, throughput, consumer = report["run"], report["throughput"], report["consumer"]
    lines = ["", "=== load test on the local emulator ===", report["caveat"],
             f"bars: {run['bars_put']:,} put, {run['bars_stored']:,} stored in {run['total_seconds']:.1f} s "
             f"({'drained' if run['drained'] else 'NOT drained before the time limit'}); patterns {run['patterns_stored']}, "
             f"alerts queued {run['alerts_queued']}, approval requests {run['approval_requests']}",
             f"throughput: put {throughput['put_bars_per_second']:.1f} bars/s, stored {throughput['stored_bars_per_second']:.1f} bars/s",
             "latency from PutRecord (ms):     count      p50      p90      p95      p99      max"]
    for stage, summary in report["latency"].items():
        if summary is None:
            lines.append(f"  {stage:<28} {'none observed':>10}")
        else:
            lines.append(f"  {stage:<28} {summary['count']:>8} " + " ".join(f"{summary[k]:>8.0f}" for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")))
    lines.append(f"consumer: {consumer['invocations']} invocations, {consumer['records_per_invocation']:.1f} records each, "
                 f"CPU {consumer['cpu_ms_per_record']:.2f} ms per record, invoke ≈ {consumer['invoke_ms_fixed']:.1f} ms + "
                 f"{consumer['invoke_ms_per_record']:.2f} ms x records, {consumer['log_bytes_per_invocation']:.0f} log bytes per invocation")
    per_bar = report["per_bar"]
    lines.append(f"DynamoDB per bar: {per_bar['dynamodb_write_units']:.2f} WRU, {per_bar['dynamodb_read_units']:.2f} RRU; calls per bar: "
                 + ", ".join(f"{k} {v:.3f}" for k, v in per_bar["dynamodb_calls"].items()))
    lines.append("per 1,000 bars: " + ", ".join(f"{k.replace('_', ' ')} {v:.1f}" for k, v in report["per_1000_bars"].items()))
    return "\n".join(lines)


def draw(observations: Observations, patterns: dict, approvals: dict, started: float, path: Path, settings: LoadSettings) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    put = observations.put_at
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    stages = (("bar stored", observations.stored_at, "tab:blue", 4), ("pattern stored", patterns, "tab:orange", 14),
              ("alert queued", observations.alert_queued_at, "tab:red", 18), ("approval request sent", approvals, "tab:green", 22))
    for label, seen, colour, size in stages:
        points = [(put[k] - started, (at - put[k]) * 1000) for k, at in seen.items() if k in put]
        if points:
            top.scatter([p[0] for p in points], [max(p[1], 0.1) for p in points], s=size, color=colour, alpha=0.6, label=f"{label} ({len(points)})")
    top.set_yscale("log")
    top.set_ylabel("latency from PutRecord (ms)")
    top.legend(fontsize=8, loc="upper left")
    top.set_title(f"make load: {settings.symbols} symbols x {settings.bars_per_symbol} bars at {settings.rate:g} bars/s "
                  "(local emulator: the cost of our code and calls, not AWS latency)", fontsize=9)
    for label, times, colour in (("put", list(put.values()), "0.5"), ("stored", list(observations.stored_at.values()), "tab:blue")):
        xs, rates = rate_series([t - started for t in times], 0.0, width=THROUGHPUT_BIN_SECONDS)
        bottom.step(xs, rates, where="post", color=colour, label=f"bars {label} per second ({THROUGHPUT_BIN_SECONDS:g} s bins)")
    bottom.set_xlabel("seconds since the first PutRecords")
    bottom.set_ylabel("bars per second")
    bottom.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


if __name__ == "__main__":
    sys.exit(main())
