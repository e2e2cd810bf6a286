"""``python -m bench.cli`` (what torchrun and the tests launch) = ``fusebench``."""

import sys

from bench.cli import main

sys.exit(main())
