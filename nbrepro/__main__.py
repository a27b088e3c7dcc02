"""``python -m nbrepro``: the ``nbrepro`` command line."""

from __future__ import annotations

import sys

from nbrepro.commands.cli import main

if __name__ == "__main__":
    sys.exit(main())
