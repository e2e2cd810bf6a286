"""``python -m bench.cli`` (what torchrun and the tests launch) = ``fusebench``."""

import sys

from bench.cli import main

if __name__ == "__main__":  # not when a spawned sweep worker re-imports this module
    sys.exit(main())
