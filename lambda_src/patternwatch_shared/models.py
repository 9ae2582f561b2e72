"""Input and output schemas (pydantic v2 models, the type Powertools Parser parses into), one definition for all.

Models are strict: no coercion of "12.5" to 12.5 or true to 1, no extra fields, no NaN or infinity.
A producer bug should surface as a rejected record with a clear reason, not as a silently
"fixed" bar in the table.

The API bodies (PatternsRequest, ApprovalDecision) are also the source of the REST API's JSON-schema
models (patternwatch_infra/json_schema.py converts their JSON schema to draft-04), so what the API
Gateway checks at the edge and what the handlers accept cannot drift. Rules JSON Schema cannot say
(high >= low, unique timestamps, ISO 8601 text with a zone) are the models' alone.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

# pydantic directly rather than through aws_lambda_powertools.utilities.parser (same classes): the
# parser package also loads every built-in event model, ~30 ms of import the stream path never uses.
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StrictInt, field_validator, model_validator

from pattern_engine.limits import MIN_WINDOW  # numpy-free
from patternwatch_shared import keys
from patternwatch_shared.names.messages import (
    ALERT_SOURCE_THRESHOLD, DETECTION_CONTEXT_BARS, DETECTION_WINDOW_BARS, MAX_APPROVAL_COMMENT_CHARS, PATTERN_FAMILIES,
)

MAX_SYMBOL_LENGTH = 12
SYMBOL_PATTERN = rf"^[A-Z][A-Z0-9.\-]{{0,{MAX_SYMBOL_LENGTH - 1}}}$"
PATTERN_NAME_PATTERN = r"^[a-z][a-z0-9\-]{0,63}$"
MAX_TIMESTAMP_TEXT = 40
MAX_EPOCH_SECONDS = 32_503_680_000  # year 3000: anything later is a unit mistake (ms or µs)
MIN_EPOCH_SECONDS = 946_684_800  # 2000-01-01: older data is not market data we ingest
MAX_BARS_PER_REQUEST = 5_000  # bounds CPU of one synchronous detection (API and workflow)
# POST /patterns `window`: from the engine's minimum (which refuses shorter windows with the same
# number) to this maximum, which bounds the CPU of one request like MAX_BARS_PER_REQUEST.
MAX_REQUEST_WINDOW = 500
MAX_ID_LENGTH = 256

# DynamoDB numbers: 0, or a magnitude from 1e-130 to 9.9999999999999999999999999999999999999e+125
# (38 significant digits). Bars are stored with repr(float) (at most 17 significant digits): a
# float's repr is at or above 1e-130 exactly when the float is, and below that maximum exactly when
# the float is below 1e126, so two float comparisons decide what DynamoDB accepts.
DYNAMODB_MIN_MAGNITUDE = 1e-130
DYNAMODB_MAGNITUDE_BOUND = 1e126  # exclusive
DYNAMODB_RANGE_TEXT = "magnitude 1e-130 to 9.9999999999999999999999999999999999999e+125, or 0"


def _storable_in_dynamodb(value: float) -> float:
    magnitude = abs(value)
    if magnitude and not DYNAMODB_MIN_MAGNITUDE <= magnitude < DYNAMODB_MAGNITUDE_BOUND:
        raise ValueError(f"{value!r} is outside the range DynamoDB can store ({DYNAMODB_RANGE_TEXT})")
    return value


Symbol = Annotated[str, Field(pattern=SYMBOL_PATTERN, max_length=MAX_SYMBOL_LENGTH)]
PatternName = Annotated[str, Field(pattern=PATTERN_NAME_PATTERN, max_length=64)]
# A bar's numbers are stored in TradingPatterns; one that DynamoDB refuses must be refused here, with
# the reason, and not fail the write of the other bars that share its batch.
Price = Annotated[float, Field(gt=0, allow_inf_nan=False), AfterValidator(_storable_in_dynamodb)]
Volume = Annotated[float, Field(ge=0, allow_inf_nan=False), AfterValidator(_storable_in_dynamodb)]
Confidence = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
EpochSeconds = Annotated[StrictInt, Field(ge=MIN_EPOCH_SECONDS, le=MAX_EPOCH_SECONDS)]
TimestampText = Annotated[str, Field(max_length=MAX_TIMESTAMP_TEXT)]
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]


class StrictModel(BaseModel):
    # allow_inf_nan=False for every float, including the free-form ones (alert details): a NaN that
    # is accepted is later written as a NaN token, which is not JSON.
    # defer_build: a model's validator is built when first needed, so a function pays at import only for
    # the models its path validates (build_validators), not for all of them.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)


def build_validators(*models: type[BaseModel]) -> None:
    """Build these models' validators now. A handler calls it at import for the models its path validates,
    so they are built during Lambda's init phase (which runs at full CPU) instead of in the first request."""
    for model in models:
        model.model_rebuild(force=True)


