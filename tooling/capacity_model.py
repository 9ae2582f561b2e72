"""What PatternWatch costs per month on AWS, and where it stops scaling: a planning tool (docs/capacity.md).

    python -m tooling.capacity_model                      # the table for 100, 1,000 and 10,000 symbols
    python -m tooling.capacity_model --symbols 250 5000   # other sizes
    python -m tooling.capacity_model --measured load-output/load-report.json   # counts from your own `make load`
    python -m tooling.capacity_model --plot docs/img/capacity-cost.png

Pure arithmetic over three inputs, each kept in one place here:
- PRICES: AWS list prices for us-east-1 (PRICE_TABLE_DATE says which price table);
- the measured per-bar counts (DynamoDB request units, invocations, messages, log bytes): the `model_inputs`
  of a `make load` report (tooling/load_test.py), kept in docs/capacity-inputs.json; `--measured` takes another;
- the deployed shape: the env config (Lambda memory, log retention, billing alarm threshold) and the stack's
  fixed resources (alarms, dashboard, WAF rules, stream, consumer), recorded in FIXED_RESOURCES.

Market hours: 1-minute bars from 09:30 to 16:00 New York time = 390 bars per symbol per trading day;
21 trading days a month; daily bars = 1 bar per symbol per trading day. A month is 730 hours for
everything billed by the hour (the stream, its consumer, the dashboard and alarms bill all month).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from patternwatch_infra.config import load_environment
from patternwatch_shared.names.messages import DETECTION_CONTEXT_BARS
from power_tuning.pricing import ARM64_PRICE_PER_GB_SECOND, MB_PER_GB, PRICE_PER_REQUEST

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PLOT = PROJECT_ROOT / "docs" / "img" / "capacity-cost.png"

HOURS_PER_MONTH = 730
TRADING_DAYS_PER_MONTH = 21
MINUTE_BARS_PER_DAY = 390  # 09:30-16:00 America/New_York, one bar a minute
DAILY_BARS_PER_DAY = 1
DEFAULT_SIZES = (100, 1_000, 10_000)
GB = 1024**3
KB = 1024

# --------------------------------------------------------------------------------------------------
# Prices: AWS public list prices, US East (N. Virginia), on-demand, no free tier applied.
# --------------------------------------------------------------------------------------------------
PRICE_TABLE_DATE = "AWS us-east-1 list prices as published in January 2025 (recalled offline: check before budgeting)"


def _price(usd: float, what: str, per: str) -> Any:
    return field(default=usd, metadata={"what": what, "per": per})


@dataclass(frozen=True)
class Prices:
    kinesis_stream_hour: float = _price(0.04, "Kinesis Data Streams on-demand: stream", "stream-hour")
    kinesis_ingest_per_gb: float = _price(0.08, "Kinesis on-demand: data in (each record rounded up to 1 KB)", "GB")
    kinesis_efo_consumer_shard_hour: float = _price(0.015, "Kinesis enhanced fan-out consumer (see the note)", "consumer-shard-hour")
    kinesis_efo_retrieval_per_gb: float = _price(0.05, "Kinesis on-demand: enhanced fan-out data out", "GB")
    lambda_gb_second: float = _price(ARM64_PRICE_PER_GB_SECOND, "Lambda arm64 duration (first tier)", "GB-second")
    lambda_request: float = _price(PRICE_PER_REQUEST, "Lambda requests", "request")
    dynamodb_write_request_unit: float = _price(0.625 / 1e6, "DynamoDB on-demand write request unit (Standard class)", "WRU")
    dynamodb_read_request_unit: float = _price(0.125 / 1e6, "DynamoDB on-demand read request unit", "RRU")
    dynamodb_storage_gb_month: float = _price(0.25, "DynamoDB storage", "GB-month")
    express_request: float = _price(1.00 / 1e6, "Step Functions Express requests", "execution")
    express_gb_second: float = _price(0.00001667, "Step Functions Express duration (per 100 ms, 64 MB steps)", "GB-second")
    sqs_request: float = _price(0.40 / 1e6, "SQS standard requests (a batch of up to 10 is one)", "request")
    sns_publish: float = _price(0.50 / 1e6, "SNS publishes (SQS deliveries free)", "publish")
    eventbridge_custom_event: float = _price(1.00 / 1e6, "EventBridge custom events", "event")
    logs_ingest_per_gb: float = _price(0.50, "CloudWatch Logs ingestion (standard class)", "GB")
    logs_storage_gb_month: float = _price(0.03, "CloudWatch Logs storage", "GB-month")
    custom_metric_month: float = _price(0.30, "CloudWatch custom metric, EMF included (first 10,000)", "metric-month")
    dashboard_month: float = _price(3.00, "CloudWatch dashboard", "dashboard-month")
    alarm_metric_month: float = _price(0.10, "CloudWatch alarm, standard resolution", "alarm-month")
    anomaly_alarm_month: float = _price(0.30, "CloudWatch anomaly detection alarm (bills 3 metrics)", "alarm-month")
    composite_alarm_month: float = _price(0.50, "CloudWatch composite alarm", "alarm-month")
    waf_web_acl_month: float = _price(5.00, "WAF web ACL", "ACL-month")
    waf_rule_month: float = _price(1.00, "WAF rule (a managed rule group counts as one)", "rule-month")
    waf_request: float = _price(0.60 / 1e6, "WAF requests", "request")
    api_gateway_request: float = _price(3.50 / 1e6, "API Gateway REST API requests (first 333 million)", "request")
    s3_storage_gb_month: float = _price(0.023, "S3 Intelligent-Tiering, frequent access tier", "GB-month")
    s3_put_request: float = _price(0.005 / 1000, "S3 PUT requests", "request")
    s3_intelligent_tiering_monitoring_per_object: float = _price(
        0.0025 / 1000, "S3 Intelligent-Tiering monitoring (objects of 128 KB or more)", "object-month")
    kms_key_month: float = _price(1.00, "KMS customer managed key", "key-month")


def price_table(prices: "Prices | None" = None) -> str:
    """The price table as markdown, in USD: what docs/capacity.md shows."""
    prices = prices or PRICES
    lines = [f"{PRICE_TABLE_DATE}.", "", "| what | USD | per |", "|---|---:|---|"]
    for item in fields(prices):
        value = getattr(prices, item.name)
        per_million = value < 1e-4
        shown = f"{value * 1e6:,.6g} per million" if per_million else f"{value:,.10g}"
        lines.append(f"| {item.metadata['what']} | {shown} | {item.metadata['per']} |")
    return "\n".join(lines)


PRICES = Prices()

# --------------------------------------------------------------------------------------------------
# Measured per-bar counts.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerBar:
    """What the platform does per bar, and per consumer invocation; `source` says where the numbers come from."""

    source: str
    # DynamoDB request units per bar (writes: the bar item and patterns); reads: per history Query, of which
    # the consumer makes Workload.history_queries_per_bar a bar
    dynamodb_write_units: float
    dynamodb_read_units: float
    # the consumer: billed duration of one invocation = fixed + records x (CPU + DynamoDB calls x AWS call latency)
    consumer_ms_per_invocation: float
    consumer_cpu_ms_per_record: float
    dynamodb_calls_per_record: float
    # everything downstream of a bar, per 1,000 bars
    other_lambda_invocations_per_1000: float  # alert processor, workflow tasks, ...
    other_lambda_ms_per_invocation: float
    express_executions_per_1000: float
    express_seconds_per_execution: float
    eventbridge_events_per_1000: float
    sqs_requests_per_1000: float
    sns_publishes_per_1000: float
    # bytes
    record_bytes: float  # one bar on the stream
    item_bytes: float  # one stored bar (DynamoDB item size, plus the 100 bytes DynamoDB adds)
    log_bytes_per_invocation: float  # the consumer's log lines + EMF + START/END/REPORT per invocation


# The per-bar counts the model uses by default: the `model_inputs` of a `make load` report, kept in the docs
# with the run that produced them (docs/capacity.md, "Where the inputs come from").
MEASURED_FILE = PROJECT_ROOT / "docs" / "capacity-inputs.json"


def per_bar_from_report(report: dict, *, source: str) -> PerBar:
    """A load-test report's `model_inputs` (tooling/load_test.py) as model inputs."""
    inputs = report.get("model_inputs")
    if not isinstance(inputs, dict):
        raise ValueError(f"{source}: no model_inputs object (write one with `make load`)")
    known = {f.name for f in fields(PerBar)} - {"source"}
    missing = known - set(inputs)
    if missing:
        raise ValueError(f"{source}: model_inputs lacks {', '.join(sorted(missing))}")
    return PerBar(source=source, **{name: float(inputs[name]) for name in known})


