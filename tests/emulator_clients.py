"""AWS clients on an emulator endpoint, shared by the session fixtures of tests/integration and tests/tooling."""
from __future__ import annotations

from types import SimpleNamespace


def emulator_clients(session, endpoint: str, *services: str) -> SimpleNamespace:
    """One client per service on `endpoint`, each an attribute named for its service (`lambda` is `lambda_`,
    a keyword otherwise), next to the `endpoint` itself."""
    clients = {("lambda_" if service == "lambda" else service): session.client(service, endpoint_url=endpoint)
               for service in services}
    return SimpleNamespace(endpoint=endpoint, **clients)
