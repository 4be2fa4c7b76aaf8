"""Errors of event streaming.

They are :class:`~pybpf.errors.BpfError` subclasses so that ``except BpfError`` keeps catching
everything pybpf raises on purpose; each message names the map it is about.
"""

from __future__ import annotations

import contextlib

from pybpf.errors import BpfError


class EventError(BpfError):
    """A ring buffer, perf buffer or user ring buffer was misused or met malformed data."""


class MapTypeError(EventError, TypeError):
    """The map given is not of the type the reader needs (e.g. a HASH given to RingBuffer)."""


class ClosedError(EventError):
    """The reader was used after ``close()``."""


def note_callback_failure(exc: BaseException, what: str, index: int) -> None:
    """Tell, on the user's own exception, which record its callback failed on.

    The exception is re-raised unchanged (its type is the user's contract); the record index is
    attached both as a PEP 678 note, for tracebacks, and as ``exc.record_index``, for code.
    """
    exc.add_note(f"raised by the callback on record #{index} of {what}")
    # Exceptions with __slots__ cannot carry the attribute; the note still does.
    with contextlib.suppress(AttributeError):
        exc.record_index = index  # type: ignore[attr-defined]
