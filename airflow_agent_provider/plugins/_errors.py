"""
The errors the Operations app answers with its own status: a store that cannot be opened (503) and
nothing recorded for what was asked (404). Shared by the app (its exception handlers) and its routes.
"""

from __future__ import annotations


class StoreError(Exception):
    """The store could not be opened: answered as 503 (the cause's text only to who may see it)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class NotFound(Exception):
    """Nothing recorded for what was asked: answered as 404."""


__all__ = ["NotFound", "StoreError"]
