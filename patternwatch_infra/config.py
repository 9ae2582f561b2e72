"""Typed environment configuration: envs/<name>.json validated into frozen objects.

Every problem is reported as ``ConfigError("envs/dev.json: alarms.billing_threshold_usd: ...")`` so
the person editing the file sees which file and which key to fix. Unknown keys are errors too: a
misspelt key would otherwise silently fall back to a default.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from patternwatch_shared.names.functions import PLATFORM_FUNCTIONS
from patternwatch_shared.approvers import APPROVER_ID_PATTERN, MAX_APPROVER_NAME_CHARS, MAX_APPROVERS, Approver
from patternwatch_shared.names.messages import MAX_APPROVAL_EXPIRY_SECONDS

from .workspaces import ENVIRONMENT_SUFFIX_PATTERN

ENVS_DIR = Path(__file__).resolve().parent.parent / "envs"
ENVIRONMENT_NAMES = ("local", "dev", "staging", "prod")

# Environment variables that change which stacks synthesize and how.
SELECT_ENVIRONMENTS_VAR = "PATTERNWATCH_ENVIRONMENTS"
# Moves the emulator environment to another port, so two checkouts on one machine each run their own platform.
EMULATOR_PORT_VAR = "PATTERNWATCH_EMULATOR_PORT"

STATE_FILE_NAME = "patternwatch.tfstate"
POWER_TUNER_STATE_FILE_NAME = "power-tuner.tfstate"
# FSBP Kinesis.3: production keeps stream records for at least seven days.
PRODUCTION_ENVIRONMENT = "prod"
PRODUCTION_MIN_KINESIS_RETENTION_HOURS = 168

_REGION = re.compile(r"^(us|eu|ap|sa|ca|me|af|il|mx)(-gov)?-(north|south|east|west|central|northeast|southeast|northwest|southwest)-[1-9]$")
# Short enough that every name still fits AWS's limits with the longest workspace (workspaces.py).
_SUFFIX = re.compile(ENVIRONMENT_SUFFIX_PATTERN)
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# A plain address: SNS sends the subscription confirmation there, so it must at least look deliverable.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
REQUIRED_TAGS = ("Project", "Environment", "CostCenter")


_Config = TypeVar("_Config")


class ConfigError(ValueError):
    """An environment file is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class EmulatorConfig:
    """Where the local AWS emulator (moto server) listens; present only for `local`."""

    host: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class StateBackendConfig:
    """Remote state: an S3 bucket with KMS and a lockfile, or a local file for the emulator."""

    kind: str  # "s3" or "local"
    key_prefix: str
    bucket: str | None = None
    region: str | None = None
    kms_key_id: str | None = None
    use_lockfile: bool = True


# The functions reserved concurrency is set for, by code package (`kinesis_consumer`, ...).
PLATFORM_FUNCTION_PACKAGES = tuple(spec.package for spec in PLATFORM_FUNCTIONS)
# Lambda refuses a reservation that leaves fewer than 100 of the account's concurrent executions unreserved.
UNRESERVED_CONCURRENCY_MINIMUM = 100
# AWS's default regional concurrency quota per account; raise `lambda.account_concurrency` after a quota increase.
DEFAULT_ACCOUNT_CONCURRENCY = 1000
# An SQS event source mapping's maximum concurrency is at least 2; the reservation of each function a queue
# drives sets its mapping's maximum concurrency.
SQS_MINIMUM_MAXIMUM_CONCURRENCY = 2
QUEUE_DRIVEN_PACKAGES = {"alert_processor": "AlertQueue", "approval_expiry": "PendingApprovals"}
# The defaults are dev's numbers (docs/security.md explains each environment's).
DEFAULT_RESERVED_CONCURRENCY = MappingProxyType(
    {"kinesis_consumer": 8, "pattern_detector": 10, "alert_processor": 5, "threshold_checker": 2, "approval_processor": 5, "approval_expiry": 2}
)


