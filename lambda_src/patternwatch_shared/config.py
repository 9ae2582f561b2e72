"""Settings read from the environment, restricted to the keys each function's spec declares (names.functions)."""
from __future__ import annotations

import os
from collections.abc import Mapping

from patternwatch_shared.names.functions import ENV_ALERT_CONFIDENCE_THRESHOLD, LambdaFunctionSpec


class ConfigurationError(RuntimeError):
    """A required setting is missing or malformed: a deployment problem, not a bad input."""


class EnvReader:
    """Reads only the keys the function's spec declares, so handler and infrastructure cannot drift.

    A handler asking for an undeclared key fails loudly in tests instead of silently reading a
    variable the infrastructure never sets.
    """

    def __init__(self, spec: LambdaFunctionSpec, environ: Mapping[str, str] | None = None):
        self._spec = spec
        self._environ = os.environ if environ is None else environ

    def _check_declared(self, key: str) -> None:
        if key not in self._spec.env_keys and key not in self._spec.optional_env_keys:
            raise ConfigurationError(f"{self._spec.base_name} reads {key!r} but its spec in names.functions does not declare it")

    def require(self, key: str) -> str:
        self._check_declared(key)
        value = self._environ.get(key, "").strip()
        if not value:
            raise ConfigurationError(f"environment variable {key} is not set for {self._spec.base_name}")
        return value

    def optional(self, key: str, default: str | None = None) -> str | None:
        self._check_declared(key)
        value = self._environ.get(key, "").strip()
        return value or default

    def require_float(self, key: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
        return _bounded_float(key, self.require(key), minimum, maximum)

    def require_count(self, key: str) -> int:
        """A whole number of at least 1."""
        raw = self.require(key)
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise ConfigurationError(f"environment variable {key}={raw!r} is not a whole number of at least 1")
        return int(raw)

    def optional_float(self, key: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
        raw = self.optional(key)
        return default if raw is None else _bounded_float(key, raw, minimum, maximum)


def alert_confidence_threshold(env: EnvReader) -> float:
    """envs/*.json `alerts.confidence_threshold`, the one cut every alert decision compares against (>=)."""
    return env.require_float(ENV_ALERT_CONFIDENCE_THRESHOLD, minimum=0, maximum=1)


def _bounded_float(key: str, raw: str, minimum: float | None, maximum: float | None) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {key}={raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigurationError(f"environment variable {key}={raw!r} is not finite")
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"environment variable {key}={raw!r} is below {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"environment variable {key}={raw!r} is above {maximum}")
    return value