def measured(path: Path = MEASURED_FILE) -> PerBar:
    """The recorded inputs (MEASURED_FILE, or a load report), with the run that measured them as their source."""
    report = json.loads(path.read_text())
    return per_bar_from_report(report, source=report.get("source") or str(path))


# --------------------------------------------------------------------------------------------------
# The deployed shape
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedResources:
    """What the stack has regardless of load (counted on the deployed `local` stack, which differs from prod only
    by the composite alarm; see README, "left out or ignored on `local`")."""

    streams: int = 1
    efo_consumers: int = 1
    min_on_demand_shards: int = 4  # a new on-demand stream starts at 4 MB/s or 4,000 records/s = 4 shards
    stream_batch_size: int = 100  # patternwatch_infra/compute.py STREAM_BATCH_SIZE
    parallelization_factor: int = 1  # the mapping does not set it: Lambda's default
    alarms: int = 47  # standard-resolution metric alarms (DescribeAlarms on the deployed `local` stack: 48, one of them anomaly)
    anomaly_alarms: int = 1  # PatternDetectionDuration-Anomaly
    composite_alarms: int = 1  # PatternWatchPlatformHealth (prod has it; `local` leaves it out)
    dashboards: int = 1
    waf_rules: int = 4  # rate limit, geo block, AWS common rule set, API key header
    # distinct EMF series, independent of symbols (names/metrics.py): 18 metric names x the service dimension,
    # + ConfidenceScore per pattern type (13), + PatternDetectionDuration per family (4), + AlertPriority per
    # severity (4), + ApprovalsProcessed per action (3)
    custom_metrics: int = 42
    threshold_checks_per_hour: int = 12  # rate(5 minutes)
    sqs_event_source_mappings: int = 1  # AlertQueue -> AlertProcessor: Lambda long-polls it all month
    api_requests_per_month: int = 10_000  # approvals and pattern queries: people, not bars
    waf_log_objects_per_month: int = 12 * HOURS_PER_MONTH  # WAF delivers a log file about every 5 minutes
    waf_log_object_bytes: int = 4 * KB
    kms_keys: int = 1