@dataclass(frozen=True)
class LambdaConfig:
    memory_mb: int = 512
    timeout_seconds: int = 30
    log_retention_days: int = 30
    # Concurrent executions reserved for each platform function (a guarantee and a cap), by code package.
    reserved_concurrency: Mapping[str, int] = field(default_factory=lambda: DEFAULT_RESERVED_CONCURRENCY)
    # The account's regional concurrency quota the reservations are checked against.
    account_concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY

    @property
    def concurrency_budget(self) -> int:
        """What may be reserved in this account: the quota less the minimum Lambda keeps unreserved."""
        return self.account_concurrency - UNRESERVED_CONCURRENCY_MINIMUM


@dataclass(frozen=True)
class AlertConfig:
    """Which detections alert. Every alert decision compares with `confidence >= confidence_threshold`."""

    # kinesis-consumer emits a PatternDetected event, the pattern-detected rule starts the workflow and
    # its decide step queues the alert at or above it; the threshold checker counts such patterns.
    confidence_threshold: float = 0.9
    # The threshold checker's own alert: at least this many patterns at or above the threshold in its window.
    threshold_check_min_breaches: int = 6


@dataclass(frozen=True)
class AlarmConfig:
    """CloudWatch alarm thresholds (each alarm is on 3 of 5 one-minute periods unless said otherwise)."""

    billing_threshold_usd: float = 100.0
    lambda_errors_per_minute: int = 5  # each function's Errors alarm
    api_5xx_errors_per_minute: int = 5  # the REST API's 5XXError alarm
    iterator_age_ms: int = 60_000
    duration_p99_ratio: float = 0.8
    dlq_depth: int = 1
    canary_error_rate_percent: float = 2.0


# What Lambda does with a package that is unsigned, or not signed by the environment's signing profile.
UNTRUSTED_ARTIFACT_ACTIONS = ("Enforce", "Warn")


@dataclass(frozen=True)
class CodeSigningConfig:
    """Lambda code signing: `Enforce` refuses untrusted packages, `Warn` deploys them and logs a warning."""

    untrusted_artifact_on_deployment: str = "Warn"

    @property
    def enforced(self) -> bool:
        return self.untrusted_artifact_on_deployment == "Enforce"


@dataclass(frozen=True)
class WafConfig:
    geo_block_countries: tuple[str, ...] = ("CN", "RU", "KP")
    rate_limit_per_5_minutes: int = 2000


@dataclass(frozen=True)
class PowerTunerConfig:
    """The power tuner is tooling with its own stack (patternwatch-<env>-power-tuner), deployed only where enabled."""

    enabled: bool = False


