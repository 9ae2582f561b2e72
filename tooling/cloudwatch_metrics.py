"""Metrics as a CloudWatch dashboard body and alarms name them: parsed, SEARCH expanded, fetched.

Shared by the dashboard renderer (tooling/dashboard_render.py) and the referenced-metrics check
(tooling/metric_references.py). Works against the emulator and against real CloudWatch alike: it only
calls GetMetricData and ListMetrics.

A dashboard metric entry is `[namespace, name, dim1, value1, ..., {options}]` or `[{"expression": ...}]`.
Options honoured: stat, period, label, color, visible. `SEARCH(...)` expressions are expanded here with
ListMetrics, because moto does not evaluate them (and the metric checks need the matches anyway); other
metric math and the "."/"..." shorthand are reported as unsupported instead of drawn wrongly.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

DEFAULT_STAT = "Average"  # CloudWatch's default when neither the metric nor the widget names one
DEFAULT_PERIOD_SECONDS = 300
GET_METRIC_DATA_LIMIT = 500  # queries per GetMetricData call


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str, frozenset]:
        """CloudWatch identifies a metric by namespace, name and the SET of its dimensions."""
        return self.namespace, self.name, frozenset(self.dimensions)

    def describe(self) -> str:
        dims = ",".join(f"{k}={v}" for k, v in sorted(self.dimensions))
        return f"{self.namespace} {self.name}" + (f" {{{dims}}}" if dims else "")

    def as_api(self) -> dict:
        return {"Namespace": self.namespace, "MetricName": self.name, "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions]}

    @classmethod
    def from_api(cls, metric: dict) -> "Metric":
        return cls(metric["Namespace"], metric["MetricName"], tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))


@dataclass(frozen=True)
class MetricStat:
    """One line of a graph: a metric, the statistic and period to aggregate it with, how to show it."""

    metric: Metric
    stat: str
    period: int
    label: str | None = None
    color: str | None = None
    visible: bool = True  # hidden lines feed metric math; they are referenced, not drawn


@dataclass(frozen=True)
class Unsupported:
    """An entry this renderer cannot evaluate (metric math other than SEARCH, shorthand entries)."""

    text: str
    reason: str


@dataclass
class Series:
    line: MetricStat
    timestamps: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return bool(self.values)

    @property
    def latest(self) -> float | None:
        return self.values[-1] if self.values else None


# --- SEARCH --------------------------------------------------------------------------------------

_SEARCH = re.compile(r"^\s*SEARCH\(\s*'(?P<query>(?:[^'\\]|\\.)*)'\s*,\s*'(?P<stat>[^']+)'\s*(?:,\s*(?P<period>\d+)\s*)?\)\s*$", re.S)
_SCHEMA = re.compile(r"^\s*\{(?P<schema>[^}]*)\}(?P<rest>.*)$", re.S)
_TOKEN = re.compile(r'\s*(?:(?P<quoted>"[^"]*")|(?P<paren>[()])|(?P<equals>=)|(?P<word>[^\s()="]+))')
_WORD_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def _parts(text: str) -> set[str]:
    """Partial-match tokens: split on anything not alphanumeric and at camelCase boundaries, any case."""
    return {p.lower() for p in _WORD_PART.findall(text)} | {text.lower()}


@dataclass(frozen=True)
class Term:
    """`value`, `"exact value"`, `Designator=value` or `Designator="exact value"`."""

    value: str
    exact: bool
    designator: str | None = None

    def matches(self, metric: Metric) -> bool:
        if self.designator == "MetricName":
            candidates = [metric.name]
        elif self.designator == "Namespace":
            candidates = [metric.namespace]
        elif self.designator is not None:
            candidates = [v for k, v in metric.dimensions if k == self.designator]
        else:
            candidates = [metric.namespace, metric.name, *(k for k, _ in metric.dimensions), *(v for _, v in metric.dimensions)]
        if self.exact:
            return self.value in candidates
        wanted = {p.lower() for p in _WORD_PART.findall(self.value)} or {self.value.lower()}
        return any(wanted <= _parts(c) for c in candidates)


@dataclass(frozen=True)
class Condition:
    """A boolean tree of terms: op is "term", "and", "or" or "not"."""

    op: str
    term: Term | None = None
    children: tuple["Condition", ...] = ()

    def matches(self, metric: Metric) -> bool:
        if self.op == "term":
            return self.term.matches(metric)
        if self.op == "not":
            return not self.children[0].matches(metric)
        results = (c.matches(metric) for c in self.children)
        return all(results) if self.op == "and" else any(results)


class _TermParser:
    """SearchTerm grammar: or := and (OR and)*; and := not ([AND] not)*; not := NOT not | ( or ) | term."""

    def __init__(self, text: str, expression: str):
        self.expression = expression
        self.tokens: list[tuple[str, str]] = []
        position = 0
        text = text.strip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:
                raise ValueError(f"cannot read the search term at {text[position:]!r} in {expression}")
            self.tokens.append((match.lastgroup, match.group(match.lastgroup)))
            position = match.end()
        self.position = 0

    def parse(self) -> Condition:
        if not self.tokens:
            return Condition("and")  # no search term: the schema alone decides
        condition = self._or()
        if self.position != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.position][1]!r} in {self.expression}")
        return condition

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token == ("word", word):
            self.position += 1
            return True
        return False

    def _or(self) -> Condition:
        children = [self._and()]
        while self._keyword("OR"):
            children.append(self._and())
        return children[0] if len(children) == 1 else Condition("or", children=tuple(children))

    def _and(self) -> Condition:
        children = [self._not()]
        while True:
            token = self._peek()
            if token is None or token == ("paren", ")") or token == ("word", "OR"):
                break
            self._keyword("AND")
            children.append(self._not())
        return children[0] if len(children) == 1 else Condition("and", children=tuple(children))

    def _not(self) -> Condition:
        if self._keyword("NOT"):
            return Condition("not", children=(self._not(),))
        token = self._peek()
        if token == ("paren", "("):
            self.position += 1
            inner = self._or()
            if self._peek() != ("paren", ")"):
                raise ValueError(f"missing ')' in {self.expression}")
            self.position += 1
            return inner
        return Condition("term", term=self._term())

    def _term(self) -> Term:
        token = self._peek()
        if token is None or token[0] not in ("word", "quoted"):
            raise ValueError(f"expected a search term in {self.expression}")
        self.position += 1
        designator = None
        if token[0] == "word" and self._peek() == ("equals", "="):
            designator = token[1]
            self.position += 1
            token = self._peek()
            if token is None or token[0] not in ("word", "quoted"):
                raise ValueError(f"{designator}= needs a value in {self.expression}")
            self.position += 1
        if token[0] == "quoted":
            return Term(token[1][1:-1], exact=True, designator=designator)
        return Term(token[1], exact=False, designator=designator)


def _schema_names(schema: str) -> list[str]:
    return [name.strip().strip('"') for name in re.findall(r'"[^"]*"|[^,]+', schema) if name.strip()]


@dataclass(frozen=True)
class Search:
    """`SEARCH('{Namespace,Dim1,Dim2} term ...', 'Stat', Period)`: the metrics it finds, each one a line.

    With a schema, a metric matches only in that namespace and with exactly those dimension names;
    search terms are exact (double quotes) or partial (word parts, any case), with designators
    (MetricName=, Namespace=, a dimension name) and AND / OR / NOT / parentheses.
    """

    expression: str
    namespace: str | None
    dimension_names: frozenset[str] | None
    condition: Condition
    stat: str
    period: int
    label: str | None = None
    color: str | None = None
    visible: bool = True

    @classmethod
    def parse(cls, expression: str, *, default_period: int = DEFAULT_PERIOD_SECONDS, label: str | None = None,
              color: str | None = None, visible: bool = True) -> "Search":
        match = _SEARCH.match(expression)
        if match is None:
            raise ValueError(f"not a SEARCH expression: {expression}")
        query = match.group("query").replace("\\'", "'")
        namespace, dimension_names = None, None
        schema = _SCHEMA.match(query)
        if schema:
            names = _schema_names(schema.group("schema"))
            if not names:
                raise ValueError(f"the metric schema needs a namespace: {expression}")
            namespace, dimension_names = names[0], frozenset(names[1:])
            query = schema.group("rest")
        condition = _TermParser(query, expression).parse()
        if namespace is None and not condition.children and condition.op == "and":
            raise ValueError(f"a SEARCH needs a metric schema, a search term or both: {expression}")
        period = int(match.group("period")) if match.group("period") else default_period
        return cls(expression, namespace, dimension_names, condition, match.group("stat"), period, label, color, visible)

    @property
    def metric_name(self) -> str | None:
        """The metric name when the search pins one exactly (MetricName="X", alone or AND-ed at the top)."""
        top = self.condition.children if self.condition.op == "and" else (self.condition,)
        pinned = [c.term.value for c in top if c.op == "term" and c.term.designator == "MetricName" and c.term.exact]
        return pinned[0] if pinned else None

    def matches(self, metric: Metric) -> bool:
        if self.namespace is not None:
            if metric.namespace != self.namespace or {k for k, _ in metric.dimensions} != self.dimension_names:
                return False
        return self.condition.matches(metric)

    def describe(self) -> str:
        return self.expression


def list_metrics(cloudwatch, *, namespace: str | None = None, metric_name: str | None = None) -> list[Metric]:
    """Every metric ListMetrics knows, each once (a metric may be listed once per datapoint by old mocks)."""
    request = {k: v for k, v in (("Namespace", namespace), ("MetricName", metric_name)) if v}
    found: dict[tuple, Metric] = {}
    while True:
        response = cloudwatch.list_metrics(**request)
        for item in response.get("Metrics", []):
            metric = Metric.from_api(item)
            found.setdefault(metric.key, metric)
        if not response.get("NextToken"):
            return sorted(found.values(), key=lambda m: (m.namespace, m.name, m.dimensions))
        request["NextToken"] = response["NextToken"]


def expand(cloudwatch, search: Search) -> list[MetricStat]:
    """The lines a SEARCH stands for: each matching metric with the search's stat and period."""
    metrics = [m for m in list_metrics(cloudwatch, namespace=search.namespace, metric_name=search.metric_name) if search.matches(m)]
    lines = []
    for metric in metrics:
        values = " ".join(v for _, v in sorted(metric.dimensions)) or metric.name
        # CloudWatch labels a search's lines by their dimension values, after the expression's label.
        label = f"{search.label} {values}" if search.label else values
        lines.append(MetricStat(metric, search.stat, search.period, label, search.color if not lines else None))
    return lines


