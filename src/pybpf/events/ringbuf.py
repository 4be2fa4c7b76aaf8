"""RingBuffer: consuming BPF_MAP_TYPE_RINGBUF maps from Python.

One :class:`RingBuffer` serves any number of ring buffer maps through one epoll set (libbpf's
``ring_buffer__new`` + ``ring_buffer__add``).  Records reach Python in one of four ways, from
the most convenient to the fastest:

* ``for record in rb`` (or ``async for``): one record at a time, no callback;
* a callback per record: ``RingBuffer(map, callback)``, then :meth:`RingBuffer.poll` /
  :meth:`RingBuffer.consume`;
* a callback per batch: :meth:`RingBuffer.poll_batch` hands over a list of every ready record;
* a copy of every ready record in one piece: :meth:`RingBuffer.read_batch` returns a
  :class:`~pybpf.events.batch.RecordBatch` (with a NumPy view when records share one size).

Raw records are read-only ``memoryview`` slices of the ring itself, valid until the callback
returns (or the iterator moves on): they are released then, so keeping one fails loudly
instead of silently showing bytes a producer has since reused.  Copy with ``bytes(record)`` to
keep it.  Typed records (``event_type=``) are ctypes copies and can be kept, and so are the
records of ``async for``, which are copied (an async generator may be finalised late, so it
must not hold ring memory between records).

Throughput on the 2-CPU development machine (16-byte records, ``benchmarks/bench_events.py``):
about 7 M records/s into a per-record Python callback, 3-4 M/s as batch lists, 1.5 M/s by
iteration, and ~45 M/s with :meth:`RingBuffer.read_batch`.

A callback stops the pass by returning a negative number (the rest stays in the ring for the
next call); an exception stops it too and reaches the caller unchanged, annotated with the
index of the record that raised.  As in libbpf, a record whose callback failed is consumed.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from pybpf.abi.bpf import MapType
from pybpf.btf import Btf
from pybpf.errors import ClosedError, EventError

from .batch import RecordBatch
from .consume_ringbuf import (
    MAX_BATCH,
    Callback,
    Ring,
    collect,
    consume_raw,
    consume_typed,
    publish,
    read_ready,
    release_views,
)
from .poller import Poller
from .reader import ConsumingReader
from .source import open_map
from .typed import resolve_event_type

BatchCallback = Callable[[list[Any]], Any]


class RingBuffer(ConsumingReader):
    """Consumer of one or more ``BPF_MAP_TYPE_RINGBUF`` maps.

    ``map`` is a loaded :class:`pybpf.object.Map`, an :class:`~pybpf.kernel.fd.Fd` or a
    descriptor number.  ``event_type`` (a ctypes type, or a C type name such as
    ``"struct event"`` looked up in the map's object BTF or in ``btf``) makes records arrive as
    that type.  Not thread-safe for concurrent consumers (like libbpf's), but :meth:`close` may
    be called from any thread, including while another thread is blocked in :meth:`poll`.
    """

    def __init__(
        self,
        map: Any,
        callback: Callback | None = None,
        *,
        event_type: Any = None,
        btf: Btf | None = None,
    ) -> None:
        self._rings: list[Ring] = []
        self._guard = threading.Lock()
        self._poller: Poller[Ring] = Poller("RingBuffer", self._release)
        try:
            self.add(map, callback, event_type=event_type, btf=btf)
        except BaseException:
            self._poller.close()
            raise

    def add(
        self,
        map: Any,
        callback: Callback | None = None,
        *,
        event_type: Any = None,
        btf: Btf | None = None,
    ) -> int:
        """Consume one more ring buffer map in the same epoll set; returns its ring index."""
        self._poller.enter()
        try:
            source = open_map(map, MapType.RINGBUF, "RingBuffer")
            try:
                ctype = resolve_event_type(event_type, btf or source.btf, source.what)
                ring = Ring(source, callback, ctype, len(self._rings))
            except BaseException:
                source.fd.close()
                raise
            try:
                self._poller.register(ring.fileno(), ring)
            except BaseException:
                ring.close()
                raise
            self._rings.append(ring)
            return ring.index
        finally:
            self._poller.leave()

    # --- callbacks -------------------------------------------------------------------------

    def poll(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (``None``: forever) for records, then consume them.

        Returns how many records were handed to callbacks; 0 on timeout or when the
        buffer was closed by another thread while waiting.
        """
        self._poller.enter()
        try:
            ready = self._poller.wait(timeout)
            if not ready or self._poller.closed:
                return 0
            return self._consume(ready)
        finally:
            self._poller.leave()

    def consume(self) -> int:
        """Consume every ready record of every ring without waiting; returns how many."""
        self._poller.enter()
        try:
            return self._consume(self._rings)
        finally:
            self._poller.leave()

    def _consume(self, rings: list[Ring]) -> int:
        self._acquire()
        try:
            total = 0
            for ring in rings:
                callback = ring.callback
                if callback is None:
                    raise EventError(
                        f"{ring.what} has no callback: iterate over the RingBuffer or use "
                        "poll_batch()/read_batch()"
                    )
                ring.stopped = False
                if ring.ctype is None:
                    total += consume_raw(ring, callback, self._poller)
                else:
                    total += consume_typed(ring, callback, self._poller)
                if ring.stopped:
                    break
            return total
        finally:
            self._guard.release()

    def _acquire(self) -> None:
        if not self._guard.acquire(blocking=False):
            raise EventError(
                "RingBuffer is already being consumed (by another thread, an unfinished "
                "iterator, or the callback running now)"
            )

    # --- batches ---------------------------------------------------------------------------

    def poll_batch(self, callback: BatchCallback, timeout: float | None = None) -> int:
        """Wait like :meth:`poll`, then call ``callback(records)`` once per ready ring."""
        self._poller.enter()
        try:
            ready = self._poller.wait(timeout)
            if not ready or self._poller.closed:
                return 0
            return self._consume_batch(ready, callback)
        finally:
            self._poller.leave()

    def consume_batch(self, callback: BatchCallback) -> int:
        """Call ``callback(records)`` with lists of every ready record, ring by ring.

        The records are zero-copy views (or typed copies) valid until the callback returns;
        the ring space is handed back after it.  A list holds at most ``MAX_BATCH`` (65536)
        records; more ready records come in further calls.  Returns how many were delivered.
        """
        self._poller.enter()
        try:
            return self._consume_batch(self._rings, callback)
        finally:
            self._poller.leave()

    def _consume_batch(self, rings: list[Ring], callback: BatchCallback) -> int:
        self._acquire()
        try:
            total = 0
            poller = self._poller
            for ring in rings:
                while not poller.closed:  # stop between batches once closed
                    records: list[Any] = []
                    end = collect(ring, records)
                    if records:
                        try:
                            callback(records)
                        except BaseException as exc:
                            exc.add_note(f"raised by the batch callback of {ring.what}")
                            raise
                        finally:
                            release_views(records)
                            publish(ring, end)
                        total += len(records)
                    elif end != ring.cons_q[0]:
                        publish(ring, end)  # only discarded records: skip them
                    if len(records) < MAX_BATCH:
                        break
            return total
        finally:
            self._guard.release()

    def read_batch(self, timeout: float | None = 0) -> RecordBatch:
        """Copy every ready record of every ring into one :class:`RecordBatch`.

        The ring space is handed back at once, so the batch may be kept.  With a non-zero
        ``timeout`` and nothing ready, waits that long (``None``: forever) first.
        """
        return RecordBatch.concat(self.read_batches(timeout))

    def read_batches(self, timeout: float | None = 0) -> list[RecordBatch]:
        """Like :meth:`read_batch`, one batch per ring (in :meth:`add` order)."""
        self._poller.enter()
        try:
            self._acquire()
            try:
                batches = [read_ready(ring) for ring in self._rings]
            finally:
                self._guard.release()
            if timeout == 0 or any(len(b) for b in batches):
                return batches
            if not self._poller.wait(timeout) or self._poller.closed:
                return batches
            self._acquire()
            try:
                return [read_ready(ring) for ring in self._rings]
            finally:
                self._guard.release()
        finally:
            self._poller.leave()

    # --- iteration -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        return self.records()

    def records(self, timeout: float | None = None) -> Iterator[Any]:
        """Yield records one by one; stop after ``timeout`` seconds without any, or on close.

        ``timeout=0`` drains what is ready and stops.  A yielded view is valid until the next
        one is requested.  Leaving the loop early consumes exactly the records yielded; so does
        a ``close()`` from another thread, after which the next request ends the loop.

        Between records the generator holds views only, no session (it may be suspended for
        ever): a view keeps its part of the mapping alive even past ``close()``, and every
        access to the ring itself (collecting, publishing) runs in a session of its own.
        """
        poller = self._poller
        self._acquire()
        try:
            while True:
                pending = self._collect_ready()
                if pending is None:
                    return
                if not pending:
                    if timeout == 0 or not self._wait(timeout):
                        return
                    continue
                for ring, records, ends in pending:
                    used = None
                    try:
                        raw = ring.ctype is None
                        for record, end in zip(records, ends, strict=True):
                            if poller.closed:
                                return
                            used = end  # handed over, hence consumed even if we stop here
                            yield record
                            if raw:
                                try:  # noqa: SIM105 (per record: no context manager)
                                    record.release()
                                except BufferError:
                                    pass
                    finally:
                        release_views(records)
                        if used is not None:
                            self._publish_unless_closed(ring, used)
        finally:
            self._guard.release()

    def _collect_ready(self) -> list[tuple[Ring, list[Any], array[int]]] | None:
        """Records of every ring (not yet consumed); ``None`` once closed."""
        try:
            self._poller.enter()
        except ClosedError:
            return None
        try:
            pending = []
            for ring in self._rings:
                records: list[Any] = []
                ends = array("q")
                end = collect(ring, records, ends)
                if records:
                    pending.append((ring, records, ends))
                elif end != ring.cons_q[0]:
                    publish(ring, end)
            return pending
        finally:
            self._poller.leave()

    def _wait(self, timeout: float | None) -> bool:
        try:
            self._poller.enter()
        except ClosedError:
            return False
        try:
            return bool(self._poller.wait(timeout)) and not self._poller.closed
        finally:
            self._poller.leave()

    def _publish_unless_closed(self, ring: Ring, end: int) -> None:
        try:
            self._poller.enter()
        except ClosedError:
            return
        try:
            publish(ring, end)
        finally:
            self._poller.leave()

    # --- asyncio ---------------------------------------------------------------------------

    async def poll_async(self, timeout: float | None = None) -> int:
        """:meth:`poll` for asyncio: waits on the running loop instead of blocking it."""
        self._poller.enter()
        try:
            count = self._consume(self._rings)
            if count:
                return count
            if not await self._wait_ready(timeout):
                return 0
            return self._consume(self._rings)
        finally:
            self._poller.leave()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self.records_async()

    async def records_async(self, timeout: float | None = None) -> AsyncIterator[Any]:
        """``async for`` twin of :meth:`records`, yielding copies (``bytes`` or typed).

        An async generator left early is finalised only later by the event loop, so this one
        holds nothing between records: each record is copied and consumed before it is
        yielded (leaving the loop consumes exactly the records yielded), and the RingBuffer
        stays usable from the loop body.
        """
        while True:
            record = self._take_one()
            if record is not None:
                yield record
                continue
            if not await self._wait_ready(timeout):
                return

    def _take_one(self) -> Any:
        """Copy out and consume the next committed record of any ring; None if none/closed."""
        try:
            self._poller.enter()
        except ClosedError:
            return None
        try:
            self._acquire()
            try:
                for ring in self._rings:
                    records: list[Any] = []
                    ends = array("q")
                    end = collect(ring, records, ends, limit=1)
                    if records:
                        record = records[0]
                        if isinstance(record, memoryview):
                            copy = record.tobytes()
                            record.release()
                            record = copy
                        publish(ring, end)
                        return record
                    if end != ring.cons_q[0]:
                        publish(ring, end)  # discarded records only
                return None
            finally:
                self._guard.release()
        finally:
            self._poller.leave()

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def rings(self) -> int:
        """How many ring buffer maps this reader consumes."""
        return len(self._rings)

    def pending(self) -> int:
        """Bytes written by producers and not yet consumed, over every ring (headers too)."""
        self._poller.enter()
        try:
            return sum(ring.pending() for ring in self._rings)
        finally:
            self._poller.leave()

    def _release(self) -> None:
        """Unmap every ring and close every descriptor."""
        rings, self._rings = self._rings, []
        for ring in rings:
            ring.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._rings)} rings"
        return f"<RingBuffer {state}>"
