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


# What a caller is told a dependency is: which one, never where it is.
_DEPENDENCY_LABELS = {"redis": "job store (Redis)"}


class DependencyUnavailableError(NeonomalyError):
    """A backing service (graph store, Redis) cannot be reached.

    The message names the dependency and nothing else: it reaches unauthenticated callers
    (a 503 before the key is checked) and users' job records. `detail` (the driver's error,
    with hosts and ports) is for the log only.
    """

    def __init__(self, dependency: str, detail: str = "") -> None:
        self.dependency = dependency
        self.detail = detail
        self.label = _DEPENDENCY_LABELS.get(dependency, dependency)
        super().__init__(f"the {self.label} is unavailable")

    def __repr__(self) -> str:
        return f"DependencyUnavailableError({self.dependency!r}, {self.detail!r})"


class MalformedRequestError(NeonomalyError):
    """The body cannot be decoded (bad compression, protobuf or JSON): resending the same
    bytes can never work, so agents must not retry it (400)."""


class TooLargeError(NeonomalyError):
    """The body, once decoded, or what it asks for in one request, is over a documented
    limit (413): the sender must split it."""


class LimitExceededError(NeonomalyError):
    """Past a rate or cardinality limit of the owner (429): later, or with fewer series,
    it may succeed; for a rate, `retry_after_seconds` says when (a Retry-After header)."""

    def __init__(self, message: str, retry_after_seconds: int | None = None) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message)
