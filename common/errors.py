"""Errors the domain raises; the web layer maps each to one HTTP status."""

from typing import TypeVar

T = TypeVar("T")


class NeonomalyError(Exception):
    """Base class: the message is written for the person who called the API."""


class NotFoundError(NeonomalyError):
    """The thing does not exist, or belongs to someone else (both look the same)."""


def found(thing: T | None, what: str) -> T:
    """`thing` as the store returned it; NotFoundError ("`what` not found") if it found none."""
    if thing is None:
        raise NotFoundError(f"{what} not found")
    return thing


class ConflictError(NeonomalyError):
    """The request clashes with what is stored (a duplicate name, say)."""


class InvalidRequestError(NeonomalyError):
    """The request is well-formed but cannot be acted on (too few readings, say)."""


class GoneError(NeonomalyError):
    """The thing existed but is no longer kept (a job's result past its TTL)."""


class DependencyUnavailableError(NeonomalyError):
    """A backing service (graph store, Redis) cannot be reached."""

    def __init__(self, dependency: str, detail: str = "") -> None:
        self.dependency = dependency
        self.detail = detail
        super().__init__(f"{dependency} is unavailable" + (f": {detail}" if detail else ""))


class LimitExceededError(NeonomalyError):
    """Past a rate or cardinality limit of the owner (429): later, or with fewer series,
    it may succeed."""
