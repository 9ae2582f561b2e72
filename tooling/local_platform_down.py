"""`make down`: destroy the `local` deployment and stop the emulator."""
from __future__ import annotations

import sys

from .local_platform import destroy


def main() -> int:
    destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
