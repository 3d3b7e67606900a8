"""The exceptions of the ivr package.

Every failed library call raises an :class:`Error` (or a subclass chosen by its code); the
message is the library's, which names the field and the reason. The compiled module builds
them through :func:`_make_error` and :func:`_make_validation_error`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple, Type

__all__ = [
    "ErrorCode",
    "Error",
    "InvalidArgumentError",
    "NotFoundError",
    "StateError",
    "GoneError",
    "Problem",
    "ValidationError",
    "DbError",
]


class ErrorCode(enum.IntEnum):
    """The C ABI's IVR_E* codes (negative)."""

    EINVAL = -1
    ENOMEM = -2
    ESTATE = -3
    ENOTFOUND = -4
    EGONE = -5
    EIO = -6
    ESIP = -7
    EMEDIA = -8
    EVERSION = -9
    EBUSY = -10
    EPARSE = -11
    EUNSUPPORTED = -12
    EINTERNAL = -99


class Error(Exception):
    """A failed library call. ``code`` is the IVR_E* value; ``str()`` the library's message,
    which names the field and the reason."""

    def __init__(self, message: str, code: int = ErrorCode.EINTERNAL) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def code_name(self) -> str:
        """The code's name ("EINVAL"), or its number when unknown."""
        try:
            return ErrorCode(self.code).name
        except ValueError:
            return str(self.code)


class InvalidArgumentError(Error, ValueError):
    """An argument or option the library refused (IVR_EINVAL, IVR_EPARSE)."""


class NotFoundError(Error, LookupError):
    """No such flow, version, connector, webhook or dead letter (IVR_ENOTFOUND)."""


class StateError(Error):
    """Not allowed now: started twice, the engine closed, a request completed twice
    (IVR_ESTATE)."""


class GoneError(StateError):
    """The call or the engine has ended (IVR_EGONE)."""


@dataclass(frozen=True)
class Problem:
    """One problem of a flow document: where (JSON Pointer; 1-based line and column, 0 when
    unknown) and why."""

    pointer: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.pointer}: {self.message}"


class ValidationError(InvalidArgumentError):
    """A flow document refused as a whole. ``problems`` lists every problem in document
    order; ``text`` has them one per line."""

    def __init__(self, message: str, problems: Sequence[Problem] = (), text: str = "") -> None:
        super().__init__(message, ErrorCode.EPARSE)
        self.problems: List[Problem] = list(problems)
        self.text = text

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(str(p) for p in self.problems)


class DbError(Exception):
    """Raised by a db connector to fail its query with a given reason: ``status`` is
    "timeout", "connect", "query" or "busy" (steps.<node>.reason), the message becomes
    steps.<node>.error. Any other exception fails the query with reason "query"."""

    STATUSES = ("timeout", "connect", "query", "busy")

    def __init__(self, status: str, message: str) -> None:
        if status not in self.STATUSES:
            raise ValueError(f"status: {status!r} is not one of {', '.join(self.STATUSES)}")
        super().__init__(message)
        self.status = status
        self.message = message


_BY_CODE: Dict[int, Type[Error]] = {
    ErrorCode.EINVAL: InvalidArgumentError,
    ErrorCode.EPARSE: InvalidArgumentError,
    ErrorCode.ENOTFOUND: NotFoundError,
    ErrorCode.ESTATE: StateError,
    ErrorCode.EGONE: GoneError,
}


def _make_error(code: int, message: str) -> Error:
    return _BY_CODE.get(code, Error)(message, code)


def _make_validation_error(
    message: str, problems: Iterable[Tuple[str, int, int, str]], text: str
) -> ValidationError:
    return ValidationError(message, [Problem(*p) for p in problems], text)