FIXED_RESOURCES = FixedResources()

# Lambda's event source mapping polls an SQS queue with about 5 long-poll connections (20 s each),
# whether or not messages arrive: 5 x 3 per minute.
SQS_IDLE_POLLS_PER_MINUTE = 15
# Shard limits (Kinesis): writes 1 MB/s or 1,000 records/s per shard; an on-demand stream serves up to
# twice its peak of the last 30 days at once and takes minutes to double beyond that.
SHARD_RECORDS_PER_SECOND = 1000
SHARD_BYTES_PER_SECOND = 1024 * 1024
ON_DEMAND_START_RECORDS_PER_SECOND = 4000
# DynamoDB: one partition serves 1,000 WRU/s and 3,000 RRU/s; a new on-demand table 4,000 WRU/s and 12,000 RRU/s.
PARTITION_WRITE_UNITS_PER_SECOND = 1000
NEW_ON_DEMAND_TABLE_WRITE_UNITS_PER_SECOND = 4000
# What one DynamoDB call from Lambda takes on AWS in the same region ("single-digit milliseconds"): the
# emulator's own call time is moto's, on the same cores, and says nothing about AWS.
DYNAMODB_CALL_MS_ON_AWS = 5.0
# Bars of one bar time arrive together: a feed publishes every symbol's minute bar within about a second.
FEED_BURST_SECONDS = 1.0


@dataclass(frozen=True)
class Workload:
    name: str
    symbols: int
    bars_per_day: int

    @property
    def bars_per_month(self) -> int:
        return self.symbols * self.bars_per_day * TRADING_DAYS_PER_MONTH

    @property
    def bar_times_per_month(self) -> int:
        return self.bars_per_day * TRADING_DAYS_PER_MONTH

    @property
    def history_queries_per_bar(self) -> float:
        """The consumer's history Queries per bar with its window cache (patternwatch_shared/window_cache.py).

        The cache serves a symbol's context while the newest DETECTION_CONTEXT_BARS - 1 bars are evenly
        spaced. A session's first 42 bars have the overnight close in that window and are read from the
        table; the rest of the day is served from memory. Daily bars always have a weekend in it: one a bar.
        """
        return min(1.0, (DETECTION_CONTEXT_BARS - 1) / self.bars_per_day)


