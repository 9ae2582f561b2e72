"""The demo's CSV input: every problem reported with file, line and column, before anything is deployed."""
from __future__ import annotations

from pathlib import Path

import pytest

from tooling import demo, demo_input
from tooling.demo_input import InvalidInput, read_csv_bars

HEADER = "symbol,date,open,high,low,close,volume"
GOOD_ROWS = ["AAPL,2024-01-02,10,11,9,10.5,1000", "AAPL,2024-01-03,10.5,12,10,11.5,2000", "MSFT,1704240000,300,310,295,305,500"]


def write(tmp_path: Path, *lines: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        read_csv_bars(path)
    return [str(problem) for problem in caught.value.problems]


def test_a_good_file_becomes_stream_records_with_their_lines(tmp_path):
    path = write(tmp_path, HEADER, *GOOD_ROWS)
    bars = read_csv_bars(path)
    assert bars.bars[0] == {"symbol": "AAPL", "timestamp": 1704153600, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 1000.0}
    assert bars.bars[2]["timestamp"] == 1704240000  # epoch seconds as given
    assert bars.lines == {("AAPL", 1704153600): 2, ("AAPL", 1704240000): 3, ("MSFT", 1704240000): 4}
    assert demo_input.describe_bars(bars.bars, bars.source) == (
        f"3 bars of 2 symbol(s) from {path}, 2024-01-02 to 2024-01-03: AAPL 2, MSFT 1"
    )


def test_columns_in_any_order_extra_columns_ignored_and_named_blank_lines_skipped(tmp_path):
    path = write(tmp_path, "date,volume,symbol,adj_close,low,high,open,close", "2024-01-02,1000,AAPL,10.4,9,11,10,10.5", "", "  ")
    bars = read_csv_bars(path)
    assert bars.bars == [{"symbol": "AAPL", "timestamp": 1704153600, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 1000.0}]
    assert bars.source == f"{path} (ignored columns: adj_close)"


def test_a_spreadsheets_byte_order_mark_is_not_part_of_the_header(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("\ufeff" + "\n".join([HEADER, GOOD_ROWS[0]]), encoding="utf-8")
    assert len(read_csv_bars(path).bars) == 1


def test_a_missing_column_is_named_on_the_header_line(tmp_path):
    path = write(tmp_path, "symbol,date,open,high,low,close", "AAPL,2024-01-02,10,11,9,10.5")
    assert problems(path) == [f"{path}:1: missing column(s) volume; the header must name {HEADER}"]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([], "the file is empty: expected a header line symbol,date,open,high,low,close,volume and one bar per line"),
        (["", "   "], "the file is empty"),
        ([HEADER], "no bars: the file has a header but no rows"),
    ],
)
def test_an_empty_file_or_one_without_rows_is_a_problem(tmp_path, lines, expected):
    path = write(tmp_path, *lines)
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: {expected}")


def test_every_bad_row_is_reported_with_its_line_and_column_at_once(tmp_path):
    path = write(
        tmp_path,
        HEADER,
        GOOD_ROWS[0],
        "AAPL,2024-01-03,ten,11,9,10.5,1000",  # line 3: non-numeric price
        "AAPL,2024-01-04,10,9,9.5,9.2,1000",  # line 4: high < low
        "AAPL,yesterday,10,11,9,10.5,1000",  # line 5: bad date
        "AAPL,2024-02-30,10,11,9,10.5,1000",  # line 6: no such day
        "aapl,2024-01-05,10,11,9,10.5,1000",  # line 7: symbol
        "AAPL,2024-01-06,10,11,9,10.5,-5",  # line 8: negative volume
        "AAPL,2024-01-07,10,11,9,10.5",  # line 9: a field short
        "AAPL,2024-01-08,1e200,1e200,1e200,1e200,1",  # line 10: beyond what DynamoDB stores
        "AAPL,2024-01-09,nan,11,9,10.5,1000",  # line 11: not finite
        "AAPL,1999-12-31,10,11,9,10.5,1000",  # line 12: before 2000
        "AAPL,2024-01-02,10,11,9,10.5,1000",  # line 13: the same bar as line 2
    )
    found = problems(path)
    expected_starts = [
        f"{path}:3: column open: 'ten' is not a number",
        f"{path}:4: column high: high 9.0 is below low 9.5",
        f"{path}:5: column date: 'yesterday' is neither YYYY-MM-DD nor epoch seconds",
        f"{path}:6: column date: '2024-02-30' is neither YYYY-MM-DD nor epoch seconds",
        f"{path}:7: column symbol: String should match pattern",
        f"{path}:8: column volume: Input should be greater than or equal to 0",
        f"{path}:9: expected 7 fields like the header, found 6",
        f"{path}:10: column open: 1e+200 is outside the range DynamoDB can store",
        f"{path}:11: column open: Input should be a finite number",
        f"{path}:12: column date: Input should be greater than or equal to 946684800",
        f"{path}:13: column date: a second bar for AAPL at this date (first on line 2)",
    ]
    assert len(found) == len(expected_starts) + 3  # line 10's other three prices are named too
    remaining = list(found)
    for start in expected_starts:
        match = next(problem for problem in remaining if problem.startswith(start))
        remaining.remove(match)
    assert all(problem.startswith(f"{path}:10: column ") for problem in remaining)


def test_the_report_is_capped_and_says_how_many_more(tmp_path):
    path = write(tmp_path, HEADER, *[f"AAPL,2024-01-02,x{i},11,9,10.5,1000" for i in range(60)])
    with pytest.raises(InvalidInput) as caught:
        read_csv_bars(path)
    text = str(caught.value)
    assert len(caught.value.problems) == 60
    assert text.count("is not a number") == demo_input.MAX_PROBLEMS_SHOWN and text.endswith("... and 10 more")


def test_a_missing_or_unreadable_file_is_a_problem_not_a_traceback(tmp_path):
    assert problems(tmp_path / "nope.csv") == [f"{tmp_path / 'nope.csv'}: no such file"]
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00symbol")
    assert problems(binary) == [f"{binary}: cannot be read as UTF-8 text (UnicodeDecodeError)"]


# --- demo.main: the check comes first, and SYNTH only without --csv (or with --with-synthetic) -----

class Deployed(Exception):
    """Stands in for local_platform.deploy: the demo got as far as deploying."""


@pytest.fixture
def no_deploy(monkeypatch):
    def deploy(**kwargs):
        raise Deployed

    monkeypatch.setattr(demo.local_platform, "deploy", deploy)
    synthetic_calls = []
    monkeypatch.setattr(demo, "planted_bars", lambda: synthetic_calls.append(1) or [])
    return synthetic_calls


def test_a_bad_csv_stops_the_demo_before_it_deploys_anything(tmp_path, no_deploy, capsys):
    path = write(tmp_path, "symbol,date,open,high,low,close", "AAPL,2024-01-02,10,11,9,10.5")
    assert demo.main(["--csv", str(path)]) == 2
    err = capsys.readouterr().err
    assert "nothing was deployed" in err and f"{path}:1: missing column(s) volume" in err


@pytest.mark.parametrize(("extra", "synthetic"), [([], False), (["--with-synthetic"], True)])
def test_a_good_csv_goes_on_to_deploy_with_the_synthetic_series_only_when_asked(tmp_path, no_deploy, extra, synthetic):
    path = write(tmp_path, HEADER, *GOOD_ROWS)
    with pytest.raises(Deployed):
        demo.main(["--csv", str(path), *extra])
    assert bool(no_deploy) is synthetic
