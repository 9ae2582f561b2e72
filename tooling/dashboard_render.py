"""`make dashboard`: the deployed CloudWatch dashboard, drawn from the emulator's metrics into one PNG.

Usage: python -m tooling.dashboard_render [--hours 3 | --start ISO --end ISO] [--output demo-output/dashboard.png]

The body is the one Terraform put on the emulator, read back with GetDashboard (so every Terraform
reference is resolved). Each widget is drawn at its x/y/width/height on CloudWatch's 24-column grid
(COLUMN_PX x ROW_PX pixels a cell, under a header line naming the dashboard and the time range):

- text: the markdown (headings, paragraphs, bullets);
- metric, by view: timeSeries (lines, or stacked areas), bar (one bar a metric), pie, singleValue; bar,
  pie and singleValue show each metric's latest datapoint, or one value over the whole time range when
  `setPeriodToTimeRange` is set, as the console does; per-metric stat/period/label/color override the
  widget's stat and period; SEARCH(...) is expanded with ListMetrics (tooling/cloudwatch_metrics.py);
- alarm: each alarm's name and current state (DescribeAlarms), coloured by state.

A widget, or a line, without data says "no data". Data comes from GetMetricData; percentiles (p50, p99)
need the emulator's CloudWatch extension (tooling/moto_cloudwatch.py), which `make emulator-start` loads.
`render` returns a RenderReport: per widget its kind, title, lines found and whether they have data.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .cloudwatch_metrics import MetricStat, Search, Series, Unsupported, default_labels, expand, fetch, widget_entries
from .metric_references import (
    DEFAULT_HOURS, deployed_names, emulator_cloudwatch, platform_now, read_dashboard, time_range, whole_range_period,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = PROJECT_ROOT / "demo-output" / "dashboard.png"
GRID_COLUMNS = 24
COLUMN_PX = 80  # the 24 columns make a 1920-pixel-wide image
ROW_PX = 50
HEADER_PX = 40
DPI = 100
GAP_PX = 4
TITLE_PX = 26
NO_DATA = "no data"
BACKGROUND = "#f2f3f3"
PANEL_EDGE = "#d5dbdb"
STATE_COLOURS = {"OK": "#1d8102", "ALARM": "#d13212", "INSUFFICIENT_DATA": "#879596"}
UNKNOWN_STATE_COLOUR = "#545b64"
SINGLE_VALUE_VIEWS = ("singleValue", "bar", "pie")


@dataclass
class LineReport:
    label: str
    metric: str  # namespace, name and dimensions
    stat: str
    period: int
    datapoints: int
    value: float | None  # what a bar, pie or single value shows: the latest datapoint (or the range's value)

    @property
    def has_data(self) -> bool:
        return self.datapoints > 0


@dataclass
class AlarmReport:
    name: str
    state: str  # OK, ALARM, INSUFFICIENT_DATA, or NOT FOUND
    updated: datetime | None = None


@dataclass
class WidgetReport:
    kind: str  # text, metric, alarm
    title: str
    x: int
    y: int
    width: int
    height: int
    view: str | None = None
    lines: list[LineReport] = field(default_factory=list)
    alarms: list[AlarmReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be drawn, and why
    drawn_title: str = ""  # the text of the title as drawn in the image

    @property
    def has_data(self) -> bool:
        if self.kind == "metric":
            return any(line.has_data for line in self.lines)
        if self.kind == "alarm":
            return any(a.state != "NOT FOUND" for a in self.alarms)
        return True


@dataclass
class RenderReport:
    dashboard: str
    path: Path
    start: datetime
    end: datetime
    width_px: int
    height_px: int
    widgets: list[WidgetReport]

    def widget(self, title: str) -> WidgetReport:
        matches = [w for w in self.widgets if w.title == title]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} widgets titled {title!r}")
        return matches[0]

    @property
    def without_data(self) -> list[WidgetReport]:
        return [w for w in self.widgets if not w.has_data]

    def summary(self) -> str:
        metric_widgets = [w for w in self.widgets if w.kind == "metric"]
        missing = [w.title for w in metric_widgets if not w.has_data]
        return (f"{self.path} ({self.width_px}x{self.height_px} px, {len(self.widgets)} widgets, "
                f"{len(metric_widgets) - len(missing)}/{len(metric_widgets)} metric widgets with data"
                + (f"; no data: {', '.join(missing)}" if missing else "") + ")")

    def as_json(self) -> dict:
        return {
            "dashboard": self.dashboard, "path": str(self.path), "start": self.start.isoformat(), "end": self.end.isoformat(),
            "width_px": self.width_px, "height_px": self.height_px,
            "widgets": [{**{k: v for k, v in vars(w).items() if k not in ("lines", "alarms")}, "has_data": w.has_data,
                         "lines": [{**vars(line), "has_data": line.has_data} for line in w.lines],
                         "alarms": [vars(a) for a in w.alarms]} for w in self.widgets],
        }


def image_size(body: dict) -> tuple[int, int]:
    rows = max((w.get("y", 0) + w.get("height", 6) for w in body.get("widgets", [])), default=0)
    return GRID_COLUMNS * COLUMN_PX, HEADER_PX + rows * ROW_PX


class _Canvas:
    """Pixel geometry: widget grid cells to matplotlib figure fractions (origin bottom left)."""

    def __init__(self, figure, width_px: int, height_px: int):
        self.figure, self.width_px, self.height_px = figure, width_px, height_px

    def box(self, left_px: float, top_px: float, width_px: float, height_px: float) -> list[float]:
        return [left_px / self.width_px, 1 - (top_px + height_px) / self.height_px, width_px / self.width_px, height_px / self.height_px]

    def axes(self, left_px: float, top_px: float, width_px: float, height_px: float, **kwargs):
        return self.figure.add_axes(self.box(left_px, top_px, max(width_px, 1), max(height_px, 1)), **kwargs)

    def text(self, left_px: float, top_px: float, text: str, **kwargs):
        return self.figure.text(left_px / self.width_px, 1 - top_px / self.height_px, text, **{"va": "top", **kwargs})

    def rectangle(self, left_px: float, top_px: float, width_px: float, height_px: float, **style) -> None:
        from matplotlib.patches import Rectangle

        left, bottom, width, height = self.box(left_px, top_px, width_px, height_px)
        self.figure.patches.append(Rectangle((left, bottom), width, height, transform=self.figure.transFigure, **style))


@dataclass
class _Panel:
    """One widget's rectangle in pixels, inside its grid cells."""

    left: float
    top: float
    width: float
    height: float

    @classmethod
    def of(cls, widget: dict) -> "_Panel":
        return cls(widget.get("x", 0) * COLUMN_PX + GAP_PX, HEADER_PX + widget.get("y", 0) * ROW_PX + GAP_PX,
                   widget.get("width", 6) * COLUMN_PX - 2 * GAP_PX, widget.get("height", 6) * ROW_PX - 2 * GAP_PX)

    @property
    def body(self) -> "_Panel":
        return _Panel(self.left + 8, self.top + TITLE_PX, self.width - 16, self.height - TITLE_PX - 6)


