"""The one exception type for mistakes a user can make.

Raised anywhere (config, registry, data, sweeps); ``bench.cli`` turns it into exit code 2
and one line on stderr. Everything else is a bug and keeps its traceback. It lives in the
model library, which depends on nothing in the harness; ``bench.errors`` re-exports it.
"""


class UserError(Exception):
    """Bad input from the user: unknown name, invalid value, missing file, ..."""
