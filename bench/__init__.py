"""fusebench harness: config, data, training, evaluation, profiling, sweeps, studies, reports."""

import os

# The torch profiler (used for CPU peak memory) logs kineto start/stop lines to stderr
# unless told not to; set before torch is imported.
os.environ.setdefault("KINETO_LOG_LEVEL", "5")

__version__ = "0.1.0"