@dataclass(frozen=True)
class Deployment:
    memory_mb: int
    log_retention_days: int
    billing_threshold_usd: float

    @classmethod
    def from_env(cls, env_name: str = "prod") -> "Deployment":
        config = load_environment(env_name)
        return cls(config.lambda_.memory_mb, config.lambda_.log_retention_days, config.alarms.billing_threshold_usd)


@dataclass
class Estimate:
    workload: Workload
    costs: dict[str, float] = field(default_factory=dict)  # component -> USD per month
    notes: dict[str, str] = field(default_factory=dict)
    shards: int = 0
    consumer_invocations: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.costs.values())

    @property
    def dominant(self) -> str:
        return max(self.costs, key=self.costs.get)


def consumer_ms_per_record(per_bar: PerBar) -> float:
    """Our code's CPU per record (measured) plus its DynamoDB calls at AWS's latency (assumed)."""
    return per_bar.consumer_cpu_ms_per_record + per_bar.dynamodb_calls_per_record * DYNAMODB_CALL_MS_ON_AWS


def shards_needed(workload: Workload, per_bar: PerBar, fixed: FixedResources = FIXED_RESOURCES) -> int:
    """On-demand shards for the burst of one bar time (every symbol's bar within FEED_BURST_SECONDS)."""
    records_per_second = workload.symbols / FEED_BURST_SECONDS
    bytes_per_second = records_per_second * math.ceil(per_bar.record_bytes / KB) * KB
    return max(fixed.min_on_demand_shards, math.ceil(records_per_second / SHARD_RECORDS_PER_SECOND),
               math.ceil(bytes_per_second / SHARD_BYTES_PER_SECOND))


def consumer_invocations_per_bar_time(symbols: int, shards: int, batch_size: int) -> int:
    """Symbols hash evenly over shards; each shard's records of one bar time go out in batches of batch_size."""
    busy_shards = min(symbols, shards)
    return busy_shards * math.ceil(symbols / busy_shards / batch_size)


