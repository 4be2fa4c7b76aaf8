"""The waiting half of every reader: one epoll set, a wake-up eventfd, and a safe ``close()``.

A reader's rings are registered in one epoll set, so a single ``epoll_wait`` serves any number
of maps (libbpf's ring_buffer__add).  An eventfd sits in the same set: ``close()`` signals it,
which is the only way to get a thread that is blocked in ``epoll_wait`` back out (closing the
epoll descriptor under it would not wake it).

The lifetime protocol, which every reader follows:

* ring memory and descriptors are touched only inside a *session*
  (:meth:`Poller.enter`/:meth:`Poller.leave`): a wait, a consume pass, a publish;
* ``close()`` sets :attr:`Poller.closed` and signals the eventfd in one critical section, so
  the eventfd is written while certainly open: it is closed only by the release, and the
  release happens only after someone has seen ``closed``, under the same lock;
* a consuming thread looks at ``closed`` at least once per pass over a bounded number of
  records and ends its session when it is set, so a producer keeping the ring full cannot keep
  ``close()`` waiting;
* whoever ends last releases the reader's resources, exactly once: ``close()`` itself once no
  session is active, else the last session to end.  ``close()`` waits for that at most
  :data:`CLOSE_WAIT` seconds (a callback may be slow; a thread closing from inside a callback
  cannot wait for itself at all), so it always returns promptly.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from pybpf.errors import ClosedError
from pybpf.kernel.events_sys import eventfd, eventfd_signal

K = TypeVar("K", bound=Hashable)

_MAX_EVENTS = 64
CLOSE_WAIT = 0.5
"""Seconds ``close()`` waits for other threads' sessions before leaving the release to them."""


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
        self._released = False
        self.closed = False
        """True once :meth:`close` was called (resources may still be in use briefly).

        A plain attribute, not a property: consume loops read it once per pass."""

    def fileno(self) -> int:
        """The epoll descriptor: readable when a ring has data or the reader was closed.

        Valid until the release (so inside a session even after ``close()``).
        """
        if self._released:
            raise ClosedError(f"{self.what} is closed")
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
            if self.closed:
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
            if not self.closed or self._released:
                return
            self._released = True
        self._release()

    def close(self) -> None:
        """Wake any waiter, then release, or leave that to the sessions still running.

        Returns within :data:`CLOSE_WAIT` seconds: consumers notice ``closed`` between passes,
        and a callback slower than that releases the resources itself when it returns.
        """
        me = threading.get_ident()
        with self._lock:
            if self.closed:
                return
            self.closed = True
            eventfd_signal(self._wake)  # under the lock: no release can have closed it
            if me in self._active:
                return  # called from a callback: our own leave() releases
            if not self._idle.wait_for(lambda: not self._active, CLOSE_WAIT):
                return  # the last leave() releases
            if self._released:
                return
            self._released = True
        self._release()

    def _release(self) -> None:
        try:
            self._release_owner()
        finally:
            # Drop the rings too: one a records() view still pins keeps its mapping (and the
            # descriptor mmap holds) only as long as that view lives.
            self._keys.clear()
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
