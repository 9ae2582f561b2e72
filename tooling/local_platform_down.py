"""`make down`: stop the emulator, and with it the `local` deployment of every workspace; forget their state."""
from __future__ import annotations

import sys

from .local_platform import destroy


def main() -> int:
    destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
