"""UserRingBuffer: producing records for BPF programs (``BPF_MAP_TYPE_USER_RINGBUF``).

The user ring buffer is the BPF ring buffer with the roles swapped: user space reserves and
commits records, a program drains them with ``bpf_user_ringbuf_drain``.  The protocol
(``kernel/bpf/ringbuf.c``, ``__bpf_user_ringbuf_peek``):

* reserve: check free space against the kernel's ``consumer_pos``, write the header as
  ``len | BUSY``, then publish ``producer_pos`` past the record;
* submit: clear BUSY in the header (discard: set DISCARD instead), which is the release that
  lets the kernel read the payload.

Records are drained strictly in order, so a reserved record that is never submitted blocks all
the records after it: :class:`Reservation` is a context manager that submits on success and
discards when the block raises.  The data area is mapped twice in a row (as for RINGBUF), so a
reservation that wraps the end of the ring is still one writable slice.
"""

from __future__ import annotations

import contextlib
import ctypes
import select
import threading
import time
from types import TracebackType
from typing import Any, Self

from pybpf.abi.bpf import MapType
from pybpf.errors import ClosedError, EventError
from pybpf.kernel.buffers import Bytes
from pybpf.kernel.events_sys import user_ringbuf_mmap
from pybpf.kernel.system import page_size

from .consume_ringbuf import (
    BPF_RINGBUF_BUSY_BIT,
    BPF_RINGBUF_DISCARD_BIT,
    BPF_RINGBUF_HDR_SZ,
    release_mapping,
)
from .poller import Poller
from .reader import EpollReader
from .source import open_map
from .typed import resolve_event_type

_FLAGS = BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT


class Reservation:
    """Space reserved in a user ring buffer: fill :attr:`data`, then submit or discard.

    ``data`` is a writable ``memoryview`` of exactly the reserved size; ``value`` is a ctypes
    view of it when the reservation was made for a ctypes type.  Neither may be used after
    submit/discard: the kernel may be reading the record by then.
    """

    __slots__ = ("_done", "_owner", "_word", "data", "size", "value")

    def __init__(
        self, owner: UserRingBuffer, word: int, data: memoryview, size: int, value: Any
    ) -> None:
        self._owner = owner
        self._word = word
        self._done = False
        self.data = data
        self.size = size
        self.value = value

    @property
    def done(self) -> bool:
        """True once submitted or discarded."""
        return self._done

    def submit(self) -> None:
        """Commit the record: the next ``bpf_user_ringbuf_drain`` will see it."""
        self._finish(self.size)

    def discard(self) -> None:
        """Give the space back without the program seeing a record."""
        self._finish(self.size | BPF_RINGBUF_DISCARD_BIT)

    def _finish(self, header: int) -> None:
        if self._done:
            if self._owner.closed:
                raise ClosedError(f"{self._owner.what} is closed: open reservations were discarded")
            raise EventError("reservation already submitted or discarded")
        self._done = True
        self.value = None
        with contextlib.suppress(BufferError):  # a ctypes view may still hold it
            self.data.release()
        self._owner._commit(self._word, header)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._done:
            return
        if exc_type is None:
            self.submit()
        else:
            self.discard()


