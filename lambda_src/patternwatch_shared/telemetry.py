"""Metric helpers for metrics whose dimension value varies within one invocation.

Powertools `Metrics` shares one dimension set per flush, so PatternType/Severity/Action-dimensioned
metrics go through `EphemeralMetrics`, one EMF blob per dimension value. Powertools itself starts a
new blob every 100 values (the EMF limit), keeping the dimensions.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from patternwatch_shared.names.functions import LambdaFunctionSpec
from patternwatch_shared.names.metrics import METRICS_NAMESPACE

# The Tracer patches only botocore: the functions make no other traced calls (no requests, httplib,
# sqlite3, ...), and patching everything X-Ray supports imports those libraries on every cold start.
TRACED_MODULES = ("botocore",)


class DimensionedMetrics:
    """Collect (metric, dimension value) samples during an invocation; flush once at the end."""

    def __init__(self, service: str):
        self._service = service
        self._samples: dict[tuple[str, str, str, MetricUnit], list[float]] = defaultdict(list)

    def add(self, metric: str, unit: MetricUnit, dimension: str, dimension_value: str, value: float) -> None:
        self._samples[(metric, dimension, dimension_value, unit)].append(float(value))

    def extend(self, metric: str, unit: MetricUnit, dimension: str, dimension_value: str, values: Iterable[float]) -> None:
        self._samples[(metric, dimension, dimension_value, unit)].extend(float(v) for v in values)

    def flush(self) -> None:
        samples, self._samples = self._samples, defaultdict(list)
        for (metric, dimension, dimension_value, unit), values in samples.items():
            emitter = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=self._service)
            emitter.add_dimension(name=dimension, value=dimension_value)
            for value in values:
                emitter.add_metric(name=metric, unit=unit, value=value)
            if emitter.metric_set:  # empty when the last add completed a 100-value blob
                emitter.flush_metrics()


def share_log_config(logger: Logger) -> None:
    """Give the shared modules' standard-library loggers the handler's JSON format and keys.

    Call after the handler's imports, so every patternwatch_shared logger already exists.
    """
    shared = {name for name in logging.root.manager.loggerDict if name.startswith("patternwatch_shared")}
    copy_config_to_registered_loggers(source_logger=logger, include=shared)


def powertools_for(spec: LambdaFunctionSpec) -> tuple[Logger, Tracer, Metrics]:
    """The Logger, Tracer and Metrics of one function, named by its spec; call after the handler's imports."""
    logger = Logger(service=spec.service_name)
    share_log_config(logger)
    return logger, Tracer(service=spec.service_name, patch_modules=TRACED_MODULES), Metrics(namespace=METRICS_NAMESPACE, service=spec.service_name)
