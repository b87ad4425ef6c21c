"""The one error type that means "the caller sent something wrong" (HTTP 400, CLI exit 2)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from a user or client; the message says what was wrong and where."""