def _epoch_seconds_from(value: Any) -> Any:
    """Accept epoch seconds or an ISO 8601 string with a timezone; normalise to epoch seconds."""
    if isinstance(value, str):
        if len(value) > MAX_TIMESTAMP_TEXT:
            raise ValueError(f"timestamp text longer than {MAX_TIMESTAMP_TEXT} characters")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("timestamp must be epoch seconds or ISO 8601 text") from None
        if moment.tzinfo is None:
            raise ValueError("ISO 8601 timestamp must carry a timezone (e.g. Z)")
        if moment.microsecond:
            raise ValueError("timestamp must be a whole second")
        return int(moment.timestamp())
    return value


class BarValues(StrictModel):
    """One OHLCV bar without its symbol (the API and the workflow carry the symbol once)."""

    timestamp: EpochSeconds
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Volume

    # Epoch seconds, or ISO 8601 text that the validator turns into epoch seconds (the schema says both).
    _normalise_timestamp = field_validator("timestamp", mode="before", json_schema_input_type=Union[EpochSeconds, TimestampText])(
        _epoch_seconds_from
    )

    @model_validator(mode="after")
    def _high_low_bracket_the_bar(self) -> BarValues:
        if self.high < self.low:
            raise ValueError(f"high {self.high} is below low {self.low}")
        if self.high < max(self.open, self.close):
            raise ValueError(f"high {self.high} is below open/close")
        if self.low > min(self.open, self.close):
            raise ValueError(f"low {self.low} is above open/close")
        return self


class Bar(BarValues):
    """One bar as it arrives on the stream."""

    symbol: Symbol


def _sorted_unique_bars(bars: list[BarValues]) -> list[BarValues]:
    ordered = sorted(bars, key=lambda bar: bar.timestamp)
    for earlier, later in zip(ordered, ordered[1:]):
        if earlier.timestamp == later.timestamp:
            raise ValueError(f"two bars share timestamp {earlier.timestamp}")
    return ordered


BarList = Annotated[list[BarValues], Field(min_length=1, max_length=MAX_BARS_PER_REQUEST)]


class BarSeries(StrictModel):
    symbol: Symbol
    bars: BarList

    _order_bars = field_validator("bars", mode="after")(_sorted_unique_bars)


# --- Pattern matches as they leave the engine adapter ------------------------------------------
# One turn of a match: [epoch seconds, close]. A JSON array, so the pair itself is not strict (a list
# becomes the tuple); its two values are.
Extremum = Annotated[tuple[EpochSeconds, Price], Strict(False)]
MAX_EXTREMA = 5  # the engine reports E1..E5, or three turns for double tops and bottoms
Extrema = Annotated[list[Extremum], Field(min_length=1, max_length=MAX_EXTREMA)]


class MatchOut(StrictModel):
    pattern: PatternName
    confidence: Confidence
    start: Annotated[StrictInt, Field(ge=0)]
    end: Annotated[StrictInt, Field(ge=0)]
    startTimestamp: EpochSeconds
    endTimestamp: EpochSeconds
    extrema: Extrema


# --- The PatternDetected event (EventBridge detail = PatternAnalysisWorkflow's input) ------------
class PatternCandidate(StrictModel):
    """A match the stream found, as the workflow confirms it: its identity and what the engine said."""

    pattern: PatternName
    confidence: Confidence
    startTimestamp: EpochSeconds
    endTimestamp: EpochSeconds
    detectedAt: Annotated[str, Field(min_length=1, max_length=MAX_TIMESTAMP_TEXT)]  # as AlertMessage.detectedAt
    alertId: Identifier
    extrema: Extrema

    @model_validator(mode="after")
    def _turns_lie_inside_the_match(self) -> PatternCandidate:
        times = [timestamp for timestamp, _ in self.extrema]
        if not self.startTimestamp <= self.endTimestamp:
            raise ValueError("startTimestamp is after endTimestamp")
        if times != sorted(set(times)) or times[0] < self.startTimestamp or times[-1] > self.endTimestamp:
            raise ValueError("extrema must be in time order, between startTimestamp and endTimestamp")
        return self


ContextBars = Annotated[list[BarValues], Field(min_length=1, max_length=DETECTION_CONTEXT_BARS)]


