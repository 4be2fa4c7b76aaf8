"""One mapped BPF ring buffer and the loops that consume it.

Record format (``kernel/bpf/ringbuf.c``): an 8-byte header, ``u32 len`` then ``u32 pg_off``,
then ``len`` bytes of payload, the whole rounded up to 8 bytes.  Two high bits of ``len`` are
flags: BUSY (reserved, not yet committed: stop here, the producer is still writing) and DISCARD
(committed but thrown away: skip it).  Positions are free-running 64-bit byte counters; a
record lives at ``pos & mask`` of the data area, and since the kernel maps the data area twice
back to back, a record that wraps the end of the ring is still one contiguous slice.

Speed: the loops keep everything in locals, read headers through a ``memoryview`` cast to
``u32`` (one native load each: torn reads are impossible, unlike ``struct``'s byte-wise '<'
formats), deliver payloads as zero-copy slices, and publish ``consumer_pos`` once per pass over
the ready records instead of once per record: the kernel wakes the consumer when a record is
committed *at* ``consumer_pos``, so publishing before re-reading ``producer_pos`` is all that
correctness needs (the same argument libbpf's per-record stores rely on).  A pass covers at
most :data:`PASS_BYTES` of the ring and the reader's ``closed`` flag is read between passes, so
a producer that keeps the ring full cannot keep a consumer (and hence ``close()``) going.

Memory ordering: x86-64 orders loads with loads and stores with stores, which is what the
kernel's acquire/release pairs ask of us; every access here is a single aligned load or store
done in program order by the interpreter.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap as _mmap
import struct
from array import array
from collections.abc import Callable
from typing import Any

from pybpf.errors import EventError
from pybpf.kernel.events_sys import ringbuf_mmap
from pybpf.kernel.system import page_size

from .batch import RecordBatch, new_offsets
from .poller import Poller
from .reader import note_callback_failure
from .source import MapSource
from .typed import sized

BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8
_FLAGS = BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT
_LEN = ~_FLAGS & 0xFFFFFFFF

Callback = Callable[[Any], Any]

_HEAD = struct.Struct("@I")


def release_mapping(mm: _mmap.mmap) -> None:
    """Unmap, unless a record view is still held somewhere.

    A memoryview the user kept (against the documented contract) pins the mapping; Python
    then refuses to unmap it.  Dropping our reference lets the mapping go when that view dies,
    which is safe, where unmapping under it would not be.
    """
    with contextlib.suppress(BufferError):
        mm.close()


class Ring:
    """A consumer mapping of one RINGBUF map, with its callback and event type."""

    def __init__(
        self, source: MapSource, callback: Callback | None, ctype: Any, index: int
    ) -> None:
        size = source.max_entries
        if size <= 0 or size & (size - 1) or size % page_size():
            raise EventError(f"{source.what}: size {size} is not a power-of-two page multiple")
        self.source = source
        self.index = index
        self.callback = callback
        self.ctype = ctype
        self.stopped = False
        self.window = 256
        """Adaptive length of the run checks (grows while runs keep filling it)."""
        """Set when a callback returned a negative number: the pass ends there."""
        self.ctype_size = 0 if ctype is None else ctypes.sizeof(ctype)
        self.size = size
        self.mask = size - 1
        self.what = f"ring buffer {source.what}"
        self._cons_mm, self._prod_mm = ringbuf_mmap(source.fd, size, source.what)
        self.cons_q = memoryview(self._cons_mm).cast("Q")
        page = page_size()
        producer = memoryview(self._prod_mm)
        self.prod_q = producer[:8].cast("Q")
        self.data = producer[page:]
        self.lens = self.data.cast("I")
        producer.release()

    def fileno(self) -> int:
        return self.source.fd.fileno()

    def pending(self) -> int:
        """Bytes between consumer and producer (records, including busy and discarded ones)."""
        return int(self.prod_q[0] - self.cons_q[0])

    def close(self) -> None:
        for view in (self.lens, self.data, self.prod_q, self.cons_q):
            with contextlib.suppress(BufferError):
                view.release()
        release_mapping(self._prod_mm)
        release_mapping(self._cons_mm)
        self.source.fd.close()


_MIN_RUN = 16
"""Shortest run of same-size records worth the vectorised header check."""
_MAX_RUN = 1 << 16
"""Longest run checked at once (bounds the work wasted when a run ends early)."""
_COOLDOWN = 64
"""Records handled one by one after a failed run check (mixed sizes stay cheap)."""
PASS_BYTES = 1 << 18
"""Ring bytes one consume pass covers before publishing and looking at ``closed`` again:
about 10,000 small records, a few milliseconds of callbacks."""


def uniform_run(data: memoryview, off: int, length: int, stride: int, limit: int) -> int:
    """How many of the ``limit`` records from ``off`` are committed with length ``length``.

    All headers of a run of equal-sized records sit ``stride`` bytes apart, so one strided
    copy of them compared with the expected words checks the whole run in C.  Where it
    differs, the first differing word (found by XOR of the two as integers) ends the run; the
    headers before it were at true record boundaries, so the run is exact.
    """
    heads = data[off : off + limit * stride].cast("I")[:: stride >> 2].tobytes()
    want = _HEAD.pack(length) * limit
    if heads == want:
        return limit
    diff = int.from_bytes(heads, "little") ^ int.from_bytes(want, "little")
    return ((diff & -diff).bit_length() - 1) >> 5


def consume_raw(ring: Ring, callback: Callback, poller: Poller[Any]) -> int:
    """Deliver every committed record as a ``memoryview``; return how many were delivered.

    The view is released when the callback returns, so a view kept past its callback fails
    loudly instead of showing bytes a producer has since overwritten.  A negative return value
    stops after the current record, an exception is re-raised with the record's index, and
    ``poller.closed`` (another thread closing the reader) ends the loop at the next pass.

    Runs of same-sized records (the usual case: one C struct per event) are found with
    :func:`uniform_run` and delivered by a loop that does nothing per record but slice and
    call; other records take the general header-by-header path.
    """
    cons_q = ring.cons_q
    prod_q = ring.prod_q
    lens = ring.lens
    data = ring.data
    mask = ring.mask
    window = ring.window
    count = 0
    cons = start = retry = cons_q[0]
    try:
        while True:
            if poller.closed:
                return count
            prod = prod_q[0]
            if cons >= prod:
                return count
            if prod - cons > PASS_BYTES:
                prod = cons + PASS_BYTES
            while cons < prod:
                off = cons & mask
                n = lens[off >> 2]
                if n >= BPF_RINGBUF_DISCARD_BIT:
                    if n & BPF_RINGBUF_BUSY_BIT:
                        return count
                    cons += ((n & _LEN) + 15) & -8
                    continue
                stride = (n + 15) & -8
                if cons >= retry and prod - cons >= _MIN_RUN * stride:
                    limit = min((prod - cons) // stride, window)
                    run = uniform_run(data, off, n, stride, limit)
                    if run >= _MIN_RUN:
                        if run == window:
                            ring.window = window = min(window << 1, _MAX_RUN)
                        first = off + 8
                        pos = first
                        try:
                            for pos in range(first, first + run * stride, stride):
                                view = data[pos : pos + n]
                                ret = callback(view)
                                try:  # noqa: SIM105 (a context manager per record costs 15%)
                                    view.release()
                                except BufferError:
                                    pass  # the callback made a view of it; that one keeps it
                                if ret is not None and ret < 0:
                                    break
                        except BaseException:
                            done = (pos - first) // stride
                            cons += (done + 1) * stride  # the failing record is consumed
                            count += done
                            raise
                        done = (pos - first) // stride + 1
                        cons += done * stride
                        count += done
                        if ret is not None and ret < 0:
                            ring.stopped = True
                            return count
                        continue
                    retry = cons + _COOLDOWN * stride
                cons += stride
                off += 8
                view = data[off : off + n]
                ret = callback(view)
                try:  # noqa: SIM105
                    view.release()
                except BufferError:
                    pass
                count += 1
                if ret is not None and ret < 0:
                    ring.stopped = True
                    return count
            cons_q[0] = cons
    except BaseException as exc:
        note_callback_failure(exc, ring.what, count)
        raise
    finally:
        if cons != start:
            cons_q[0] = cons


def consume_typed(ring: Ring, callback: Callback, poller: Poller[Any]) -> int:
    """Like :func:`consume_raw`, delivering ``event_type`` copies (see :mod:`.typed`)."""
    cons_q = ring.cons_q
    prod_q = ring.prod_q
    lens = ring.lens
    data = ring.data
    mask = ring.mask
    make = ring.ctype.from_buffer_copy
    need = ring.ctype_size
    window = ring.window
    count = 0
    cons = start = retry = cons_q[0]
    try:
        while True:
            if poller.closed:
                return count
            prod = prod_q[0]
            if cons >= prod:
                return count
            if prod - cons > PASS_BYTES:
                prod = cons + PASS_BYTES
            while cons < prod:
                off = cons & mask
                n = lens[off >> 2]
                if n >= BPF_RINGBUF_DISCARD_BIT:
                    if n & BPF_RINGBUF_BUSY_BIT:
                        return count
                    cons += ((n & _LEN) + 15) & -8
                    continue
                stride = (n + 15) & -8
                if n != need:  # a variable-size record: delivered with its own bytes
                    cons += stride
                    ret = callback(sized(ring.ctype, data[off + 8 : off + 8 + n].tobytes()))
                    count += 1
                    if ret is not None and ret < 0:
                        ring.stopped = True
                        return count
                    continue
                if cons >= retry and prod - cons >= _MIN_RUN * stride:
                    limit = min((prod - cons) // stride, window)
                    run = uniform_run(data, off, n, stride, limit)
                    if run >= _MIN_RUN:
                        if run == window:
                            ring.window = window = min(window << 1, _MAX_RUN)
                        first = off + 8
                        pos = first
                        try:
                            for pos in range(first, first + run * stride, stride):
                                ret = callback(make(data, pos))
                                if ret is not None and ret < 0:
                                    break
                        except BaseException:
                            done = (pos - first) // stride
                            cons += (done + 1) * stride
                            count += done
                            raise
                        done = (pos - first) // stride + 1
                        cons += done * stride
                        count += done
                        if ret is not None and ret < 0:
                            ring.stopped = True
                            return count
                        continue
                    retry = cons + _COOLDOWN * stride
                cons += stride
                ret = callback(make(data, off + 8))
                count += 1
                if ret is not None and ret < 0:
                    ring.stopped = True
                    return count
            cons_q[0] = cons
    except BaseException as exc:
        note_callback_failure(exc, ring.what, count)
        raise
    finally:
        if cons != start:
            cons_q[0] = cons


MAX_BATCH = 1 << 16
"""Records per batch callback: bounds the memory (and garbage-collector work) of one list."""


def collect(
    ring: Ring, out: list[Any], ends: array[int] | None = None, limit: int = MAX_BATCH
) -> int:
    """Append up to ``limit`` committed records (views, or typed copies) to ``out``.

    Nothing is consumed: returns the position up to which ``out`` covers the ring, which the
    caller publishes with :func:`publish` once the records are no longer needed.  ``ends``
    receives, per record, the position just past it (so a consumer stopping half-way can
    publish exactly what it used).  Same-size runs are gathered in C-speed comprehensions.
    """
    prod = ring.prod_q[0]
    cons = retry = ring.cons_q[0]
    lens = ring.lens
    data = ring.data
    mask = ring.mask
    ctype = ring.ctype
    make = None if ctype is None else ctype.from_buffer_copy
    append = out.append
    room = limit - len(out)
    while cons < prod and room > 0:
        off = cons & mask
        n = lens[off >> 2]
        if n >= BPF_RINGBUF_DISCARD_BIT:
            if n & BPF_RINGBUF_BUSY_BIT:
                break
            cons += ((n & _LEN) + 15) & -8
            continue
        stride = (n + 15) & -8
        if make is not None and n != ring.ctype_size:
            append(sized(ctype, data[off + 8 : off + 8 + n].tobytes()))
            room -= 1
            cons += stride
            continue
        if cons >= retry and prod - cons >= _MIN_RUN * stride:
            run = uniform_run(data, off, n, stride, min((prod - cons) // stride, room, _MAX_RUN))
            if run >= _MIN_RUN:
                first = off + 8
                positions = range(first, first + run * stride, stride)
                if make is None:
                    out.extend([data[p : p + n] for p in positions])
                else:
                    out.extend([make(data, p) for p in positions])
                if ends is not None:
                    ends.extend(range(cons + stride, cons + (run + 1) * stride, stride))
                cons += run * stride
                room -= run
                continue
            retry = cons + _COOLDOWN * stride
        cons += stride
        off += 8
        append(data[off : off + n] if make is None else make(data, off))
        room -= 1
        if ends is not None:
            ends.append(cons)
    return int(cons)


def release_views(records: list[Any]) -> None:
    """Release delivered record views so that none outlives its delivery (see consume_raw)."""
    release = memoryview.release
    for view in records:
        if type(view) is not memoryview:
            return  # typed records are copies: nothing to release
        try:  # noqa: SIM105 (per record: no context manager)
            release(view)
        except BufferError:
            pass


def publish(ring: Ring, cons: int) -> None:
    """Hand the ring space up to ``cons`` back to the producer."""
    ring.cons_q[0] = cons


def read_ready(ring: Ring) -> RecordBatch:
    """Copy every committed record out of the ring and hand the space back at once.

    Headers are checked in the live ring *before* the payload bytes are copied: a header seen
    committed guarantees its payload is complete (the kernel commits by clearing BUSY last).
    The leading run of same-sized records is checked in C (:func:`uniform_run`); only what
    follows it (other sizes, discarded records) is walked header by header, and a run that
    ends at a BUSY record, as it often does under a live producer, needs no walk at all.
    """
    cons = ring.cons_q[0]
    prod = ring.prod_q[0]
    if prod <= cons:
        return RecordBatch.empty(ring.ctype)
    mask = ring.mask
    off = cons & mask
    first = ring.lens[off >> 2]
    run = stride = 0
    if first < BPF_RINGBUF_DISCARD_BIT:
        stride = (first + 15) & -8
        run = uniform_run(ring.data, off, first, stride, (prod - cons) // stride)
    if run:
        end = cons + run * stride
        if end == prod or ring.lens[(end & mask) >> 2] & BPF_RINGBUF_BUSY_BIT:
            data = ring.data[off : off + run * stride].tobytes()
            ring.cons_q[0] = end
            return RecordBatch.fixed(data, run, first, stride, ring.ctype)
    return _read_walk(ring, cons, prod, run, first)


def _read_walk(ring: Ring, start: int, prod: int, run: int, size: int) -> RecordBatch:
    """The general case: ``run`` records of ``size`` bytes, then mixed sizes or discards."""
    lens = ring.lens
    mask = ring.mask
    stride = (size + 15) & -8
    offsets = new_offsets()
    lengths = new_offsets()
    if run:
        offsets.extend(range(BPF_RINGBUF_HDR_SZ, run * stride, stride))
        lengths.extend([size] * run)
    sizes: set[int] = {size} if run else set()
    discards = False
    cons = start + run * stride
    while cons < prod:
        n = lens[(cons & mask) >> 2]
        if n >= BPF_RINGBUF_DISCARD_BIT:
            if n & BPF_RINGBUF_BUSY_BIT:
                break
            discards = True
        else:
            offsets.append(cons - start + BPF_RINGBUF_HDR_SZ)
            lengths.append(n)
            sizes.add(n)
        cons += ((n & _LEN) + 15) & -8
    if cons == start:
        return RecordBatch.empty(ring.ctype)
    off = start & mask
    data = ring.data[off : off + (cons - start)].tobytes()
    ring.cons_q[0] = cons
    if len(sizes) == 1 and not discards:
        length = sizes.pop()
        return RecordBatch.fixed(data, len(offsets), length, (length + 15) & -8, ring.ctype)
    return RecordBatch(data, offsets, lengths, None, 0, ring.ctype)