def estimate(workload: Workload, per_bar: PerBar | None = None, deployment: Deployment | None = None,
             prices: Prices = PRICES, fixed: FixedResources = FIXED_RESOURCES) -> Estimate:
    deployment = deployment or Deployment.from_env()
    per_bar = per_bar or measured()
    result = Estimate(workload)
    bars = workload.bars_per_month
    gb_memory = deployment.memory_mb / MB_PER_GB
    shards = shards_needed(workload, per_bar, fixed)
    result.shards = shards

    # Kinesis on-demand: the stream and its enhanced fan-out consumer bill every hour of the month.
    ingest_gb = bars * math.ceil(per_bar.record_bytes / KB) * KB / GB
    result.costs["Kinesis"] = (
        fixed.streams * HOURS_PER_MONTH * prices.kinesis_stream_hour
        + ingest_gb * prices.kinesis_ingest_per_gb
        + fixed.efo_consumers * shards * HOURS_PER_MONTH * prices.kinesis_efo_consumer_shard_hour
        + fixed.efo_consumers * bars * per_bar.record_bytes / GB * prices.kinesis_efo_retrieval_per_gb
    )

    # Lambda arm64: the consumer (batches per bar time), everything downstream, the threshold checker.
    invocations_per_time = consumer_invocations_per_bar_time(workload.symbols, shards, fixed.stream_batch_size)
    consumer_invocations = invocations_per_time * workload.bar_times_per_month
    records_per_invocation = workload.symbols / invocations_per_time
    consumer_ms = math.ceil(per_bar.consumer_ms_per_invocation + consumer_ms_per_record(per_bar) * records_per_invocation)
    other_invocations = bars / 1000 * per_bar.other_lambda_invocations_per_1000
    checker_invocations = fixed.threshold_checks_per_hour * HOURS_PER_MONTH
    gb_seconds = gb_memory * (consumer_invocations * consumer_ms
                              + (other_invocations + checker_invocations) * math.ceil(per_bar.other_lambda_ms_per_invocation)) / 1000
    invocations = consumer_invocations + other_invocations + checker_invocations + fixed.api_requests_per_month
    result.consumer_invocations = consumer_invocations
    result.costs["Lambda"] = gb_seconds * prices.lambda_gb_second + invocations * prices.lambda_request

    # DynamoDB on-demand: request units per bar, plus a year of stored bars (bars carry no TTL).
    stored_gb = bars * 12 * per_bar.item_bytes / GB
    result.costs["DynamoDB"] = (bars * per_bar.dynamodb_write_units * prices.dynamodb_write_request_unit
                                + bars * workload.history_queries_per_bar * per_bar.dynamodb_read_units
                                * prices.dynamodb_read_request_unit
                                + stored_gb * prices.dynamodb_storage_gb_month)
    result.notes["DynamoDB"] = f"storage after 12 months: {stored_gb:.2f} GB"

    # Step Functions Express: requests + duration at the 64 MB minimum, rounded up to 100 ms.
    executions = bars / 1000 * per_bar.express_executions_per_1000
    express_seconds = math.ceil(per_bar.express_seconds_per_execution * 10) / 10
    result.costs["Step Functions"] = executions * (prices.express_request + express_seconds * 64 / 1024 * prices.express_gb_second)

    # SQS, SNS, EventBridge.
    idle_polls = fixed.sqs_event_source_mappings * SQS_IDLE_POLLS_PER_MINUTE * 60 * HOURS_PER_MONTH
    result.costs["SQS"] = (bars / 1000 * per_bar.sqs_requests_per_1000 + idle_polls) * prices.sqs_request
    result.costs["SNS"] = bars / 1000 * per_bar.sns_publishes_per_1000 * prices.sns_publish
    result.costs["EventBridge"] = bars / 1000 * per_bar.eventbridge_events_per_1000 * prices.eventbridge_custom_event

    # CloudWatch: the consumer's logs (ingested, then kept for the retention), metrics, dashboard, alarms.
    log_gb = (consumer_invocations + other_invocations + checker_invocations) * per_bar.log_bytes_per_invocation / GB
    kept_months = deployment.log_retention_days / 30
    result.costs["CloudWatch"] = (
        log_gb * prices.logs_ingest_per_gb + log_gb * kept_months * prices.logs_storage_gb_month
        + fixed.custom_metrics * prices.custom_metric_month + fixed.dashboards * prices.dashboard_month
        + fixed.alarms * prices.alarm_metric_month + fixed.anomaly_alarms * prices.anomaly_alarm_month
        + fixed.composite_alarms * prices.composite_alarm_month
    )
    result.notes["CloudWatch"] = f"logs {log_gb:.2f} GB/month"

    # WAF and API Gateway: people's requests, not bars.
    result.costs["WAF + API"] = (prices.waf_web_acl_month + fixed.waf_rules * prices.waf_rule_month
                                 + fixed.api_requests_per_month * (prices.waf_request + prices.api_gateway_request))

    # S3 (Intelligent-Tiering): WAF log files, each below 128 KB, so no monitoring fee; a year kept.
    objects = fixed.waf_log_objects_per_month
    monitored = objects if fixed.waf_log_object_bytes >= 128 * KB else 0
    result.costs["S3"] = (objects * prices.s3_put_request + objects * 12 * fixed.waf_log_object_bytes / GB * prices.s3_storage_gb_month
                          + monitored * 12 * prices.s3_intelligent_tiering_monitoring_per_object)
    result.costs["KMS"] = fixed.kms_keys * prices.kms_key_month
    return result


def workloads(sizes: Iterable[int]) -> list[Workload]:
    return [Workload(f"{name} bars", s, per_day) for name, per_day in (("1-minute", MINUTE_BARS_PER_DAY), ("daily", DAILY_BARS_PER_DAY))
            for s in sizes]


def symbols_at_budget(bars_per_day: int, budget: float, per_bar: PerBar | None = None, deployment: Deployment | None = None,
                      limit: int = 1_000_000, fixed: FixedResources = FIXED_RESOURCES) -> int | None:
    """The smallest symbol count whose monthly cost exceeds `budget` (None: not below `limit` symbols); 0: always above."""
    deployment = deployment or Deployment.from_env()
    per_bar = per_bar or measured()

    def over(symbols: int) -> bool:
        return estimate(Workload("", symbols, bars_per_day), per_bar, deployment, fixed=fixed).total > budget

    if over(1):
        return 0
    if not over(limit):
        return None
    low, high = 1, limit
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if over(middle) else (middle, high)
    return high


