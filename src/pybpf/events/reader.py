"""What every event reader shares: telling the user which record their callback failed on."""

from __future__ import annotations

import contextlib


def note_callback_failure(exc: BaseException, what: str, index: int) -> None:
    """Tell, on the user's own exception, which record its callback failed on.

    The exception is re-raised unchanged (its type is the user's contract); the record index is
    attached both as a PEP 678 note, for tracebacks, and as ``exc.record_index``, for code.
    """
    exc.add_note(f"raised by the callback on record #{index} of {what}")
    # Exceptions with __slots__ cannot carry the attribute; the note still does.
    with contextlib.suppress(AttributeError):
        exc.record_index = index  # type: ignore[attr-defined]
