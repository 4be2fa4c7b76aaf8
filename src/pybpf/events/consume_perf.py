"""One CPU's perf ring (``PERF_COUNT_SW_BPF_OUTPUT``) and the loop that consumes it.

Records (``include/uapi/linux/perf_event.h``) start with ``struct perf_event_header``
(``u32 type; u16 misc; u16 size``) and are 8-byte aligned.  ``PERF_RECORD_SAMPLE`` carries
``u32 size`` then the raw bytes (the kernel pads them so the record stays 8-aligned, and the
size includes that padding, as libbpf reports it too; the padding bytes are not written);
``PERF_RECORD_LOST`` carries ``u64 id; u64 lost``: samples the kernel could not write because
the consumer was behind.  Unlike the BPF ring buffer, the perf data area is mapped once, so a
record crossing its end is copied into one piece before delivery.  ``data_tail`` is published
once per pass; in a writable mapping that is what tells the kernel the space may be reused.

As in :mod:`.consume_ringbuf`, runs of samples with identical headers (same type, flags and
size) are recognised with one strided comparison in C and delivered by a loop that only slices
and calls.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable
from typing import Any

from pybpf.errors import EventError
from pybpf.kernel.events_sys import PERF_MMAP_DATA_HEAD, PERF_MMAP_DATA_TAIL, perf_ring_mmap
from pybpf.kernel.fd import Fd
from pybpf.kernel.perf import perf_event_open_bpf_output
from pybpf.kernel.system import page_size

from .consume_ringbuf import release_mapping
from .reader import note_callback_failure
from .typed import sized

PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9

_HEAD = PERF_MMAP_DATA_HEAD // 8
_TAIL = PERF_MMAP_DATA_TAIL // 8
_U32 = struct.Struct("<I")
_RAW_PAD = 8
"""The kernel pads a raw sample (its u32 size and the data) to 8 bytes: a sample up to 7
bytes longer than the event type is the type itself, delivered on the fast path."""
_U64 = struct.Struct("<Q")
_NATIVE_U64 = struct.Struct("@Q")
_MIN_RUN = 16
_MAX_RUN = 1 << 16
_COOLDOWN = 64

SampleCallback = Callable[[int, Any], Any]
LostCallback = Callable[[int, int], Any]


class CpuRing:
    """One CPU's perf event and its mapped ring."""

    def __init__(self, cpu: int, pages: int, what: str) -> None:
        self.cpu = cpu
        self.what = f"{what} cpu {cpu}"
        self.fd: Fd = perf_event_open_bpf_output(cpu)
        try:
            self._mm = perf_ring_mmap(self.fd, pages, self.what)
        except BaseException:
            self.fd.close()
            raise
        page = page_size()
        whole = memoryview(self._mm)
        self.meta = whole[:page].cast("Q")
        self.data = whole[page:].toreadonly()
        self.words = self.data.cast("I")
        self.qwords = self.data.cast("Q")
        whole.release()
        self.size = pages * page
        self.mask = self.size - 1
        self.window = 256

    def close(self) -> None:
        for view in (self.qwords, self.words, self.data, self.meta):
            with contextlib.suppress(BufferError):
                view.release()
        release_mapping(self._mm)
        self.fd.close()


def same_headers(data: memoryview, off: int, header: int, length: int, limit: int) -> int:
    """How many of the ``limit`` records from ``off`` start with the 8 bytes ``header``."""
    heads = data[off : off + limit * length].cast("Q")[:: length >> 3].tobytes()
    want = _NATIVE_U64.pack(header) * limit
    if heads == want:
        return limit
    diff = int.from_bytes(heads, "little") ^ int.from_bytes(want, "little")
    return ((diff & -diff).bit_length() - 1) >> 6


class PerfConsumer:
    """What a pass over CPU rings delivers to: callbacks, event type, lost-sample count."""

    __slots__ = ("callback", "ctype", "lost", "lost_count", "need")

    def __init__(self, callback: SampleCallback, lost: LostCallback | None, ctype: Any,
                 need: int) -> None:
        self.callback = callback
        self.lost = lost
        self.ctype = ctype
        self.need = need
        self.lost_count = 0


