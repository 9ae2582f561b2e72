"""Resource names: every name carries the environment suffix so environments never collide."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Naming:
    suffix: str
    account_id: str | None = None

    def name(self, base: str) -> str:
        """`TradingPatterns` -> `TradingPatterns-dev`."""
        return f"{base}-{self.suffix}"

    def bucket(self, base: str) -> str:
        """S3 names are global and lowercase, so the account id joins the suffix when we know it."""
        parts = [base, self.account_id, self.suffix] if self.account_id else [base, self.suffix]
        return "-".join(parts).lower()
