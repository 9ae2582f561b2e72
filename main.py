#!/usr/bin/env python
"""CDKTF entry point: per environment in envs/ (all, or those PATTERNWATCH_ENVIRONMENTS names), the platform
stack `patternwatch-<env>` and, where envs/<env>.json enables it, the power tuner's `patternwatch-<env>-power-tuner`."""
import os
import sys

# jsii prints a banner about Node 20's end of life on every run; it is noise for our users.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from cdktf import App  # noqa: E402

from patternwatch_infra.config import ConfigError, selected_environments  # noqa: E402
from patternwatch_infra.power_tuner import power_tuner_stack  # noqa: E402
from patternwatch_infra.stack import PatternWatchStack  # noqa: E402


def main() -> int:
    try:
        environments = selected_environments()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app = App()
    for config in environments:
        power_tuner_stack(app, PatternWatchStack(app, config))
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
