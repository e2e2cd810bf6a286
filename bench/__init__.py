"""fusebench harness: config, data, training, evaluation, profiling, sweeps, studies, reports."""

__version__ = "0.1.0"