# --------------------------------------------------------------------------------------------------
# Limits: what stops first as symbols grow
# --------------------------------------------------------------------------------------------------


def bottlenecks(workload: Workload, per_bar: PerBar | None = None, fixed: FixedResources = FIXED_RESOURCES) -> list[str]:
    """The first limits a workload meets, in the order a bar meets them."""
    per_bar = per_bar or measured()
    findings = []
    burst = workload.symbols / FEED_BURST_SECONDS
    if burst > ON_DEMAND_START_RECORDS_PER_SECOND:
        findings.append(f"Kinesis: a bar time puts {burst:,.0f} records/s; a new on-demand stream takes "
                        f"{ON_DEMAND_START_RECORDS_PER_SECOND:,} (4 shards) and throttles the rest until it has scaled "
                        "(minutes; then it keeps 2x the 30-day peak)")
    shards = shards_needed(workload, per_bar, fixed)
    per_time = consumer_invocations_per_bar_time(workload.symbols, shards, fixed.stream_batch_size)
    batches_per_shard = per_time / min(workload.symbols, shards)
    records = workload.symbols / per_time
    batch_seconds = (per_bar.consumer_ms_per_invocation + consumer_ms_per_record(per_bar) * records) / 1000
    drain_seconds = batches_per_shard / fixed.parallelization_factor * batch_seconds
    findings.append(f"Lambda: {shards} shards x parallelization factor {fixed.parallelization_factor} = "
                    f"{shards * fixed.parallelization_factor} concurrent consumers; one bar time is "
                    f"{batches_per_shard:.0f} batch(es) of {records:.0f} records per shard, drained in about {drain_seconds:.1f} s"
                    + (" (longer than the 60 s between bars: the iterator age grows without bound)" if drain_seconds > 60 else ""))
    write_rate = burst * per_bar.dynamodb_write_units
    if write_rate > NEW_ON_DEMAND_TABLE_WRITE_UNITS_PER_SECOND:
        findings.append(f"DynamoDB: {write_rate:,.0f} WRU/s at a bar time is above a new on-demand table's "
                        f"{NEW_ON_DEMAND_TABLE_WRITE_UNITS_PER_SECOND:,} WRU/s (pre-warm it)")
    findings.append(f"DynamoDB partitions: one item collection per symbol (BAR#<symbol>) takes 1 WRU a bar time, far below "
                    f"the {PARTITION_WRITE_UNITS_PER_SECOND:,} WRU/s a partition serves; the RECENT#<day> GSI key takes one "
                    "write per detected pattern")
    return findings


def first_bottleneck(workload: Workload, per_bar: PerBar | None = None, fixed: FixedResources = FIXED_RESOURCES) -> str:
    return bottlenecks(workload, per_bar, fixed)[0]


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def render_table(estimates: Sequence[Estimate]) -> str:
    components = list(estimates[0].costs)
    header = ["workload", "symbols", "bars/month", "shards"] + components + ["total $/month", "dominant"]
    rows = [[e.workload.name, f"{e.workload.symbols:,}", f"{e.workload.bars_per_month:,}", str(e.shards)]
            + [f"{e.costs[c]:,.2f}" for c in components] + [f"{e.total:,.2f}", e.dominant] for e in estimates]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i in (0, len(header) - 1) else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report(sizes: Sequence[int], per_bar: PerBar | None = None, deployment: Deployment | None = None) -> str:
    deployment = deployment or Deployment.from_env()
    per_bar = per_bar or measured()
    estimates = [estimate(w, per_bar, deployment) for w in workloads(sizes)]
    out = [f"PatternWatch monthly cost on AWS (prod shape: Lambda {deployment.memory_mb} MB arm64, logs kept "
           f"{deployment.log_retention_days} days); {TRADING_DAYS_PER_MONTH} trading days, {MINUTE_BARS_PER_DAY} 1-minute bars a day",
           f"prices: {PRICE_TABLE_DATE}", f"per-bar inputs: {per_bar.source}", "", render_table(estimates), ""]
    for bars_per_day, name in ((MINUTE_BARS_PER_DAY, "1-minute bars"), (DAILY_BARS_PER_DAY, "daily bars")):
        trips = symbols_at_budget(bars_per_day, deployment.billing_threshold_usd, per_bar, deployment)
        where = ("already at 1 symbol (the fixed monthly cost is above it)" if trips == 0 else
                 "not below 1,000,000 symbols" if trips is None else f"at {trips:,} symbols")
        out.append(f"${deployment.billing_threshold_usd:,.0f} billing alarm, {name}: trips {where}")
        shared = symbols_at_budget(bars_per_day, deployment.billing_threshold_usd, per_bar, deployment,
                                   fixed=replace(FIXED_RESOURCES, efo_consumers=0))
        out.append(f"  without the enhanced fan-out consumer: trips "
                   + ("at 1 symbol" if shared == 0 else "not below 1,000,000 symbols" if shared is None else f"at {shared:,} symbols"))
    baseline = estimate(Workload("", 1, DAILY_BARS_PER_DAY), per_bar, deployment)
    for e in estimates:
        growth = {c: e.costs[c] - baseline.costs[c] for c in e.costs}
        grows = max(growth, key=growth.get)
        out.append(f"{e.workload.name}, {e.workload.symbols:,} symbols: dominant {e.dominant} (${e.costs[e.dominant]:,.2f}); "
                   f"above the fixed part (${baseline.total:,.2f} with 1 symbol of daily bars) {grows} grows most (+${growth[grows]:,.2f})")
    out.append("")
    for w in workloads(sizes)[: len(sizes)]:
        out.append(f"limits at {w.symbols:,} symbols, 1-minute bars:")
        out += [f"  - {line}" for line in bottlenecks(w, per_bar)]
    return "\n".join(out)


