"""API layer: the REST API behind WAF that fronts the pattern detector and the approval workflow.

Built by the compute/API issue; for now it takes its typed inputs so the stack is wired end to end.
"""
from __future__ import annotations

from constructs import Construct

from .compute import ComputeLayer
from .config import EnvironmentConfig
from .data import DataLayer
from .layer import Layer


class ApiLayer(Layer):
    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, data: DataLayer, compute: ComputeLayer) -> None:
        super().__init__(scope, id, config=config)
        self.data = data
        self.compute = compute
