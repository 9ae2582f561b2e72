"""Settings every test process needs."""
import os

from hypothesis import HealthCheck, settings

# jsii prints a Node 20 end-of-life banner on import; it says nothing about our code.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

# Every property test runs the same examples in every run (CI runs what you ran) and is never timed:
# Hypothesis' default 200 ms deadline turned a loaded machine into a failing test. Tests that need
# their own settings (the fuzz profile, example counts) still set them with @settings.
settings.register_profile(
    "patternwatch",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("patternwatch")