def plot(path: Path, per_bar: PerBar | None = None, deployment: Deployment | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    deployment = deployment or Deployment.from_env()
    per_bar = per_bar or measured()
    sizes = sorted({round(10 ** (i / 8)) for i in range(8, 41)})  # 10 .. 100,000 symbols
    figure, axis = plt.subplots(figsize=(9, 5.5))
    for bars_per_day, label, style in ((MINUTE_BARS_PER_DAY, "1-minute bars", "-"), (DAILY_BARS_PER_DAY, "daily bars", "--")):
        estimates = [estimate(Workload(label, s, bars_per_day), per_bar, deployment) for s in sizes]
        axis.plot(sizes, [e.total for e in estimates], style, color="black", linewidth=2, label=f"total, {label}")
        if bars_per_day == MINUTE_BARS_PER_DAY:
            for component in estimates[0].costs:
                values = [e.costs[component] for e in estimates]
                if max(values) >= 1:
                    axis.plot(sizes, values, linewidth=1, label=f"{component}, {label}")
    axis.axhline(deployment.billing_threshold_usd, color="red", linestyle=":", label=f"billing alarm ${deployment.billing_threshold_usd:,.0f}")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("symbols watched")
    axis.set_ylabel("USD per month (us-east-1 list prices)")
    axis.set_title("PatternWatch on AWS: monthly cost against symbols")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=list(DEFAULT_SIZES), help="symbol counts (default 100 1000 10000)")
    parser.add_argument("--measured", type=Path, help="a load-test report (load-output/load-report.json) to take the per-bar counts from")
    parser.add_argument("--env", default="prod", help="environment whose Lambda memory, log retention and billing threshold apply (default prod)")
    parser.add_argument("--plot", type=Path, nargs="?", const=DEFAULT_PLOT, help=f"also draw cost against symbols (default {DEFAULT_PLOT.relative_to(PROJECT_ROOT)})")
    parser.add_argument("--json", action="store_true", help="print the estimates as JSON")
    parser.add_argument("--prices", action="store_true", help="print the price table only")
    args = parser.parse_args(argv)
    if any(s < 1 for s in args.symbols):
        parser.error("--symbols must be positive")
    if args.prices:
        print(price_table())
        return 0
    try:
        per_bar = measured(args.measured or MEASURED_FILE)
    except (OSError, ValueError, KeyError) as error:
        parser.error(f"cannot use {args.measured or MEASURED_FILE}: {error}")
    deployment = Deployment.from_env(args.env)
    if args.json:
        print(json.dumps([{"workload": asdict(e.workload), "costs": e.costs, "total": e.total, "shards": e.shards}
                          for e in (estimate(w, per_bar, deployment) for w in workloads(args.symbols))], indent=2))
    else:
        print(report(args.symbols, per_bar, deployment))
    if args.plot:
        print(f"plot: {plot(args.plot, per_bar, deployment)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