def format_value(value: float | None) -> str:
    if value is None:
        return "–"
    magnitude = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"


def render(cloudwatch, body: dict, path: Path, *, start: datetime, end: datetime, dashboard_name: str = "") -> RenderReport:
    """Draw every widget of `body` from CloudWatch's data in [start, end) into one PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width_px, height_px = image_size(body)
    figure = plt.figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor=BACKGROUND)
    canvas = _Canvas(figure, width_px, height_px)
    canvas.text(GAP_PX + 8, 10, f"{dashboard_name or 'dashboard'}   {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC",
                fontsize=13, weight="bold", color="#16191f")
    reports = []
    for widget in body.get("widgets", []):
        panel = _Panel.of(widget)
        canvas.rectangle(panel.left, panel.top, panel.width, panel.height, facecolor="white", edgecolor=PANEL_EDGE, linewidth=1, zorder=-1)
        kind = widget.get("type", "?")
        properties = widget.get("properties", {})
        report = WidgetReport(kind, "", widget.get("x", 0), widget.get("y", 0), widget.get("width", 6), widget.get("height", 6),
                              view=properties.get("view", "timeSeries") if kind == "metric" else None)
        if kind == "text":
            _draw_text(canvas, panel, properties.get("markdown", ""), report)
        elif kind == "metric":
            _draw_metric(canvas, panel, cloudwatch, properties, start, end, report)
        elif kind == "alarm":
            _draw_alarms(canvas, panel, cloudwatch, properties, report)
        else:
            _title(canvas, panel, properties.get("title", kind), report)
            _note(canvas, panel, report, f"widget type {kind!r} is not drawn")
        reports.append(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, facecolor=BACKGROUND)
    plt.close(figure)
    return RenderReport(dashboard_name, path, start, end, width_px, height_px, reports)


def _title(canvas: _Canvas, panel: _Panel, title: str, report: WidgetReport) -> None:
    artist = canvas.text(panel.left + 8, panel.top + 6, title, fontsize=10.5, weight="bold", color="#16191f")
    report.title, report.drawn_title = title, artist.get_text()


def _note(canvas: _Canvas, panel: _Panel, report: WidgetReport, note: str, *, colour: str = "#d13212") -> None:
    report.notes.append(note)
    canvas.text(panel.left + 8, panel.top + panel.height - 8 - 14 * len(report.notes), note, fontsize=8, color=colour)


def _no_data(canvas: _Canvas, panel: _Panel, text: str = NO_DATA) -> None:
    body = panel.body
    canvas.text(body.left + body.width / 2, body.top + body.height / 2, text, ha="center", va="center", fontsize=14, style="italic",
                color="#879596")


# --- text ---------------------------------------------------------------------------------------------

_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def _plain(markdown_line: str) -> str:
    return _LINK.sub(r"\1", markdown_line).replace("**", "").replace("__", "").replace("`", "")


def _draw_text(canvas: _Canvas, panel: _Panel, markdown: str, report: WidgetReport) -> None:
    """Headings, paragraphs and bullets; CloudWatch text widgets have no title, so the first line is one."""
    top = panel.top + 6
    lines = [line.rstrip() for line in markdown.splitlines()]
    for number, line in enumerate(lines):
        if top > panel.top + panel.height - 16:  # the widget is full: CloudWatch would scroll
            canvas.text(panel.left + panel.width - 20, panel.top + panel.height - 18, "…", fontsize=10, color="#545b64")
            report.notes.append(f"markdown cut: {len(lines) - number} more lines do not fit")
            break
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if heading:
            size = {1: 16, 2: 13}.get(len(heading.group(1)), 11)
            artist = canvas.text(panel.left + 8, top, _plain(heading.group(2)), fontsize=size, weight="bold", color="#16191f")
            top += size * 1.9
        elif line.strip():
            bullet = re.match(r"^\s*[-*+]\s+(.*)$", line)
            text = f"•  {_plain(bullet.group(1))}" if bullet else _plain(line)
            artist = canvas.text(panel.left + (20 if bullet else 8), top, text, fontsize=10, color="#16191f")
            top += 18
        else:
            top += 8
            continue
        if not report.title:
            report.title, report.drawn_title = artist.get_text(), artist.get_text()


# --- metric -------------------------------------------------------------------------------------------

def _lines_of(cloudwatch, properties: dict, start: datetime, end: datetime) -> tuple[list[MetricStat], list[str]]:
    """The widget's visible lines, SEARCH expanded, with the whole range as period where the widget asks;
    and what could not be drawn."""
    lines: list[MetricStat] = []
    notes: list[str] = []
    for entry in widget_entries(properties):
        if isinstance(entry, Unsupported):
            notes.append(f"not drawn: {entry.text} ({entry.reason})")
        elif not entry.visible:
            continue
        elif isinstance(entry, Search):
            found = expand(cloudwatch, entry)
            if not found:
                notes.append(f"SEARCH found no metric: {entry.expression}")
            lines += found
        else:
            lines.append(entry)
    if properties.get("setPeriodToTimeRange") and properties.get("view") in SINGLE_VALUE_VIEWS:
        period = whole_range_period(start, end)
        lines = [replace(line, period=period) for line in lines]
    return default_labels(lines), notes


def _draw_metric(canvas: _Canvas, panel: _Panel, cloudwatch, properties: dict, start: datetime, end: datetime, report: WidgetReport) -> None:
    _title(canvas, panel, properties.get("title", "(untitled)"), report)
    try:
        lines, notes = _lines_of(cloudwatch, properties, start, end)
        series = fetch(cloudwatch, lines, start, end)
    except Exception as error:  # one widget's failure (a call the emulator cannot answer) must not hide the others
        _note(canvas, panel, report, f"error: {error}")
        _no_data(canvas, panel)
        return
    report.lines = [LineReport(s.line.label, s.line.metric.describe(), s.line.stat, s.line.period, len(s.values), s.latest) for s in series]
    for note in notes:
        _note(canvas, panel, report, note, colour="#545b64")
    if not any(s.has_data for s in series):
        _no_data(canvas, panel)
        return
    view = report.view
    if view == "singleValue":
        _draw_single_values(canvas, panel, series)
    elif view == "bar":
        _draw_bars(canvas, panel, series)
    elif view == "pie":
        _draw_pie(canvas, panel, series)
    else:
        _draw_time_series(canvas, panel, series, start, end, stacked=bool(properties.get("stacked")))


def _colours(series: list[Series]) -> list:
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab10")
    return [s.line.color or palette(i % 10) for i, s in enumerate(series)]


def _legend_label(s: Series) -> str:
    return s.line.label if s.has_data else f"{s.line.label} ({NO_DATA})"


def _draw_time_series(canvas: _Canvas, panel: _Panel, series: list[Series], start: datetime, end: datetime, *, stacked: bool) -> None:
    import matplotlib.dates as mdates

    body = panel.body
    legend_px = min(260, body.width * 0.3)
    axes = canvas.axes(body.left + 44, body.top + 4, body.width - 44 - legend_px, body.height - 26)
    colours = _colours(series)
    if stacked:
        times = sorted({t for s in series for t in s.timestamps})
        stacks = [[dict(zip(s.timestamps, s.values)).get(t, 0.0) for t in times] for s in series]
        axes.stackplot(times, stacks, labels=[_legend_label(s) for s in series], colors=colours, alpha=0.8)
    else:
        for s, colour in zip(series, colours):
            axes.plot(s.timestamps, s.values, label=_legend_label(s), color=colour, linewidth=1.6,
                      marker="o" if len(s.values) <= 40 else None, markersize=3)
    axes.set_xlim(start, end)
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=timezone.utc))
    axes.tick_params(labelsize=8)
    axes.grid(True, color="#eaeded")
    if all(v >= 0 for s in series for v in s.values):
        axes.set_ylim(bottom=0)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5, frameon=False)
    for spine in ("top", "right"):
        axes.spines[spine].set_visible(False)


def _draw_bars(canvas: _Canvas, panel: _Panel, series: list[Series]) -> None:
    body = panel.body
    axes = canvas.axes(body.left + 200, body.top + 4, body.width - 260, body.height - 10)
    labels = [_legend_label(s) for s in series]
    values = [s.latest or 0.0 for s in series]
    axes.barh(range(len(series)), values, color=_colours(series))
    axes.set_yticks(range(len(series)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.tick_params(axis="x", labelsize=8)
    for i, s in enumerate(series):
        axes.text(values[i], i, f" {format_value(s.latest)}", va="center", fontsize=8)
    for spine in ("top", "right"):
        axes.spines[spine].set_visible(False)


def _draw_pie(canvas: _Canvas, panel: _Panel, series: list[Series]) -> None:
    body = panel.body
    shown = [(s, c) for s, c in zip(series, _colours(series)) if (s.latest or 0) > 0]
    if not shown:
        _no_data(canvas, panel, "every value is 0")
        return
    axes = canvas.axes(body.left, body.top, min(body.height, body.width / 2), body.height)
    axes.pie([s.latest for s, _ in shown], colors=[c for _, c in shown], startangle=90, counterclock=False,
             wedgeprops={"linewidth": 1, "edgecolor": "white"})
    total = sum(s.latest for s, _ in shown)
    entries = [f"{s.line.label}: {format_value(s.latest)} ({100 * s.latest / total:.0f}%)" for s, _ in shown]
    entries += [f"{s.line.label}: {NO_DATA if not s.has_data else '0'}" for s in series if (s.latest or 0) <= 0]
    for i, text in enumerate(entries):
        canvas.text(body.left + min(body.height, body.width / 2) + 24, body.top + 10 + 18 * i, text, fontsize=9, color="#16191f")


def _draw_single_values(canvas: _Canvas, panel: _Panel, series: list[Series]) -> None:
    body = panel.body
    cell = body.width / len(series)
    for i, (s, colour) in enumerate(zip(series, _colours(series))):
        left = body.left + i * cell + 8
        canvas.rectangle(left, body.top + 8, 10, 10, facecolor=colour if s.has_data else "#d5dbdb", linewidth=0)
        canvas.text(left + 16, body.top + 8, s.line.label, fontsize=9, color="#545b64")
        canvas.text(left, body.top + 30, format_value(s.latest), fontsize=28, color="#16191f" if s.has_data else "#879596")
        if not s.has_data:
            canvas.text(left, body.top + 80, NO_DATA, fontsize=9, style="italic", color="#879596")


# --- alarm --------------------------------------------------------------------------------------------

def alarm_states(cloudwatch, arns: list[str]) -> list[AlarmReport]:
    """Each alarm's current state, by the name in its ARN (DescribeAlarms takes at most 100 names)."""
    names = [arn.split(":alarm:", 1)[-1] for arn in arns]
    found: dict[str, dict] = {}
    for offset in range(0, len(names), 100):
        response = cloudwatch.describe_alarms(AlarmNames=names[offset : offset + 100], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        for alarm in response.get("MetricAlarms", []) + response.get("CompositeAlarms", []):
            found[alarm["AlarmName"]] = alarm
    return [AlarmReport(name, found[name]["StateValue"], found[name].get("StateUpdatedTimestamp")) if name in found
            else AlarmReport(name, "NOT FOUND") for name in names]


def _draw_alarms(canvas: _Canvas, panel: _Panel, cloudwatch, properties: dict, report: WidgetReport) -> None:
    _title(canvas, panel, properties.get("title", "Alarms"), report)
    try:
        alarms = alarm_states(cloudwatch, properties.get("alarms", []))
    except Exception as error:  # as for metric widgets: say what failed, keep drawing the rest
        _note(canvas, panel, report, f"error: {error}")
        return
    if properties.get("sortBy") == "stateUpdatedTimestamp":
        alarms.sort(key=lambda a: a.updated or datetime.min.replace(tzinfo=timezone.utc), reverse=True)
    elif properties.get("sortBy") == "state":
        order = ["ALARM", "INSUFFICIENT_DATA", "OK", "NOT FOUND"]
        alarms.sort(key=lambda a: order.index(a.state) if a.state in order else len(order))
    report.alarms = alarms
    if not alarms:
        _no_data(canvas, panel)
        return
    body = panel.body
    columns = max(1, int(body.width // 420))
    box_width, box_height = body.width / columns - 8, 30
    for i, alarm in enumerate(alarms):
        left = body.left + (i % columns) * (box_width + 8)
        top = body.top + 4 + (i // columns) * (box_height + 6)
        colour = STATE_COLOURS.get(alarm.state, UNKNOWN_STATE_COLOUR)
        canvas.rectangle(left, top, box_width, box_height, facecolor=colour, alpha=0.15, edgecolor=colour, linewidth=1.5)
        canvas.text(left + 8, top + 7, alarm.state, fontsize=9, weight="bold", color=colour)
        canvas.text(left + 150, top + 7, alarm.name, fontsize=9, color="#16191f")


# --- the deployed dashboard -----------------------------------------------------------------------

def render_deployed(cloudwatch, dashboard_name: str, path: Path = DEFAULT_OUTPUT, *, start: datetime | None = None,
                    end: datetime | None = None, hours: float = DEFAULT_HOURS) -> RenderReport:
    """GetDashboard, then render it over [start, end) (default: the last `hours` hours)."""
    if start is None or end is None:
        start, end = time_range(hours, end)
    return render(cloudwatch, read_dashboard(cloudwatch, dashboard_name), path, start=start, end=end, dashboard_name=dashboard_name)


def render_for_demo(session, endpoint: str, outputs: dict) -> RenderReport:
    """For tooling/demo.py: the deployed dashboard over the last DEFAULT_HOURS up to the platform clock's now
    (the clock the metrics are stamped with), into demo-output/dashboard.png."""
    end = platform_now(endpoint) + timedelta(seconds=1)
    return render_deployed(session.client("cloudwatch", endpoint_url=endpoint), outputs["dashboard_name"], start=end - timedelta(hours=DEFAULT_HOURS), end=end)


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the deployed local CloudWatch dashboard from the emulator's metrics into one PNG.")
    parser.add_argument("--hours", type=float, default=DEFAULT_HOURS, help=f"time range: the last N hours (default {DEFAULT_HOURS})")
    parser.add_argument("--start", type=_utc, help="time range start, ISO 8601 (UTC unless it says otherwise); needs --end")
    parser.add_argument("--end", type=_utc, help="time range end, ISO 8601")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"PNG to write (default {DEFAULT_OUTPUT.relative_to(PROJECT_ROOT)})")
    parser.add_argument("--dashboard", help="dashboard name (default: dashboard_name from cfn-outputs/flat-outputs.json)")
    parser.add_argument("--report", type=Path, help="also write the render report (per widget: kind, title, lines, data) as JSON")
    args = parser.parse_args(argv)
    if (args.start is None) != (args.end is None):
        parser.error("--start and --end go together")
    if args.start and args.start >= args.end:
        parser.error("--start must be before --end")
    cloudwatch = emulator_cloudwatch()
    name, _ = deployed_names(args.dashboard)
    # Without --end the range ends at the platform clock's now, the time the metrics carry (the demo moves it ahead).
    report = render_deployed(cloudwatch, name, args.output, start=args.start, end=args.end or platform_now() + timedelta(seconds=1),
                             hours=args.hours)
    for widget in report.widgets:
        status = "data" if widget.has_data else NO_DATA
        detail = f"{sum(line.has_data for line in widget.lines)}/{len(widget.lines)} lines" if widget.kind == "metric" else ""
        print(f"  {widget.kind:<6} {widget.title[:60]:<60} {status:<8} {detail}" + ("; " + "; ".join(widget.notes) if widget.notes else ""))
    if args.report:
        args.report.write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n")
    print(f"dashboard: {report.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
