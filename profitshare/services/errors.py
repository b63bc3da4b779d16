"""Errors the services raise for bad input; each changes nothing (raised before any write or
inside the transaction that is rolled back)."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of service errors."""


class InvalidInput(ServiceError):
    """A field's value is not acceptable. ``field``: its name; ``message``: why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(ServiceError):
    """The referenced object does not exist. ``what``: e.g. ``"bot"``; ``key``: its id."""

    def __init__(self, what: str, key: str) -> None:
        super().__init__(f"{what} {key!r} not found")
        self.what = what
        self.key = key


class Conflict(ServiceError):
    """The request contradicts what is already recorded (e.g. a close id with another body)."""
