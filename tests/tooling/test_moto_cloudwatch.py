"""The emulator's CloudWatch read fixes (tooling/moto_cloudwatch.py), through the API."""
from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

from cloudwatch_testkit import NOW, RECENT, put

from tooling import moto_cloudwatch
from tooling.cloudwatch_metrics import Metric, MetricStat, fetch, list_metrics
from tooling.local_platform import PROJECT_ROOT

START, END = NOW - timedelta(hours=3), NOW + timedelta(seconds=1)
LATENCY = Metric("AWS/ApiGateway", "Latency", (("ApiName", "pattern-detection-api-local"), ("Stage", "v1")))


def values(cloudwatch, metric: Metric, stat: str, period: int = 300) -> list[float]:
    (series,) = fetch(cloudwatch, [MetricStat(metric, stat, period)], START, END)
    return series.values


def test_percentiles_come_from_the_published_values(cloudwatch):
    put(cloudwatch, LATENCY, range(1, 1001))
    assert values(cloudwatch, LATENCY, "p50") == [500.0]
    assert values(cloudwatch, LATENCY, "p99") == [990.0]
    assert values(cloudwatch, LATENCY, "p99.9") == [999.0]
    assert values(cloudwatch, LATENCY, "p100") == [1000.0]
    assert values(cloudwatch, LATENCY, "Average") == [500.5]  # the basic statistics are moto's own


def test_a_percentile_of_statistic_sets_alone_is_no_datapoint_not_a_server_error(cloudwatch):
    cloudwatch.put_metric_data(Namespace=LATENCY.namespace, MetricData=[{
        "MetricName": LATENCY.name, "Dimensions": LATENCY.as_api()["Dimensions"], "Timestamp": RECENT,
        "StatisticValues": {"SampleCount": 2, "Sum": 10, "Minimum": 4, "Maximum": 6}}])
    assert values(cloudwatch, LATENCY, "p99") == []
    assert values(cloudwatch, LATENCY, "Maximum") == [6.0]


def test_dimensions_match_in_any_order(cloudwatch):
    # moto's own ordering found [Stage, ApiName] data for an [ApiName, Stage] query or not, depending on the values.
    put(cloudwatch, LATENCY, [7], reverse_dimensions=True)
    assert values(cloudwatch, LATENCY, "Sum") == [7.0]
    assert values(cloudwatch, Metric(LATENCY.namespace, LATENCY.name, LATENCY.dimensions[::-1]), "Sum") == [7.0]
    assert values(cloudwatch, Metric(LATENCY.namespace, LATENCY.name, LATENCY.dimensions[:1]), "Sum") == []  # a subset is another metric


def test_list_metrics_lists_each_metric_once(cloudwatch):
    for minute in range(30):
        put(cloudwatch, LATENCY, [minute], at=RECENT - timedelta(minutes=minute))
    put(cloudwatch, Metric(LATENCY.namespace, LATENCY.name, (("ApiName", "other"), ("Stage", "v1"))), [1])
    listed = cloudwatch.list_metrics(Namespace=LATENCY.namespace)["Metrics"]
    assert len(listed) == 2
    assert [m.key for m in list_metrics(cloudwatch, namespace=LATENCY.namespace)].count(LATENCY.key) == 1


def test_install_is_idempotent_and_part_of_the_emulators_extensions():
    assert moto_cloudwatch.install() == moto_cloudwatch.install()
    # In a fresh process, as the emulator starts (installing every extension here would change moto for other tests).
    result = subprocess.run([sys.executable, "-c", "from tooling import moto_extensions; print('\\n'.join(moto_extensions.install()))"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert set(moto_cloudwatch.INSTALLED) <= set(result.stdout.splitlines())


def test_nearest_rank_percentile():
    assert moto_cloudwatch.percentile([5.0], 99) == 5.0
    assert moto_cloudwatch.percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert moto_cloudwatch.percentile([3.0, 1.0, 2.0, 4.0], 51) == 3.0
    assert moto_cloudwatch.percentile([3.0, 1.0, 2.0, 4.0], 0) == 1.0