class PatternDetectedDetail(PatternCandidate):
    """The detail of a PatternDetected event; field names in names.messages.PATTERN_DETECTED_FIELDS.

    `bars` is the detection context the stream ran the engine on: the bars ending at the match's end
    bar, oldest first, so the workflow re-detects exactly what the stream saw.
    """

    symbol: Symbol
    bars: ContextBars

    _order_bars = field_validator("bars", mode="after")(_sorted_unique_bars)

    @model_validator(mode="after")
    def _one_identity_and_the_context_ends_at_the_match(self) -> PatternDetectedDetail:
        expected = keys.alert_id(self.symbol, keys.pattern_sort_key(self.endTimestamp, self.pattern))
        if self.alertId != expected:
            raise ValueError(f"alertId must be {expected!r} (symbol, end timestamp and pattern)")
        if self.bars[-1].timestamp != self.endTimestamp or self.bars[0].timestamp > self.startTimestamp:
            raise ValueError("bars must run from at or before startTimestamp to the bar at endTimestamp")
        return self

    def candidate(self) -> PatternCandidate:
        return PatternCandidate.model_validate(self.model_dump(exclude={"symbol", "bars"}))


# --- Alerts (AlertQueue message body) ---------------------------------------------------------
Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]
AlertSource = Literal["stream", "workflow", "threshold"]
# `details` values: short text, numbers, flags, and a match's extrema (under the key "extrema").
DetailValue = Union[Annotated[str, Field(max_length=MAX_ID_LENGTH)], StrictInt, float, bool, Extrema]


class AlertMessage(StrictModel):
    alertId: Identifier
    source: AlertSource
    severity: Severity
    detectedAt: Annotated[str, Field(min_length=1, max_length=MAX_TIMESTAMP_TEXT)]
    confidence: Confidence
    symbol: Symbol | None = None
    pattern: PatternName | None = None
    startTimestamp: EpochSeconds | None = None
    endTimestamp: EpochSeconds | None = None
    details: Annotated[dict[Annotated[str, Field(max_length=64)], DetailValue], Field(max_length=32)] | None = None

    @model_validator(mode="after")
    def _pattern_alerts_name_their_pattern(self) -> AlertMessage:
        if self.source != ALERT_SOURCE_THRESHOLD and (self.symbol is None or self.pattern is None):
            raise ValueError(f"a {self.source} alert needs symbol and pattern")
        return self


# --- Step Functions task inputs (discriminated by "action") -----------------------------------
CorrelationId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Family = Literal[tuple(PATTERN_FAMILIES)]  # type: ignore[valid-type]  # the family names, defined once


class ValidateRequest(StrictModel):
    action: Literal["validate"]
    detail: PatternDetectedDetail
    correlationId: CorrelationId | None = None

    @property
    def symbol(self) -> str:
        return self.detail.symbol


class DetectRequest(StrictModel):
    action: Literal["detect"]
    family: Family
    symbol: Symbol
    bars: BarList
    correlationId: CorrelationId | None = None

    _order_bars = field_validator("bars", mode="after")(_sorted_unique_bars)


class FamilyResult(StrictModel):
    family: Family
    symbol: Symbol
    matches: list[MatchOut]


class ScoreRequest(StrictModel):
    action: Literal["score"]
    symbol: Symbol
    candidate: PatternCandidate
    results: Annotated[list[FamilyResult], Field(min_length=1, max_length=len(PATTERN_FAMILIES))]
    correlationId: CorrelationId | None = None

    @model_validator(mode="after")
    def _one_result_per_family(self) -> ScoreRequest:
        families = [result.family for result in self.results]
        if len(set(families)) != len(families):
            raise ValueError("results must hold one result per family")
        return self


class DecideRequest(StrictModel):
    action: Literal["decide"]
    symbol: Symbol
    candidate: PatternCandidate
    confirmed: MatchOut | None
    correlationId: CorrelationId | None = None


WorkflowRequest = Annotated[
    Union[ValidateRequest, DetectRequest, ScoreRequest, DecideRequest],
    Field(discriminator="action"),
]


# --- API bodies -------------------------------------------------------------------------------
class PatternsRequest(StrictModel):
    """POST /patterns"""

    symbol: Symbol
    bars: BarList
    patterns: Annotated[list[PatternName], Field(min_length=1, max_length=32)] | None = None
    window: Annotated[StrictInt, Field(ge=MIN_WINDOW, le=MAX_REQUEST_WINDOW)] = DETECTION_WINDOW_BARS

    _order_bars = field_validator("bars", mode="after")(_sorted_unique_bars)


ApprovalAction = Literal["approve", "reject"]


class ApprovalDecisionBody(StrictModel):
    """POST /approve/{token} as an object: {"action": "approve" | "reject", "comment"?: "..."}."""

    action: ApprovalAction
    comment: Annotated[str, Field(max_length=MAX_APPROVAL_COMMENT_CHARS)] | None = None


# POST /approve/{token}: the object, or the JSON string "approve" / "reject".
ApprovalDecision = Union[ApprovalDecisionBody, ApprovalAction]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