def consume_cpu(ring: CpuRing, to: PerfConsumer) -> tuple[int, bool]:
    """Deliver every record of one CPU ring; ``(samples delivered, stopped by callback)``."""
    meta = ring.meta
    head = meta[_HEAD]
    tail = start = retry = meta[_TAIL]
    words = ring.words
    qwords = ring.qwords
    data = ring.data
    mask = ring.mask
    size = ring.size
    cpu = ring.cpu
    callback = to.callback
    make = None if to.ctype is None else to.ctype.from_buffer_copy
    window = ring.window
    count = 0
    ret: Any = None
    try:
        while tail < head:
            off = tail & mask
            w = off >> 2
            length = words[w + 1] >> 16
            if length < 8 or length & 7:
                raise EventError(f"{ring.what}: corrupt record header at {tail:#x}")
            kind = words[w]  # an 8-byte header never crosses the end: records are 8-aligned
            if kind == PERF_RECORD_SAMPLE and off + length <= size:
                n = words[w + 2]
                if make is not None and not to.need <= n < to.need + _RAW_PAD:
                    # A variable-size sample: the typed value keeps the sample's own bytes.
                    tail += length
                    sample = data[off + 12 : off + 12 + n].tobytes()
                    ret = callback(cpu, sized(to.ctype, sample))
                    count += 1
                    if ret is not None and ret < 0:
                        return count, True
                    continue
                if tail >= retry and head - tail >= _MIN_RUN * length:
                    limit = min((head - tail) // length, (size - off) // length, window)
                    run = same_headers(data, off, qwords[off >> 3], length, limit)
                    if run >= _MIN_RUN:
                        if run == window:
                            ring.window = window = min(window << 1, _MAX_RUN)
                        first = off + 12
                        pos = first
                        try:
                            if make is None:
                                for pos in range(first, first + run * length, length):
                                    view = data[pos : pos + n]
                                    ret = callback(cpu, view)
                                    try:  # noqa: SIM105 (per record: no context manager)
                                        view.release()
                                    except BufferError:
                                        pass
                                    if ret is not None and ret < 0:
                                        break
                            else:
                                for pos in range(first, first + run * length, length):
                                    ret = callback(cpu, make(data, pos))
                                    if ret is not None and ret < 0:
                                        break
                        except BaseException:
                            done = (pos - first) // length
                            tail += (done + 1) * length
                            count += done
                            raise
                        done = (pos - first) // length + 1
                        tail += done * length
                        count += done
                        if ret is not None and ret < 0:
                            return count, True
                        continue
                    retry = tail + _COOLDOWN * length
                tail += length
                off += 12
                if make is None:
                    view = data[off : off + n]
                    ret = callback(cpu, view)
                    try:  # noqa: SIM105
                        view.release()
                    except BufferError:
                        pass
                else:
                    ret = callback(cpu, make(data, off))
                count += 1
                if ret is not None and ret < 0:
                    return count, True
                continue
            tail += length
            # Rare records: a sample crossing the end of the ring, lost-sample reports, others.
            if off + length > size:
                record = memoryview(data[off:].tobytes() + data[: off + length - size])
            else:
                record = data[off : off + length]
            if kind == PERF_RECORD_SAMPLE:
                n = _U32.unpack_from(record, 8)[0]
                body = record[12 : 12 + n]
                if make is None:
                    ret = callback(cpu, body)
                elif to.need <= n < to.need + _RAW_PAD:
                    ret = callback(cpu, make(body))
                else:
                    ret = callback(cpu, sized(to.ctype, bytes(body)))
                with contextlib.suppress(BufferError):
                    body.release()
                count += 1
                if ret is not None and ret < 0:
                    return count, True
            elif kind == PERF_RECORD_LOST:
                lost = _U64.unpack_from(record, 16)[0]
                to.lost_count += lost
                if to.lost is not None:
                    to.lost(cpu, lost)
        return count, False
    except BaseException as exc:
        if not isinstance(exc, EventError):
            note_callback_failure(exc, ring.what, count)
        raise
    finally:
        if tail != start:
            meta[_TAIL] = tail


