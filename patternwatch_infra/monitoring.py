"""Monitoring layer: dashboard, alarms, anomaly detection and billing guardrails.

Built by the monitoring issue; for now it takes its typed inputs so the stack is wired end to end.
"""
from __future__ import annotations

from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from .api import ApiLayer
from .compute import ComputeLayer
from .config import EnvironmentConfig
from .data import DataLayer
from .layer import Layer
from .orchestration import OrchestrationLayer


class MonitoringLayer(Layer):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        data: DataLayer,
        compute: ComputeLayer,
        api: ApiLayer,
        orchestration: OrchestrationLayer,
        billing_provider: AwsProvider,
    ) -> None:
        super().__init__(scope, id, config=config)
        self.data = data
        self.compute = compute
        self.api = api
        self.orchestration = orchestration
        # AWS publishes billing metrics only in us-east-1, whatever the stack's region.
        self.billing_provider = billing_provider
