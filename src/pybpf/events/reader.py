"""What every event reader shares: its lifetime, its asyncio wait, and how callback failures
are reported.

:class:`EpollReader` is the base of :class:`~.RingBuffer`, :class:`~.PerfBuffer` and
:class:`~.UserRingBuffer`; the two consumers add :meth:`ConsumingReader.fileno` (the producer
has no descriptor worth handing out).
"""

from __future__ import annotations

import contextlib
from typing import Any

from pybpf.closing import Closing
from pybpf.errors import ClosedError

from .aio import wait_readable
from .poller import Poller


def note_callback_failure(exc: BaseException, what: str, index: int) -> None:
    """Tell, on the user's own exception, which record its callback failed on.

    The exception is re-raised unchanged (its type is the user's contract); the record index is
    attached both as a PEP 678 note, for tracebacks, and as ``exc.record_index``, for code.
    """
    exc.add_note(f"raised by the callback on record #{index} of {what}")
    # Exceptions with __slots__ cannot carry the attribute; the note still does.
    with contextlib.suppress(AttributeError):
        exc.record_index = index  # type: ignore[attr-defined]


class EpollReader(Closing):
    """What every reader's lifetime shares: a :class:`~.poller.Poller` and its close protocol.

    A subclass creates ``self._poller = Poller(name, self._release)`` and implements
    :meth:`_release`, which the poller runs exactly once, when the last session has ended
    after :meth:`close` (see :mod:`.poller` for why close cannot simply release at once).
    """

    _poller: Poller[Any]

    @property
    def closed(self) -> bool:
        return self._poller.closed

    def close(self) -> None:
        """Release everything the reader holds; idempotent, and safe from any thread.

        A thread blocked waiting on the reader is woken.  From another thread, the consumer or
        producer stops at its next pass (or record, when iterating) and the resources go once
        it has; a callback still running after half a second releases them itself when it
        returns, so ``close()`` never waits longer.
        """
        self._poller.close()

    def _release(self) -> None:
        """Unmap and close what the reader holds; run once, by the poller, after close()."""
        raise NotImplementedError

    def __del__(self) -> None:
        # The poller may never have been made, when the constructor failed before it.
        poller = getattr(self, "_poller", None)
        if poller is not None and not poller.closed:
            poller.close()

    async def _wait_ready(self, timeout: float | None) -> bool:
        """Wait on the running loop until the epoll set is readable; False on timeout or close.

        The wait is a session of its own, so a ``close()`` meanwhile wakes it (the eventfd is
        in the set) without releasing the descriptor the loop is watching.
        """
        poller = self._poller
        try:
            poller.enter()
        except ClosedError:
            return False
        try:
            ready = await wait_readable(poller.fileno(), timeout)
        finally:
            poller.leave()
        return ready and not poller.closed


class ConsumingReader(EpollReader):
    """A reader whose epoll set can be handed to an outside event loop."""

    def fileno(self) -> int:
        """The epoll descriptor (readable when any ring has data), for outside event loops."""
        return self._poller.fileno()
