"""Developer tooling: toolchain checks, the Terraform CLI config, Lambda packaging, releases and the local platform."""
import sys
from pathlib import Path

# The tools import the handlers' shared code and the engine the way the Lambda layer provides them.
_LAMBDA_SRC = str(Path(__file__).resolve().parent.parent / "lambda_src")
if _LAMBDA_SRC not in sys.path:
    sys.path.insert(0, _LAMBDA_SRC)
