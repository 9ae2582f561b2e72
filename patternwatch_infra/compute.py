"""Compute layer: the Lambda functions, their roles, event sources and canary deployments.

Built by the compute issue; for now it takes its typed inputs so the stack is wired end to end.
"""
from __future__ import annotations

from constructs import Construct

from .config import EnvironmentConfig
from .data import DataLayer
from .layer import Layer


class ComputeLayer(Layer):
    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, data: DataLayer) -> None:
        super().__init__(scope, id, config=config)
        self.data = data