# --- dashboard entries --------------------------------------------------------------------------

def parse_entry(entry: Sequence, *, stat: str, period: int) -> MetricStat | Search | Unsupported:
    """One element of a metric widget's `metrics`."""
    entry = list(entry)
    options = entry.pop() if entry and isinstance(entry[-1], dict) else {}
    visible = options.get("visible", True) is not False
    if not entry:
        expression = options.get("expression")
        if expression is None:
            return Unsupported(str(options), "an entry needs a metric or an expression")
        if expression.lstrip().startswith("SEARCH("):
            return Search.parse(expression, default_period=int(options.get("period", period)), label=options.get("label"),
                                color=options.get("color"), visible=visible)
        return Unsupported(expression, "metric math other than SEARCH is not evaluated")
    if any(part in (".", "...") for part in entry):
        return Unsupported(" ".join(map(str, entry)), 'the "." and "..." shorthand is not supported')
    if len(entry) < 2 or len(entry) % 2:
        return Unsupported(" ".join(map(str, entry)), "expected [namespace, name, dimension, value, ...]")
    namespace, name, *pairs = entry
    metric = Metric(namespace, name, tuple(zip(pairs[0::2], pairs[1::2])))
    return MetricStat(metric, options.get("stat", stat), int(options.get("period", period)), options.get("label"), options.get("color"),
                      visible)


