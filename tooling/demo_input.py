"""The demo's own input: a bar CSV checked in full before anything is deployed.

`make demo DEMO_ARGS="--csv my-bars.csv"` streams the file's rows as market bars. Every row is
checked here first, with the platform's own bar model (patternwatch_shared.models.Bar), so a row
this module accepts is a record the stream consumer accepts, and every problem is reported at once
as `file:line: column <name>: <what is wrong>` instead of as a traceback after a minute of deploying.

Columns: symbol,date,open,high,low,close,volume (a header line is required; other columns are
ignored and listed). `date` is YYYY-MM-DD (midnight UTC) or epoch seconds. Numbers are streamed
exactly as written.
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from patternwatch_shared.models import Bar

COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")
NUMERIC_COLUMNS = ("open", "high", "low", "close", "volume")
# The bar model's field `timestamp` comes from the CSV column `date`.
MODEL_FIELD_COLUMNS = {"timestamp": "date"}
MAX_PROBLEMS_SHOWN = 50
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EPOCH = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, where it is."""

    path: Path
    message: str
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: column {self.column}: {self.message}" if self.column else f"{where}: {self.message}"


class InvalidInput(Exception):
    """The CSV has problems; nothing was deployed or streamed."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(report(problems))


@dataclass
class CsvBars:
    """The bars of a checked CSV, as stream records, and the line each came from."""

    path: Path
    bars: list[dict[str, Any]]
    lines: dict[tuple[str, int], int] = field(default_factory=dict)  # (symbol, timestamp) -> line
    ignored_columns: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """The file, and the columns it has that are not streamed."""
        ignored = f" (ignored columns: {', '.join(self.ignored_columns)})" if self.ignored_columns else ""
        return f"{self.path}{ignored}"


def describe_bars(bars: list[dict[str, Any]], source: str) -> str:
    """What is streamed, in one line: how many bars, of which symbols, from where, over which days."""
    if not bars:
        return f"no bars from {source}"
    per_symbol = Counter(bar["symbol"] for bar in bars)
    days = sorted(bar["timestamp"] for bar in bars)
    span = " to ".join(datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d") for t in (days[0], days[-1]))
    symbols = ", ".join(f"{symbol} {count:,}" for symbol, count in sorted(per_symbol.items()))
    return f"{len(bars):,} bars of {len(per_symbol)} symbol(s) from {source}, {span}: {symbols}"


def report(problems: list[Problem]) -> str:
    shown = [str(problem) for problem in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        shown.append(f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    return "\n".join(shown)


def read_csv_bars(path: Path) -> CsvBars:
    """Every row of `path` as a stream record; InvalidInput listing every problem if there is any."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not part of the header
    except FileNotFoundError:
        raise InvalidInput([Problem(path, "no such file")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput([Problem(path, f"cannot be read as UTF-8 text ({error.__class__.__name__})")]) from None
    if not text.strip():
        raise InvalidInput([Problem(path, f"the file is empty: expected a header line {','.join(COLUMNS)} and one bar per line")])

    reader = csv.reader(text.splitlines())
    header = [name.strip() for name in next(reader)]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise InvalidInput(
            [Problem(path, f"missing column(s) {', '.join(missing)}; the header must name {','.join(COLUMNS)}", line=1)]
        )
    repeated = sorted(name for name, count in Counter(header).items() if count > 1 and name in COLUMNS)
    if repeated:
        raise InvalidInput([Problem(path, f"column(s) {', '.join(repeated)} appear more than once in the header", line=1)])

    bars = CsvBars(path, [], ignored_columns=tuple(name for name in header if name not in COLUMNS))
    problems: list[Problem] = []
    for line, fields in enumerate(reader, start=2):
        if not any(value.strip() for value in fields):
            continue  # blank line
        if len(fields) != len(header):
            problems.append(Problem(path, f"expected {len(header)} fields like the header, found {len(fields)}", line=line))
            continue
        row = dict(zip(header, (value.strip() for value in fields)))
        bar, row_problems = _bar_from_row(path, line, row)
        problems.extend(row_problems)
        if bar is not None:
            key = (bar["symbol"], bar["timestamp"])
            if key in bars.lines:
                problems.append(Problem(path, f"a second bar for {key[0]} at this date (first on line {bars.lines[key]})", line=line, column="date"))
                continue
            bars.bars.append(bar)
            bars.lines[key] = line
    if problems:
        raise InvalidInput(problems)
    if not bars.bars:
        raise InvalidInput([Problem(path, "no bars: the file has a header but no rows")])
    return bars


def _bar_from_row(path: Path, line: int, row: dict[str, str]) -> tuple[dict[str, Any] | None, list[Problem]]:
    problems: list[Problem] = []
    bar: dict[str, Any] = {"symbol": row["symbol"]}
    timestamp = _timestamp(row["date"])
    if timestamp is None:
        problems.append(Problem(path, f"{row['date'][:40]!r} is neither YYYY-MM-DD nor epoch seconds", line=line, column="date"))
    bar["timestamp"] = timestamp
    for name in NUMERIC_COLUMNS:
        try:
            bar[name] = float(row[name])
        except ValueError:
            problems.append(Problem(path, f"{row[name][:40]!r} is not a number", line=line, column=name))
    if problems:
        return None, problems
    try:
        Bar.model_validate(bar)
    except ValidationError as error:
        return None, [_problem_from(path, line, item) for item in error.errors(include_url=False, include_input=False)]
    return bar, []


def _timestamp(text: str) -> int | None:
    if _EPOCH.fullmatch(text):
        return int(text)
    if _ISO_DAY.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None
        return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())
    return None


def _problem_from(path: Path, line: int, error: dict[str, Any]) -> Problem:
    """A pydantic error as a Problem; the model's own rules ("high 9.0 is below low 9.5") name their
    column first."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["loc"]:
        field_name = str(error["loc"][0])
        column = MODEL_FIELD_COLUMNS.get(field_name, field_name)
    else:
        first_word = message.split(" ", 1)[0]
        column = first_word if first_word in COLUMNS else None
    return Problem(path, message, line=line, column=column)