@dataclass(frozen=True)
class ApproverConfig:
    """A person who may approve CRITICAL alerts: gets their own link by e-mail, decides under their name."""

    id: str
    name: str
    email: str

    @property
    def approver(self) -> Approver:
        """What the functions know of them (no e-mail: that lives in the SNS subscription only)."""
        return Approver(self.id, self.name)


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    resource_suffix: str
    region: str
    state_backend: StateBackendConfig
    tags: Mapping[str, str]
    account_id: str | None = None
    emulator: EmulatorConfig | None = None
    lambda_: LambdaConfig = field(default_factory=LambdaConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    alarms: AlarmConfig = field(default_factory=AlarmConfig)
    waf: WafConfig = field(default_factory=WafConfig)
    code_signing: CodeSigningConfig = field(default_factory=CodeSigningConfig)
    canary_percent: float = 10.0
    kinesis_retention_hours: int = 24
    approval_expiry_seconds: int = 3600
    approvers: tuple[ApproverConfig, ...] = ()
    prevent_destroy: bool = False
    power_tuner: PowerTunerConfig = field(default_factory=PowerTunerConfig)

    @property
    def stack_name(self) -> str:
        return f"patternwatch-{self.name}"

    @property
    def power_tuner_stack_name(self) -> str:
        return f"patternwatch-{self.name}-power-tuner"

    @property
    def stack_names(self) -> tuple[str, ...]:
        """Every stack main.py synthesizes for this environment."""
        return (self.stack_name, *([self.power_tuner_stack_name] if self.power_tuner.enabled else []))

    @property
    def state_key(self) -> str:
        """The default workspace's state; other workspaces' live under `<key_prefix>/workspaces/<workspace>/`."""
        return self.state_key_for(STATE_FILE_NAME)

    def state_key_for(self, state_file: str) -> str:
        """Each stack of the environment keeps its own state file under the environment's key prefix."""
        return f"{self.state_backend.key_prefix}/{state_file}"

    @property
    def source(self) -> str:
        """The file this configuration came from, as errors name it."""
        return f"envs/{self.name}.json"


class _Section:
    """Reads one JSON object, remembering the dotted path so errors can name the key."""

    def __init__(self, source: str, data: Any, path: str = "") -> None:
        self.source = source
        self.path = path
        if not isinstance(data, dict):
            raise self.error("", f"must be a JSON object, got {type(data).__name__}")
        self.data = data
        self.seen: set[str] = set()

    def error(self, key: str, problem: str) -> ConfigError:
        where = f"{self.path}.{key}" if self.path and key else (self.path or key or "<top level>")
        return ConfigError(f"{self.source}: {where}: {problem}")

    def _get(self, key: str, default: Any, required: bool) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if required:
                raise self.error(key, "is required")
            return default
        return self.data[key]

    def string(self, key: str, *, pattern: re.Pattern[str] | None = None, required: bool = True, default: str | None = None) -> str | None:
        value = self._get(key, default, required)
        if value is default and key not in self.data:
            return value
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {type(value).__name__}")
        if not value.strip():
            raise self.error(key, "must not be empty")
        if pattern is not None and not pattern.match(value):
            raise self.error(key, f"{value!r} is not valid (expected {pattern.pattern})")
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self._get(key, default, default is None)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {type(value).__name__}")
        if not low <= value <= high:
            raise self.error(key, f"{value} is out of range [{low}, {high}]")
        return value

    def number(self, key: str, low: float, high: float, default: float | None = None) -> float:
        value = self._get(key, default, default is None)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value!r}")
        if not low <= value <= high:
            raise self.error(key, f"{value} is out of range [{low}, {high}]")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default, False)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {type(value).__name__}")
        return value

    def section(self, key: str, *, required: bool = False) -> _Section | None:
        value = self._get(key, None, required)
        if value is None:
            return None
        return _Section(self.source, value, f"{self.path}.{key}" if self.path else key)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.error(unknown[0], f"unknown key (allowed: {', '.join(sorted(self.seen))})")


def _read_backend(section: _Section) -> StateBackendConfig:
    kind = section.string("type")
    if kind == "local":
        backend = StateBackendConfig(kind="local", key_prefix=section.string("key_prefix"))
    elif kind == "s3":
        backend = StateBackendConfig(
            kind="s3",
            key_prefix=section.string("key_prefix"),
            bucket=section.string("bucket", pattern=_BUCKET),
            region=section.string("region", pattern=_REGION),
            kms_key_id=section.string("kms_key_id"),
            use_lockfile=section.boolean("use_lockfile", True),
        )
    else:
        raise section.error("type", f"{kind!r} is not one of 's3', 'local'")
    section.done()
    return backend


def _read_tags(section: _Section) -> Mapping[str, str]:
    for key in REQUIRED_TAGS:
        section.string(key)
    for key in section.data:
        section.string(key)
    section.done()
    return MappingProxyType(dict(section.data))


def _optional_section(section: _Section | None, default: _Config, read: Callable[[_Section, _Config], _Config]) -> _Config:
    """A section the file may leave out: then its defaults; else what `read` makes of it, every key checked."""
    if section is None:
        return default
    config = read(section, default)
    section.done()
    return config