def widget_entries(properties: dict) -> list[MetricStat | Search | Unsupported]:
    """A metric widget's entries (hidden ones too), with the widget's stat and period as defaults."""
    stat = properties.get("stat", DEFAULT_STAT)
    period = int(properties.get("period", DEFAULT_PERIOD_SECONDS))
    return [parse_entry(e, stat=stat, period=period) for e in properties.get("metrics", [])]


def _short(value: str) -> str:
    """An ARN's resource name (arn:...:stateMachine:Name -> Name): the rest repeats on every line."""
    return value.rsplit(":", 1)[-1].rsplit("/", 1)[-1] if value.startswith("arn:") else value


def default_labels(lines: Sequence[MetricStat]) -> list[MetricStat]:
    """Unlabelled lines get what tells them apart in this widget: the metric name, dimension values, stat."""
    names = {line.metric.name for line in lines}
    dims = {line.metric.dimensions for line in lines}
    stats = {line.stat for line in lines}
    labelled = []
    for line in lines:
        if line.label:
            labelled.append(line)
            continue
        parts = []
        if len(dims) > 1:
            parts.append(" ".join(_short(v) for _, v in line.metric.dimensions))
        if len(names) > 1 or not parts:
            parts.append(line.metric.name)
        if len(stats) > 1:
            parts.append(line.stat)
        labelled.append(replace(line, label=" ".join(p for p in parts if p)))
    return labelled


# --- fetching ----------------------------------------------------------------------------------

def fetch(cloudwatch, lines: Iterable[MetricStat], start: datetime, end: datetime) -> list[Series]:
    """GetMetricData for every line (500 queries a call, every page), oldest datapoint first."""
    lines = list(lines)
    series = [Series(line) for line in lines]
    for offset in range(0, len(lines), GET_METRIC_DATA_LIMIT):
        chunk = lines[offset : offset + GET_METRIC_DATA_LIMIT]
        queries = [
            {"Id": f"m{offset + i}", "MetricStat": {"Metric": line.metric.as_api(), "Period": line.period, "Stat": line.stat}, "ReturnData": True}
            for i, line in enumerate(chunk)
        ]
        request = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending"}
        while True:
            response = cloudwatch.get_metric_data(**request)
            for result in response.get("MetricDataResults", []):
                target = series[int(result["Id"][1:])]
                target.timestamps += result.get("Timestamps", [])
                target.values += [float(v) for v in result.get("Values", [])]
            if not response.get("NextToken"):
                break
            request["NextToken"] = response["NextToken"]
    for s in series:
        pairs = sorted(zip(s.timestamps, s.values))
        s.timestamps, s.values = [t for t, _ in pairs], [v for _, v in pairs]
    return series
