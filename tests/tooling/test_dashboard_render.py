"""The dashboard renderer, against an in-process emulator holding the local stack's dashboard body."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cloudwatch_testkit import (
    NOW,
    coloured_pixels,
    has_percentile,
    has_search,
    metric_lines,
    one_widget,
    put,
    put_series,
    searches,
)
from matplotlib.image import imread

from tooling import dashboard_render
from tooling.cloudwatch_metrics import Metric, list_metrics
from tooling.dashboard_render import COLUMN_PX, GRID_COLUMNS, HEADER_PX, NO_DATA, ROW_PX
from tooling.metric_references import whole_range_period

START = NOW - timedelta(hours=3)
END = NOW + timedelta(seconds=1)
DASHBOARD = "PatternDetectionDashboard-local"


def is_view(view: str, **extra):
    return lambda p: p.get("view", "timeSeries") == view and all(p.get(k) == v for k, v in extra.items())


@pytest.fixture
def fed(cloudwatch, local_body):
    """The local dashboard deployed, and data for one widget of each kind the renderer draws."""
    cloudwatch.put_dashboard(DashboardName=DASHBOARD, DashboardBody=json.dumps(local_body))
    widgets = {}

    percentiles = one_widget(local_body, has_percentile, avoid=widgets.values())
    put(cloudwatch, metric_lines(percentiles)[0].metric, range(1, 101))
    widgets["percentiles"] = percentiles

    search_widget = one_widget(local_body, has_search, avoid=widgets.values())
    search = searches(search_widget)[0]
    dimension = next(iter(search.dimension_names - {"service"}))
    for offset, family in enumerate(("double-top", "head-and-shoulders", "triangle")):
        put_series(cloudwatch, Metric(search.namespace, search.metric_name, ((dimension, family), ("service", "kinesis-consumer"))),
                   [80 + 5 * offset, 70, 75])
    # Found by ListMetrics, but not by the search: one dimension too many, and another metric name.
    put(cloudwatch, Metric(search.namespace, search.metric_name, ((dimension, "cup"), ("service", "x"), ("extra", "1"))), [1])
    put(cloudwatch, Metric(search.namespace, "SomethingElse", ((dimension, "cup"), ("service", "x"))), [1])
    widgets["search"] = search_widget

    pie = one_widget(local_body, is_view("pie"), avoid=widgets.values())
    put(cloudwatch, metric_lines(pie)[0].metric, [1, 1, 1])  # its second line has no data
    widgets["pie"] = pie

    whole_range = one_widget(local_body, is_view("singleValue", setPeriodToTimeRange=True), avoid=widgets.values())
    put_series(cloudwatch, metric_lines(whole_range)[0].metric, [10] * 10)
    widgets["whole_range"] = whole_range

    stacked = one_widget(local_body, is_view("timeSeries", stacked=True), avoid=widgets.values())
    for line in metric_lines(stacked)[:2]:
        put_series(cloudwatch, line.metric, [3, 2, 1, 0])
    widgets["stacked"] = stacked

    bar = one_widget(local_body, lambda p: is_view("bar")(p) and len(metric_lines({"properties": p})[0].metric.dimensions) > 1,
                     avoid=widgets.values())
    put(cloudwatch, metric_lines(bar)[0].metric, [2], reverse_dimensions=True)
    widgets["bar"] = bar

    alarms = one_widget(local_body, lambda p: "alarms" in p)
    names = [arn.split(":alarm:")[1] for arn in alarms["properties"]["alarms"]]
    for name in names:
        cloudwatch.put_metric_alarm(AlarmName=name, Namespace="AWS/States", MetricName="ExecutionsFailed", Statistic="Sum", Period=300,
                                    EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    cloudwatch.set_alarm_state(AlarmName=names[-1], StateValue="ALARM", StateReason="test")
    widgets["alarms"] = alarms
    return widgets


@pytest.fixture
def rendered(cloudwatch, fed, tmp_path):
    return dashboard_render.render_deployed(cloudwatch, DASHBOARD, tmp_path / "dashboard.png", start=START, end=END)


def report_of(rendered, widget):
    return next(w for w in rendered.widgets if (w.x, w.y) == (widget["x"], widget["y"]))


def test_the_png_decodes_and_follows_the_grid(rendered, local_body):
    image = imread(rendered.path)
    rows = max(w["y"] + w["height"] for w in local_body["widgets"])
    assert image.shape[:2] == (HEADER_PX + rows * ROW_PX, GRID_COLUMNS * COLUMN_PX)
    assert (rendered.width_px, rendered.height_px) == (image.shape[1], image.shape[0])
    assert [(w.x, w.y, w.width, w.height) for w in rendered.widgets] == [(w["x"], w["y"], w["width"], w["height"]) for w in local_body["widgets"]]


def test_every_widget_is_drawn_with_its_title(rendered, local_body):
    kinds = [w.kind for w in rendered.widgets]
    assert kinds == [w["type"] for w in local_body["widgets"]]
    assert {"text", "metric", "alarm"} <= set(kinds)
    for widget, report in zip(local_body["widgets"], rendered.widgets):
        properties = widget["properties"]
        expected = properties.get("title") or properties["markdown"].splitlines()[0].lstrip("# ")
        assert report.title == expected
        assert report.drawn_title == expected
    views = {w.view for w in rendered.widgets if w.kind == "metric"}
    assert views == {"timeSeries", "bar", "pie", "singleValue"}


def test_widgets_with_data_have_it_and_the_others_say_no_data(rendered, fed, cloudwatch, local_body):
    image = imread(rendered.path)
    published = {m.key for m in list_metrics(cloudwatch)}
    with_data = {(w["x"], w["y"]) for w in fed.values()} | {
        (w["x"], w["y"]) for w in local_body["widgets"] if w["type"] == "metric" and any(line.metric.key in published for line in metric_lines(w))
    }
    assert 0 < len(with_data) < len([w for w in rendered.widgets if w.kind == "metric"])  # both cases are checked
    for report in rendered.widgets:
        box = (report.x * COLUMN_PX + 8, HEADER_PX + report.y * ROW_PX + 30, report.width * COLUMN_PX - 16, report.height * ROW_PX - 40)
        if report.kind == "text":
            continue
        if (report.x, report.y) in with_data:
            assert report.has_data, report.title
            assert coloured_pixels(image, *box) > 50, f"{report.title}: nothing drawn"
        else:
            assert not report.has_data, report.title
            assert report.lines and all(line.datapoints == 0 for line in report.lines)
            assert coloured_pixels(image, *box) == 0, f"{report.title}: drawn without data"
    assert {w.title for w in rendered.without_data} == {w.title for w in rendered.widgets if w.kind == "metric" and (w.x, w.y) not in with_data}
    assert f"{len([w for w in rendered.widgets if w.kind == 'metric']) - len(rendered.without_data)}/" in rendered.summary()


def test_percentiles_and_per_metric_labels(rendered, fed):
    report = report_of(rendered, fed["percentiles"])
    lines = {line.label: line for line in report.lines}
    p50 = next(line for line in report.lines if line.stat == "p50")
    p99 = next(line for line in report.lines if line.stat == "p99")
    assert (p50.value, p99.value) == (50.0, 99.0)  # nearest rank over the values 1..100
    configured = [e[-1]["label"] for e in fed["percentiles"]["properties"]["metrics"]]
    assert list(lines) == configured
    assert all(line.datapoints == 0 for line in report.lines if line.stat not in ("p50", "p99"))


def test_search_is_expanded_into_one_line_per_matching_metric(rendered, fed):
    report = report_of(rendered, fed["search"])
    assert sorted(line.label for line in report.lines) == ["double-top kinesis-consumer", "head-and-shoulders kinesis-consumer",
                                                           "triangle kinesis-consumer"]
    assert [(line.datapoints, line.value) for line in sorted(report.lines, key=lambda line: line.label)] == [(3, 80.0), (3, 85.0), (3, 90.0)]
    assert {line.stat for line in report.lines} == {searches(fed["search"])[0].stat}


def test_single_value_views_show_the_latest_value_or_the_whole_range(rendered, fed):
    pie = report_of(rendered, fed["pie"])
    assert [line.value for line in pie.lines] == [3.0, None]
    whole_range = report_of(rendered, fed["whole_range"])
    first = whole_range.lines[0]
    assert (first.value, first.datapoints, first.period) == (100.0, 1, whole_range_period(START, END))  # Sum of 10 tens, one period
    bar = report_of(rendered, fed["bar"])
    assert bar.lines[0].value == 2.0  # published with its dimensions in the other order
    stacked = report_of(rendered, fed["stacked"])
    assert [line.has_data for line in stacked.lines][:3] == [True, True, False]
    assert any(NO_DATA not in line.label for line in stacked.lines)


def test_alarm_widget_shows_each_alarm_with_its_state(rendered, fed):
    report = report_of(rendered, fed["alarms"])
    names = [arn.split(":alarm:")[1] for arn in fed["alarms"]["properties"]["alarms"]]
    assert {a.name: a.state for a in report.alarms} == {**{n: "OK" for n in names[:-1]}, names[-1]: "ALARM"}
    assert report.alarms[0].name == names[-1]  # sortBy stateUpdatedTimestamp: the newest change first


def test_the_time_range_is_configurable(cloudwatch, fed, tmp_path):
    a_day_earlier = dashboard_render.render_deployed(cloudwatch, DASHBOARD, tmp_path / "earlier.png",
                                                     start=START - timedelta(days=1), end=END - timedelta(days=1))
    assert all(not w.has_data for w in a_day_earlier.widgets if w.kind == "metric")
    assert (a_day_earlier.start, a_day_earlier.end) == (START - timedelta(days=1), END - timedelta(days=1))
    assert imread(a_day_earlier.path).shape[0] > 0


def test_entries_it_cannot_evaluate_are_named_in_the_widget(cloudwatch, tmp_path):
    body = {"widgets": [
        {"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6, "properties": {
            "title": "math", "region": "us-east-1", "metrics": [
                ["AWS/Lambda", "Errors", "FunctionName", "f", {"id": "m1"}],
                [{"expression": "m1 * 2", "label": "doubled"}],
                ["...", "FunctionName", "g"],
            ]}},
        {"type": "log", "x": 12, "y": 0, "width": 12, "height": 6, "properties": {"title": "logs", "query": "fields @message"}},
    ]}
    put(cloudwatch, Metric("AWS/Lambda", "Errors", (("FunctionName", "f"),)), [1])
    report = dashboard_render.render(cloudwatch, body, tmp_path / "d.png", start=START, end=END)
    math, logs = report.widgets
    assert math.has_data and [line.label for line in math.lines] == ["Errors"]
    assert any("m1 * 2" in n and "not evaluated" in n for n in math.notes)
    assert any("shorthand" in n for n in math.notes)
    assert logs.notes == ["widget type 'log' is not drawn"] and logs.title == "logs"


def test_a_widget_the_emulator_cannot_answer_says_why_and_the_rest_still_renders(cloudwatch, tmp_path):
    body = {"widgets": [
        {"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6, "properties": {
            "title": "bad period", "metrics": [["AWS/Lambda", "Errors", "FunctionName", "f", {"period": 0}]]}},
        {"type": "metric", "x": 12, "y": 0, "width": 12, "height": 6, "properties": {
            "title": "good", "metrics": [["AWS/Lambda", "Errors", "FunctionName", "f"]]}},
    ]}
    put(cloudwatch, Metric("AWS/Lambda", "Errors", (("FunctionName", "f"),)), [1])
    bad, good = dashboard_render.render(cloudwatch, body, tmp_path / "d.png", start=START, end=END).widgets
    assert bad.notes and bad.notes[0].startswith("error:") and not bad.has_data
    assert good.has_data


def test_the_report_is_json(rendered, tmp_path):
    data = json.loads(json.dumps(rendered.as_json(), default=str))
    assert len(data["widgets"]) == len(rendered.widgets)
    assert {w["has_data"] for w in data["widgets"]} == {True, False}



def test_the_command_line_renders_a_dashboard_and_writes_the_report(cloudwatch, fed, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dashboard_render, "emulator_cloudwatch", lambda: cloudwatch)
    png, report = tmp_path / "cli.png", tmp_path / "report.json"
    assert dashboard_render.main(["--dashboard", DASHBOARD, "--output", str(png), "--report", str(report),
                                  "--start", START.isoformat(), "--end", END.isoformat()]) == 0
    written = json.loads(report.read_text())
    assert written["path"] == str(png) and imread(png).shape[1] == GRID_COLUMNS * COLUMN_PX
    assert [w["title"] for w in written["widgets"]] == [w.title for w in dashboard_render.render_deployed(
        cloudwatch, DASHBOARD, tmp_path / "again.png", start=START, end=END).widgets]
    assert f"dashboard: {png}" in capsys.readouterr().out


@pytest.mark.parametrize("arguments", [["--start", "2026-01-01T00:00"], ["--start", "2026-01-02T00:00", "--end", "2026-01-01T00:00"]])
def test_the_command_line_refuses_a_bad_time_range(arguments, capsys):
    with pytest.raises(SystemExit) as exit_:
        dashboard_render.main(["--dashboard", DASHBOARD, *arguments])
    assert exit_.value.code == 2 and "--start" in capsys.readouterr().err


def test_markdown_is_drawn_inside_its_widget(cloudwatch, tmp_path):
    markdown = "## Runbook\n**Page** the [on-call](https://example.com)\n\n- one\n- `two`\n" + "\n".join(f"line {i}" for i in range(40))
    body = {"widgets": [{"type": "text", "x": 0, "y": 0, "width": 24, "height": 3, "properties": {"markdown": markdown}}]}
    (text,) = dashboard_render.render(cloudwatch, body, tmp_path / "t.png", start=START, end=END).widgets
    assert (text.kind, text.title, text.drawn_title, text.has_data) == ("text", "Runbook", "Runbook", True)
    (cut,) = text.notes
    assert cut.startswith("markdown cut:") and 30 < int(cut.split()[2]) < 46  # a 3-row widget holds a few lines only
    assert imread(tmp_path / "t.png").shape[:2] == (HEADER_PX + 3 * ROW_PX, GRID_COLUMNS * COLUMN_PX)
