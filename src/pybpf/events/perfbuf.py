"""PerfBuffer: consuming BPF_MAP_TYPE_PERF_EVENT_ARRAY maps (``bpf_perf_event_output``).

Each CPU gets its own perf ring (:mod:`.consume_perf`): a ``PERF_COUNT_SW_BPF_OUTPUT`` event with
``PERF_SAMPLE_RAW`` samples, mapped as one metadata page plus ``2^n`` data pages and stored in
the map at that CPU's index, which is where ``bpf_perf_event_output(..., BPF_F_CURRENT_CPU,
...)`` writes.  All CPU rings share one epoll set; ``close()`` empties the map's slots again.
"""

from __future__ import annotations

import contextlib
import ctypes
import struct
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from pybpf.abi.bpf import MapType
from pybpf.btf import Btf
from pybpf.errors import ClosedError, EventError
from pybpf.kernel.events_sys import online_cpus
from pybpf.kernel.maps import map_delete_elem, map_update_elem
from pybpf.kernel.perf import perf_event_enable

from .consume_perf import CpuRing, LostCallback, PerfConsumer, SampleCallback, consume_cpu
from .poller import Poller
from .reader import ConsumingReader
from .source import MapSource, open_map
from .typed import resolve_event_type

_KEY = struct.Struct("<I")


class PerfBuffer(ConsumingReader):
    """Consumer of a ``BPF_MAP_TYPE_PERF_EVENT_ARRAY``: one perf ring per online CPU.

    ``callback(cpu, record)`` receives each sample (a read-only ``memoryview`` valid during
    the call, or an ``event_type`` copy); ``lost(cpu, count)`` each lost-sample report, also
    summed in :attr:`lost_count`.  ``pages`` (a power of two) sizes each CPU's ring.  As with
    :class:`~pybpf.events.RingBuffer`, a negative return stops the pass and an exception is
    re-raised with the record's index; :meth:`close` may be called from any thread.
    """

    def __init__(
        self,
        map: Any,
        callback: SampleCallback | None = None,
        lost: LostCallback | None = None,
        *,
        pages: int = 8,
        event_type: Any = None,
        btf: Btf | None = None,
        cpus: Sequence[int] | None = None,
    ) -> None:
        if pages <= 0 or pages & (pages - 1):
            raise ValueError(f"pages must be a power of two, not {pages}")
        self.callback = callback
        self.lost = lost
        self.lost_count = 0
        """Samples the kernel dropped because a ring was full, summed over every CPU."""
        self._rings: list[CpuRing] = []
        self._guard = threading.Lock()
        self._source: MapSource | None = None
        self._poller: Poller[CpuRing] = Poller("PerfBuffer", self._release)
        try:
            self._source = source = open_map(
                map, MapType.PERF_EVENT_ARRAY, "PerfBuffer"
            )
            self.what = f"perf buffer {source.what}"
            self._ctype = resolve_event_type(event_type, btf or source.btf, source.what)
            self._need = 0 if self._ctype is None else ctypes.sizeof(self._ctype)
            wanted = online_cpus() if cpus is None else cpus
            for cpu in wanted:
                if source.max_entries and cpu >= source.max_entries:
                    if cpus is None:
                        continue
                    raise EventError(f"{source.what} has no slot for cpu {cpu}")
                self._open_cpu(source, cpu, pages)
        except BaseException:
            self._poller.close()
            raise

    def _open_cpu(self, source: MapSource, cpu: int, pages: int) -> None:
        ring = CpuRing(cpu, pages, self.what)
        try:
            map_update_elem(source.fd, _KEY.pack(cpu), _KEY.pack(ring.fd.fileno()))
            self._poller.register(ring.fd.fileno(), ring)
        except BaseException:
            ring.close()
            raise
        self._rings.append(ring)
        perf_event_enable(ring.fd)

    @property
    def cpus(self) -> list[int]:
        """The CPUs with a ring, in order."""
        return [ring.cpu for ring in self._rings]

    # --- consuming ---------------------------------------------------------------------------

    def poll(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (``None``: forever), then consume ready rings."""
        self._poller.enter()
        try:
            ready = self._poller.wait(timeout)
            if not ready or self._poller.closed:
                return 0
            return self._consume(ready, self._callback())
        finally:
            self._poller.leave()

    def consume(self) -> int:
        """Consume every CPU's ring without waiting; returns the samples delivered."""
        self._poller.enter()
        try:
            return self._consume(self._rings, self._callback())
        finally:
            self._poller.leave()

    def _callback(self) -> SampleCallback:
        if self.callback is None:
            raise EventError(f"{self.what} has no callback: iterate over the PerfBuffer")
        return self.callback

    def _consume(self, rings: list[CpuRing], callback: SampleCallback) -> int:
        if not self._guard.acquire(blocking=False):
            raise EventError("PerfBuffer is already being consumed")
        try:
            total = 0
            to = PerfConsumer(callback, self.lost, self._ctype, self._need)
            poller = self._poller
            try:
                for ring in rings:  # one ring's worth each: the head is read once per ring
                    if poller.closed:
                        break
                    count, stop = consume_cpu(ring, to)
                    total += count
                    if stop:
                        break
            finally:
                self.lost_count += to.lost_count
            return total
        finally:
            self._guard.release()

    # --- iteration and asyncio -----------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return self.records()

    def records(self, timeout: float | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(cpu, record)`` pairs (records copied: ``bytes`` or ``event_type``).

        Stops after ``timeout`` seconds without samples (``0``: drain what is ready), or on
        close: after a ``close()`` from another thread, the next request ends the loop.
        Lost-sample reports still go to ``lost`` and :attr:`lost_count`.
        """
        poller = self._poller
        got: list[tuple[int, Any]] = []
        copy = self._ctype is None

        def keep(cpu: int, record: Any) -> None:
            got.append((cpu, record.tobytes() if copy else record))

        while True:
            try:
                self._poller.enter()
            except ClosedError:
                return
            try:
                self._consume(self._rings, keep)
                if not got and timeout != 0:
                    ready = self._poller.wait(timeout)
                    if ready and not self._poller.closed:
                        self._consume(ready, keep)
            finally:
                self._poller.leave()
            if not got:
                return
            batch = got[:]
            got.clear()
            for item in batch:
                if poller.closed:
                    return
                yield item

    async def poll_async(self, timeout: float | None = None) -> int:
        """:meth:`poll` for asyncio: waits on the running loop instead of blocking it."""
        callback = self._callback()
        self._poller.enter()
        try:
            count = self._consume(self._rings, callback)
            if count:
                return count
            if not await self._wait_ready(timeout):
                return 0
            return self._consume(self._rings, callback)
        finally:
            self._poller.leave()

    def __aiter__(self) -> AsyncIterator[tuple[int, Any]]:
        return self.records_async()

    async def records_async(self, timeout: float | None = None) -> AsyncIterator[tuple[int, Any]]:
        """``async for cpu, record in pb``: the asyncio twin of :meth:`records`."""
        while True:
            for item in self.records(timeout=0):
                yield item
            if not await self._wait_ready(timeout):
                return

    # --- lifecycle -------------------------------------------------------------------------

    def _release(self) -> None:
        """Empty the map's slots, unmap every ring, close every descriptor."""
        rings, self._rings = self._rings, []
        source, self._source = self._source, None
        for ring in rings:
            if source is not None:
                with contextlib.suppress(OSError):
                    map_delete_elem(source.fd, _KEY.pack(ring.cpu))
            ring.close()
        if source is not None:
            source.fd.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._rings)} cpus"
        return f"<PerfBuffer {state}>"
