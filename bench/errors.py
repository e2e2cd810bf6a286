"""The harness's name for the one user-error type (defined beside the models it guards:
``variants.errors``, so the model library never imports the harness)."""

from variants.errors import UserError

__all__ = ["UserError"]
