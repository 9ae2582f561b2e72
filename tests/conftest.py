"""Settings every test process needs, and the `slow` mark for tests that run an external tool over the stacks."""
import functools
import os

import botocore.loaders
import botocore.session
import pytest

# jsii prints a Node 20 end-of-life banner on import; it says nothing about our code.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

# Every botocore session loads the service models, endpoints and partitions from JSON again (~0.15 s of CPU
# per client), and tests make new sessions all the time: moto's mock_aws resets boto3's default session, and
# the handlers build one per client, as a Lambda container does once. The models are read-only data, so all
# sessions of a test process share one loader; the AWS calls, credentials and moto's interception are unchanged.
botocore.session.create_loader = functools.lru_cache(maxsize=None)(botocore.loaders.create_loader)

# Fixtures that run an external tool (checkov, terraform) over the stacks: a test using one is `slow`, and
# `make test-fast` (-m "not slow") leaves it out. Marked here, so a new test that uses one is marked too.
EXTERNAL_TOOL_FIXTURES = {"scans", "initialized_stacks", "provider_schema", "workspace_probe"}
# The fuzz suite (hundreds of generated events per handler) is `slow` as a whole.
SLOW_DIRECTORIES = ("tests/lambda/functions/fuzz",)


def pytest_collection_modifyitems(config, items):
    for item in items:
        where = item.path.relative_to(config.rootpath).as_posix()
        if EXTERNAL_TOOL_FIXTURES & set(getattr(item, "fixturenames", ())) or where.startswith(SLOW_DIRECTORIES):
            item.add_marker(pytest.mark.slow)