def _read_waf(section: _Section, d: WafConfig) -> WafConfig:
    countries = section._get("geo_block_countries", list(d.geo_block_countries), False)
    if not isinstance(countries, list) or not all(isinstance(c, str) and _COUNTRY_CODE.match(c) for c in countries):
        raise section.error("geo_block_countries", "must be a list of ISO 3166 alpha-2 codes such as \"CN\"")
    # WAF rate-based rules accept limits from 10 to 2,000,000,000 requests per evaluation window.
    return WafConfig(
        geo_block_countries=tuple(countries),
        rate_limit_per_5_minutes=section.integer("rate_limit_per_5_minutes", 10, 2_000_000_000, d.rate_limit_per_5_minutes),
    )


def _read_code_signing(section: _Section, d: CodeSigningConfig) -> CodeSigningConfig:
    action = section.string("untrusted_artifact_on_deployment", required=False, default=d.untrusted_artifact_on_deployment)
    if action not in UNTRUSTED_ARTIFACT_ACTIONS:
        raise section.error("untrusted_artifact_on_deployment", f"{action!r} is not one of {', '.join(map(repr, UNTRUSTED_ARTIFACT_ACTIONS))}")
    return CodeSigningConfig(untrusted_artifact_on_deployment=action)


def _read_lambda(section: _Section, d: LambdaConfig) -> LambdaConfig:
    account_concurrency = section.integer("account_concurrency", UNRESERVED_CONCURRENCY_MINIMUM + 1, 1_000_000, d.account_concurrency)
    config = LambdaConfig(
        memory_mb=section.integer("memory_mb", 128, 10_240, d.memory_mb),
        timeout_seconds=section.integer("timeout_seconds", 1, 900, d.timeout_seconds),
        log_retention_days=section.integer("log_retention_days", 1, 3653, d.log_retention_days),
        reserved_concurrency=_read_reserved_concurrency(section.section("reserved_concurrency"), account_concurrency),
        account_concurrency=account_concurrency,
    )
    if config.log_retention_days not in LOG_RETENTION_DAYS:
        raise section.error("log_retention_days", f"{config.log_retention_days} is not a CloudWatch Logs retention period {LOG_RETENTION_DAYS}")
    return config


def _read_reserved_concurrency(section: _Section | None, account_concurrency: int) -> Mapping[str, int]:
    """One reservation per platform function (the defaults fill in the rest); together they must fit the
    account's budget, or Lambda refuses the last PutFunctionConcurrency halfway through a deploy."""
    if section is None:
        reserved = dict(DEFAULT_RESERVED_CONCURRENCY)
    else:
        budget = account_concurrency - UNRESERVED_CONCURRENCY_MINIMUM
        reserved = {
            package: section.integer(package, 1, budget, DEFAULT_RESERVED_CONCURRENCY[package]) for package in PLATFORM_FUNCTION_PACKAGES
        }
        section.done()
        for package, queue in QUEUE_DRIVEN_PACKAGES.items():
            if reserved[package] < SQS_MINIMUM_MAXIMUM_CONCURRENCY:
                raise section.error(
                    package,
                    f"{reserved[package]} is below {SQS_MINIMUM_MAXIMUM_CONCURRENCY}: it is also the {queue} mapping's maximum "
                    f"concurrency, which SQS needs to be at least {SQS_MINIMUM_MAXIMUM_CONCURRENCY}",
                )
        total = sum(reserved.values())
        if total > budget:
            raise section.error(
                "",
                f"the reservations add up to {total}, more than the {budget} this account can reserve "
                f"(lambda.account_concurrency {account_concurrency} less the {UNRESERVED_CONCURRENCY_MINIMUM} Lambda keeps unreserved)",
            )
    return MappingProxyType(reserved)


def _read_power_tuner(section: _Section, d: PowerTunerConfig) -> PowerTunerConfig:
    return PowerTunerConfig(enabled=section.boolean("enabled", d.enabled))


