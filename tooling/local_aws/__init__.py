"""The local platform's runtime: what the emulator does at run time, beyond storing what Terraform created.

- lambda_service (+ worker, function_code, lambda_api): one local Lambda service; every invocation runs
  the deployed package in a worker process;
- step_functions: executions run on moto's ASL interpreter, their Lambda tasks through that service;
- event_delivery: EventBridge rule targets of type states and lambda;
- api_gateway: the deployed REST API served over HTTP through Lambda proxy integrations;
- api_deployments: deployment snapshots and stage canaries, which api_gateway routes on;
- telemetry, service_metrics: log groups, EMF extraction, AWS/* metrics;
- clock: a controllable platform clock shared by the emulator and the workers;
- server: the emulator's HTTP front (gateway, admin endpoints, moto).

`install()` applies all of it inside the emulator process (tooling/moto_extensions.py calls it).
"""
from __future__ import annotations

_INSTALLED: list[str] = []


def install() -> list[str]:
    if not _INSTALLED:
        from . import api_deployments, clock, event_delivery, lambda_api, service_metrics, step_functions, telemetry

        clock.install_moto_clock()
        clock.install_logs_clock()
        _INSTALLED.append("clock: SQS and CloudWatch Logs follow the platform clock (POST /_patternwatch/clock)")
        _INSTALLED.extend(lambda_api.install())
        _INSTALLED.extend(step_functions.install())
        _INSTALLED.extend(event_delivery.install())
        _INSTALLED.extend(api_deployments.install())
        _INSTALLED.extend(service_metrics.install())
        _INSTALLED.extend(telemetry.install_exact_statistics())
    return list(_INSTALLED)
