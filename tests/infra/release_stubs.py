"""What the release tests share: botocore clients for Stubber and a fake clock (nothing sleeps)."""
from __future__ import annotations

import botocore.session

# One session for the test process: it caches the API models, which are slow to load.
SESSION = botocore.session.get_session()


def stub_client(service: str):
    """A real botocore client (its requests and responses are validated against the service model), never sent."""
    return SESSION.create_client(service, region_name="us-east-1", aws_access_key_id="stub", aws_secret_access_key="stub")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