def _read_alerts(section: _Section, d: AlertConfig) -> AlertConfig:
    return AlertConfig(
        confidence_threshold=section.number("confidence_threshold", 0.0, 1.0, d.confidence_threshold),
        threshold_check_min_breaches=section.integer("threshold_check_min_breaches", 1, 1_000_000, d.threshold_check_min_breaches),
    )


# Keys that were split or moved: the error says where their meaning went.
_MOVED_ALARM_KEYS = {
    "error_threshold": "split into alarms.lambda_errors_per_minute, alarms.api_5xx_errors_per_minute and "
    "alerts.threshold_check_min_breaches (at least that many breaches, so the old 5 is 6)",
    "pattern_confidence_threshold": "moved to alerts.confidence_threshold",
}


def _read_alarms(section: _Section, d: AlarmConfig) -> AlarmConfig:
    for key, where in _MOVED_ALARM_KEYS.items():
        if key in section.data:
            raise section.error(key, where)
    return AlarmConfig(
        billing_threshold_usd=section.number("billing_threshold_usd", 1, 1_000_000, d.billing_threshold_usd),
        lambda_errors_per_minute=section.integer("lambda_errors_per_minute", 1, 1_000_000, d.lambda_errors_per_minute),
        api_5xx_errors_per_minute=section.integer("api_5xx_errors_per_minute", 1, 1_000_000, d.api_5xx_errors_per_minute),
        iterator_age_ms=section.integer("iterator_age_ms", 1_000, 604_800_000, d.iterator_age_ms),
        duration_p99_ratio=section.number("duration_p99_ratio", 0.1, 1.0, d.duration_p99_ratio),
        dlq_depth=section.integer("dlq_depth", 1, 1_000_000, d.dlq_depth),
        canary_error_rate_percent=section.number("canary_error_rate_percent", 0.1, 100, d.canary_error_rate_percent),
    )


def _read_approvers(top: _Section) -> tuple[ApproverConfig, ...]:
    entries = top._get("approvers", None, True)
    if not isinstance(entries, list) or not entries:
        raise top.error("approvers", "must list at least one approver: [{\"id\", \"name\", \"email\"}, ...]")
    if len(entries) > MAX_APPROVERS:
        raise top.error("approvers", f"lists {len(entries)} approvers; at most {MAX_APPROVERS} fit in a function's environment")
    approvers = []
    for index, entry in enumerate(entries):
        section = _Section(top.source, entry, f"approvers[{index}]")
        approver = ApproverConfig(
            id=section.string("id", pattern=APPROVER_ID_PATTERN),
            name=section.string("name"),
            email=section.string("email", pattern=_EMAIL),
        )
        if len(approver.name) > MAX_APPROVER_NAME_CHARS:
            raise section.error("name", f"is longer than {MAX_APPROVER_NAME_CHARS} characters")
        section.done()
        approvers.append(approver)
    for key in ("id", "email"):
        seen: set[str] = set()
        for index, approver in enumerate(approvers):
            value = getattr(approver, key).lower()
            if value in seen:
                raise top.error(f"approvers[{index}].{key}", f"{getattr(approver, key)!r} is listed twice")
            seen.add(value)
    return tuple(approvers)