class UserRingBuffer(EpollReader):
    """Producer side of a ``BPF_MAP_TYPE_USER_RINGBUF`` map.

    Reservations are serialised by a lock, so several threads may produce; records reach the
    program in reservation order.  :meth:`close` discards reservations still open; it may be
    called from any thread (the poller's lifetime protocol, :mod:`.poller`), and the lock also
    orders it against a concurrent submit, which then either lands first or finds its record
    discarded, never a released mapping.
    """

    def __init__(self, map: Any) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, Reservation] = {}
        self._types: dict[Any, Any] = {}
        self._source = source = open_map(
            map, MapType.USER_RINGBUF, "UserRingBuffer"
        )
        self.what = f"user ring buffer {source.what}"
        self.size = size = source.max_entries
        self._mask = size - 1
        try:
            self._cons_mm, self._prod_mm = user_ringbuf_mmap(source.fd, size, source.what)
        except BaseException:
            source.fd.close()
            raise
        self._cons_q = memoryview(self._cons_mm).cast("Q")
        producer = memoryview(self._prod_mm)
        self._prod_q = producer[:8].cast("Q")
        self._data = producer[page_size() :]
        self._words = self._data.cast("I")
        producer.release()
        self._poller: Poller[int] = Poller("UserRingBuffer", self._release)
        # Edge-triggered: the map reports writable whenever *any* space is free, which would
        # spin a waiter needing more; each kernel drain wakes us once instead.
        try:
            self._poller.register(source.fd.fileno(), 0, select.EPOLLOUT | select.EPOLLET)
        except BaseException:
            self._poller.close()
            raise

    # --- producing -------------------------------------------------------------------------

    def free(self) -> int:
        """Bytes not holding records (headers and 8-byte padding count against it)."""
        self._poller.enter()
        try:
            return self.size - int(self._prod_q[0] - self._cons_q[0])
        finally:
            self._poller.leave()

    def reserve(self, size_or_type: int | type[Any] | str) -> Reservation | None:
        """Reserve a record of ``size`` bytes (or of a ctypes type); ``None`` when full now.

        A type may also be named in C (``"struct command"``), resolved in the BTF of the
        map's object; the reservation's ``value`` is then a ctypes view to fill in.

        Raises :class:`EventError` for a record that could never fit.
        """
        if isinstance(size_or_type, int):
            ctype, size = None, size_or_type
        else:
            ctype = self._types.get(size_or_type)
            if ctype is None:
                ctype = resolve_event_type(size_or_type, self._source.btf, self.what)
                self._types[size_or_type] = ctype
            size = ctypes.sizeof(ctype)
        total = (size + BPF_RINGBUF_HDR_SZ + 7) & -8
        if size < 0 or size & _FLAGS or total > self.size:
            raise EventError(f"{self.what}: a {size}-byte record cannot fit in {self.size} bytes")
        self._poller.enter()
        try:
            with self._lock:
                prod = self._prod_q[0]
                if self.size - (prod - self._cons_q[0]) < total:
                    return None
                off = prod & self._mask
                word = off >> 2
                self._words[word] = size | BPF_RINGBUF_BUSY_BIT
                self._words[word + 1] = 0
                self._prod_q[0] = prod + total
                data = self._data[off + BPF_RINGBUF_HDR_SZ : off + BPF_RINGBUF_HDR_SZ + size]
                value = None if ctype is None else ctype.from_buffer(data)
                reservation = Reservation(self, word, data, size, value)
                self._open[word] = reservation
                return reservation
        finally:
            self._poller.leave()

    def reserve_blocking(
        self, size_or_type: int | type[Any] | str, timeout: float | None = None
    ) -> Reservation:
        """:meth:`reserve`, waiting up to ``timeout`` seconds (``None``: forever) for room.

        Room appears when a program drains records; raises ``TimeoutError`` if none did in
        time and :class:`ClosedError` if the buffer is closed meanwhile.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            reservation = self.reserve(size_or_type)
            if reservation is not None:
                return reservation
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"{self.what}: no room within {timeout} s")
            self._poller.enter()
            try:
                self._poller.wait(left)
                if self._poller.closed:
                    raise ClosedError(f"{self.what} was closed while waiting for room")
            finally:
                self._poller.leave()

    def write(self, data: Bytes, timeout: float | None = 0) -> bool:
        """Reserve, copy ``data`` in and submit; False if no room within ``timeout``.

        All three steps run in one session, so a ``close()`` from another thread waits for the
        copy instead of releasing the mapping under it.
        """
        payload = memoryview(data).cast("B")
        self._poller.enter()
        try:
            if timeout == 0:
                reservation = self.reserve(len(payload))
            else:
                try:
                    reservation = self.reserve_blocking(len(payload), timeout)
                except TimeoutError:
                    return False
            if reservation is None:
                return False
            reservation.data[:] = payload
            reservation.submit()
            return True
        finally:
            self._poller.leave()

    def _commit(self, word: int, header: int) -> None:
        with self._lock:
            if self._open.pop(word, None) is not None:  # else close() discarded it already
                self._words[word] = header

    # --- lifecycle -------------------------------------------------------------------------

    def _release(self) -> None:
        """Discard open reservations, unmap, close."""
        with self._lock:  # a submit racing us either committed already or finds nothing open
            for word, reservation in self._open.items():
                reservation._done = True
                self._words[word] = reservation.size | BPF_RINGBUF_DISCARD_BIT
                with contextlib.suppress(BufferError):
                    reservation.data.release()
            self._open.clear()
            for view in (self._words, self._data, self._prod_q, self._cons_q):
                with contextlib.suppress(BufferError):
                    view.release()
        release_mapping(self._prod_mm)
        release_mapping(self._cons_mm)
        self._source.fd.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.free()} of {self.size} bytes free"
        return f"<UserRingBuffer {state}>"
