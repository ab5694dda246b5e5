"""insitu's exception classes, one per stable error code.

Every error raised by insitu is an :class:`Error`; its subclass (named after the stable
code, e.g. ``NotFound``; code 11's is ``ServerError``) says what went wrong and
also derives from the built-in exception a Python user would catch for it (``NotFound``
is a ``LookupError``, ``Timeout`` a ``TimeoutError``, ...). ``str(e)`` is the message
exactly as the server or library wrote it (``ERR tensor key is empty ...``), ``e.code``
the stable number shared with the C status codes and Fortran ``ierr``.
"""

from __future__ import annotations

import builtins

from ._native import ERROR_CODES as _CODES

__all__ = [
    "Error",
    "BadInput",
    "NotFound",
    "WrongType",
    "OutOfMemory",
    "LimitExceeded",
    "Io",
    "Protocol",
    "Auth",
    "Timeout",
    "Unsupported",
    "ServerError",
    "Internal",
    "CODES",
]


class Error(Exception):
    """Base class of every insitu error."""

    code: int = 0

    def __init__(self, message: str = "", code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        """The error text, with its RESP prefix word (``ERR``, ``WRONGTYPE``, ...)."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return self.message


class BadInput(Error, ValueError):
    """A request was malformed or an argument was invalid."""

    code = _CODES["BadInput"]


class NotFound(Error, LookupError):
    """The key (tensor, dataset, model, list) does not exist."""

    code = _CODES["NotFound"]


class WrongType(Error, TypeError):
    """The key holds a value of another kind."""

    code = _CODES["WrongType"]


class OutOfMemory(Error, MemoryError):
    """The server's memory limit would be exceeded (nothing stored changed)."""

    code = _CODES["OutOfMemory"]


class LimitExceeded(Error, ValueError):
    """A configured limit (frame size, dims, tensor bytes, clients) was exceeded."""

    code = _CODES["LimitExceeded"]


class Io(Error, OSError):
    """A socket or file failed, or the client is closed."""

    code = _CODES["Io"]


class Protocol(Error):
    """The peer broke the wire protocol."""

    code = _CODES["Protocol"]


class Auth(Error, PermissionError):
    """Authentication is required or failed."""

    code = _CODES["Auth"]


class Timeout(Error, builtins.TimeoutError):
    """An operation did not finish in the time allowed."""

    code = _CODES["Timeout"]


class Unsupported(Error, NotImplementedError):
    """Not supported by this build or configuration (e.g. GPU without CUDA)."""

    code = _CODES["Unsupported"]


class ServerError(Error):
    """The server replied with an error this client could not classify. (Not ``Server``:
    that name is :class:`insitu.Server`, the embedded server.)"""

    code = _CODES["Server"]


class Internal(Error):
    """An invariant did not hold: a bug, please report it."""

    code = _CODES["Internal"]


CODES: dict[int, type[Error]] = {
    c.code: c
    for c in (
        BadInput,
        NotFound,
        WrongType,
        OutOfMemory,
        LimitExceeded,
        Io,
        Protocol,
        Auth,
        Timeout,
        Unsupported,
        ServerError,
        Internal,
    )
}