def parse_environment(data: Any, source: str) -> EnvironmentConfig:
    """Validate one environment document; `source` names it in error messages."""
    top = _Section(source, data)
    name = top.string("name", pattern=re.compile(r"^[a-z][a-z0-9-]{0,15}$"))
    emulator_section = top.section("emulator")
    emulator = None
    if emulator_section is not None:
        emulator = EmulatorConfig(
            host=emulator_section.string("host", required=False, default="127.0.0.1"),
            port=emulator_section.integer("port", 1, 65_535),
        )
        emulator_section.done()
    account_id = top.string("account_id", pattern=_ACCOUNT_ID, required=emulator is None)
    config = EnvironmentConfig(
        name=name,
        resource_suffix=top.string("resource_suffix", pattern=_SUFFIX),
        account_id=account_id,
        region=top.string("region", pattern=_REGION),
        emulator=emulator,
        state_backend=_read_backend(top.section("state_backend", required=True)),
        tags=_read_tags(top.section("tags", required=True)),
        lambda_=_optional_section(top.section("lambda"), LambdaConfig(), _read_lambda),
        alerts=_optional_section(top.section("alerts"), AlertConfig(), _read_alerts),
        alarms=_optional_section(top.section("alarms"), AlarmConfig(), _read_alarms),
        waf=_optional_section(top.section("waf"), WafConfig(), _read_waf),
        code_signing=_optional_section(top.section("code_signing"), CodeSigningConfig(), _read_code_signing),
        canary_percent=top.number("canary_percent", 0.0, 100.0, 10.0),
        kinesis_retention_hours=top.integer("kinesis_retention_hours", 24, 8760, 24),
        approval_expiry_seconds=top.integer("approval_expiry_seconds", 60, MAX_APPROVAL_EXPIRY_SECONDS, 3600),
        approvers=_read_approvers(top),
        prevent_destroy=top.boolean("prevent_destroy", False),
        power_tuner=_optional_section(top.section("power_tuner"), PowerTunerConfig(), _read_power_tuner),
    )
    top.done()
    if config.state_backend.kind == "local" and emulator is None:
        raise top.error("state_backend.type", "'local' state is only for the emulator environment (set `emulator`)")
    if config.name == PRODUCTION_ENVIRONMENT and config.kinesis_retention_hours < PRODUCTION_MIN_KINESIS_RETENTION_HOURS:
        raise top.error(
            "kinesis_retention_hours",
            f"{config.kinesis_retention_hours} is below {PRODUCTION_MIN_KINESIS_RETENTION_HOURS}: production keeps stream records "
            "for at least seven days (FSBP Kinesis.3)",
        )
    return config


def load_environment(name: str, *, envs_dir: Path = ENVS_DIR) -> EnvironmentConfig:
    """Load envs/<name>.json (and move the emulator to PATTERNWATCH_EMULATOR_PORT when it is set)."""
    path = envs_dir / f"{name}.json"
    source = f"envs/{path.name}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found (known environments: {', '.join(ENVIRONMENT_NAMES)})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}") from None
    config = parse_environment(data, source)
    if config.name != name:
        raise ConfigError(f"{source}: name: {config.name!r} does not match the file name {name!r}")
    return _with_emulator_port(config, os.environ.get(EMULATOR_PORT_VAR))


def _with_emulator_port(config: EnvironmentConfig, raw_port: str | None) -> EnvironmentConfig:
    if not raw_port or config.emulator is None:
        return config
    if not raw_port.isascii() or not raw_port.isdigit() or not 1024 <= int(raw_port) <= 65_535:
        raise ConfigError(f"{EMULATOR_PORT_VAR}: {raw_port!r} is not a port number from 1024 to 65535")
    return replace(config, emulator=replace(config.emulator, port=int(raw_port)))


def selected_environments(environ: Mapping[str, str] | None = None) -> list[EnvironmentConfig]:
    """The environments main.py synthesizes: all, or those named in PATTERNWATCH_ENVIRONMENTS."""
    environ = os.environ if environ is None else environ
    raw = environ.get(SELECT_ENVIRONMENTS_VAR, "").strip()
    names = [n.strip() for n in raw.split(",") if n.strip()] if raw else list(ENVIRONMENT_NAMES)
    unknown = [n for n in names if n not in ENVIRONMENT_NAMES]
    if unknown:
        raise ConfigError(f"{SELECT_ENVIRONMENTS_VAR}: unknown environment {unknown[0]!r} (known: {', '.join(ENVIRONMENT_NAMES)})")
    return [load_environment(n) for n in names]
