"""The waiting half of every reader: one epoll set, a wake-up eventfd, and a safe ``close()``.

A reader's rings are registered in one epoll set, so a single ``epoll_wait`` serves any number
of maps (libbpf's ring_buffer__add).  An eventfd sits in the same set: ``close()`` signals it,
which is the only way to get a thread that is blocked in ``epoll_wait`` back out (closing the
epoll descriptor under it would not wake it).

``close()`` must not unmap memory another thread is reading, nor close the epoll descriptor
another thread is about to wait on; so every wait-and-consume pass runs inside a *session*
(:meth:`Poller.enter`/:meth:`Poller.leave`) and the reader's resources are released by whoever
ends last: ``close()`` itself, once no session is active, or the last session to end when
``close()`` was called from inside a callback (a thread cannot wait for itself).
"""

from __future__ import annotations

import select
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from pybpf.kernel.events_sys import eventfd, eventfd_signal

from .errors import ClosedError

K = TypeVar("K", bound=Hashable)

_MAX_EVENTS = 64


class Poller(Generic[K]):
    """epoll over keyed descriptors plus the close() wake-up, with session bookkeeping."""

    def __init__(self, what: str, release: Callable[[], None]) -> None:
        self.what = what
        self._release_owner = release
        self._keys: dict[int, K] = {}
        self._ep = select.epoll()
        try:
            self._wake = eventfd()
        except BaseException:
            self._ep.close()
            raise
        self._wake_fd = self._wake.fileno()
        self._ep.register(self._wake_fd, select.EPOLLIN)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active: dict[int, int] = {}
        self._closed = False
        self._released = False

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called (resources may still be in use briefly)."""
        return self._closed

    def fileno(self) -> int:
        """The epoll descriptor: readable when a ring has data or the reader was closed."""
        return self._ep.fileno()

    def register(self, fd: int, key: K, events: int = select.EPOLLIN) -> None:
        """Watch ``fd``; :meth:`wait` reports it as ``key``."""
        self._ep.register(fd, events)
        self._keys[fd] = key

    # --- sessions ----------------------------------------------------------------------------

    def enter(self) -> None:
        """Start a session (a wait and/or consume pass); fails once closed."""
        me = threading.get_ident()
        with self._lock:
            if self._closed:
                raise ClosedError(f"{self.what} is closed")
            self._active[me] = self._active.get(me, 0) + 1

    def leave(self) -> None:
        """End a session; the last one out after ``close()`` releases everything."""
        me = threading.get_ident()
        with self._lock:
            left = self._active[me] - 1
            if left:
                self._active[me] = left
            else:
                del self._active[me]
            if self._active:
                return
            self._idle.notify_all()
            if not self._closed or self._released:
                return
            self._released = True
        self._release()

    def close(self) -> None:
        """Close: wake any waiter, then release once no other thread is inside a session."""
        me = threading.get_ident()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            inside = me in self._active
        eventfd_signal(self._wake)
        with self._lock:
            if inside:
                return  # called from a callback: our own leave() releases
            self._idle.wait_for(lambda: not self._active)
            if self._released:
                return
            self._released = True
        self._release()

    def _release(self) -> None:
        try:
            self._release_owner()
        finally:
            self._ep.close()
            self._wake.close()

    # --- waiting -----------------------------------------------------------------------------

    def wait(self, timeout: float | None) -> list[K]:
        """Keys of the ready descriptors; ``[]`` on timeout or when woken by ``close()``.

        ``timeout`` is in seconds, ``None`` waits forever.  Must run inside a session.
        """
        ready = self._ep.poll(-1 if timeout is None else timeout, _MAX_EVENTS)
        keys = self._keys
        out: list[K] = []
        for fd, _events in ready:
            if fd == self._wake_fd:
                return []
            out.append(keys[fd])
        return out
