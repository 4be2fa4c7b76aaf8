"""Ownership of kernel file descriptors.

Every BPF object (map, program, link, BTF) and perf event lives exactly as long as some file
descriptor refers to it.  A bare ``int`` cannot express who must close it, so every function in
:mod:`pybpf.kernel` that creates a descriptor returns an :class:`Fd` instead: closing is
idempotent, ``with`` scopes it, and a garbage-collected ``Fd`` closes itself (with a
``ResourceWarning``, as Python's own files do) so that a forgotten handle cannot pin a kernel
object for the life of the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import warnings

from pybpf.closing import Closing

_MIN_FD = 3
"""Descriptors below this are stdin/stdout/stderr; we never hand those out (as libbpf does)."""


class Fd(Closing):
    """An owned file descriptor; ``fileno()`` borrows it, ``close()`` releases it."""

    __slots__ = ("__weakref__", "_fd", "_what")

    def __init__(self, fd: int, what: str = "fd") -> None:
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        self._fd = fd
        self._what = what

    @classmethod
    def adopt(cls, fd: int, what: str = "fd") -> Fd:
        """Take ownership of a descriptor fresh from a syscall.

        If a caller closed stdin/stdout/stderr the kernel may hand us 0, 1 or 2; a BPF object
        living there would be clobbered by the next ``print``.  Such descriptors are moved to
        the lowest free number >= 3 (close-on-exec), and the low one is released.
        """
        if fd >= _MIN_FD:
            return cls(fd, what)
        try:
            moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _MIN_FD)
        finally:
            os.close(fd)
        return cls(moved, what)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`detach` has run."""
        return self._fd < 0

    def fileno(self) -> int:
        """The descriptor number, still owned by this object."""
        if self._fd < 0:
            raise ValueError(f"operation on closed {self._what}")
        return self._fd

    def close(self) -> None:
        """Close the descriptor; further calls do nothing."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def detach(self) -> int:
        """Give up ownership and return the raw number; the caller must close it."""
        fd = self.fileno()
        self._fd = -1
        return fd

    def dup(self) -> Fd:
        """A new, independently owned descriptor for the same kernel object."""
        return Fd(fcntl.fcntl(self.fileno(), fcntl.F_DUPFD_CLOEXEC, _MIN_FD), self._what)


    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            # At interpreter shutdown the warnings machinery may already be gone.
            with contextlib.suppress(Exception):
                warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2)
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else str(self._fd)
        return f"<{type(self).__name__} {self._what} {state}>"


FdLike = Fd | int
"""What the kernel layer accepts where it only *borrows* a descriptor."""


def raw_fd(fd: FdLike) -> int:
    """The number behind ``fd`` without taking ownership."""
    return fd if isinstance(fd, int) else fd.fileno()
