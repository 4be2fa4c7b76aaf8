"""PerfBuffer against the running kernel: per-CPU order, contents, wrap-around, lost samples.

The producer (:mod:`test_events_support`) runs on a chosen CPU with BPF_PROG_TEST_RUN and
emits ``(i, seed + 3 * i)`` samples through ``bpf_perf_event_output(BPF_F_CURRENT_CPU)``.  Raw
samples carry 4 bytes of kernel padding after a 16-byte payload (records stay 8-aligned).
"""

from __future__ import annotations

import ctypes
import gc
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from conftest import open_fds, requires_root
from pybpf.abi.bpf import MapType
from pybpf.events import EventError, MapTypeError, PerfBuffer
from pybpf.kernel.events_sys import online_cpus
from pybpf.kernel.fd import Fd
from pybpf.kernel.maps import map_create, map_delete_elem
from pybpf.kernel.system import page_size
from test_events_support import perf_producer, run

pytestmark = [requires_root, pytest.mark.kernel]

PAIR = struct.Struct("<QQ")
CPUS = online_cpus()


class Event(ctypes.Structure):
    _fields_ = (("index", ctypes.c_uint64), ("value", ctypes.c_uint64))


def expected(count: int, seed: int = 0, first: int = 0) -> list[tuple[int, int]]:
    return [(i, seed + 3 * i) for i in range(first, first + count)]


@pytest.fixture
def perf_map() -> Iterator[Fd]:
    fd = map_create(MapType.PERF_EVENT_ARRAY, 4, 4, len(CPUS), name="samples")
    yield fd
    fd.close()


@pytest.fixture
def producer(perf_map: Fd) -> Iterator[Fd]:
    prog = perf_producer(perf_map.fileno(), 16)
    yield prog
    prog.close()


def test_samples_arrive_per_cpu_in_order(perf_map: Fd, producer: Fd) -> None:
    got: dict[int, list[tuple]] = {cpu: [] for cpu in CPUS}

    def callback(cpu: int, data: memoryview) -> None:
        assert len(data) == 20 and data.readonly
        got[cpu].append(PAIR.unpack_from(data))

    with PerfBuffer(perf_map, callback) as pb:
        assert pb.cpus == list(CPUS)
        for cpu in CPUS:
            run(producer, 50, seed=100 * cpu, cpu=cpu)
        total = 0
        deadline = time.monotonic() + 5
        while total < 50 * len(CPUS) and time.monotonic() < deadline:
            total += pb.poll(timeout=1)
        assert total == 50 * len(CPUS)
        assert got == {cpu: expected(50, 100 * cpu) for cpu in CPUS}
        assert pb.lost_count == 0


def test_records_crossing_the_end_of_a_ring_are_joined(perf_map: Fd) -> None:
    """40-byte samples in a one-page ring: some straddle the end and are delivered whole."""
    got: list[bytes] = []
    filler = struct.pack("<QQQ", 16, 24, 32)  # then 4 bytes of (unwritten) kernel padding
    with perf_producer(perf_map.fileno(), 40) as prog, \
            PerfBuffer(perf_map, lambda c, d: got.append(bytes(d)), pages=1) as pb:
        for round_ in range(30):
            burst = 7 if round_ % 2 else 50  # short bursts and long same-size runs
            run(prog, burst, seed=round_, cpu=CPUS[0])
            assert pb.consume() == burst
            assert [PAIR.unpack_from(d) for d in got[-burst:]] == expected(burst, round_)
            assert all(len(d) == 44 and d[16:40] == filler for d in got[-burst:])


def test_typed_samples(perf_map: Fd, producer: Fd) -> None:
    got: list[tuple] = []
    def keep(cpu: int, event: Event) -> None:
        got.append((cpu, event.index, event.value))

    with PerfBuffer(perf_map, keep, event_type=Event) as pb:
        run(producer, 5, seed=1, cpu=CPUS[-1])
        assert pb.poll(timeout=1) == 5
    assert got == [(CPUS[-1], i, v) for i, v in expected(5, 1)]


def test_overload_counts_lost_samples(perf_map: Fd, producer: Fd) -> None:
    lost: list[tuple[int, int]] = []
    got: list[int] = []
    cpu = CPUS[0]
    with PerfBuffer(perf_map, lambda c, d: got.append(PAIR.unpack_from(d)[0]),
                    lambda c, n: lost.append((c, n)), pages=1) as pb:
        run(producer, 1000, cpu=cpu)
        fits = pb.consume()
        assert 0 < fits < 1000
        assert got == list(range(fits))
        # The kernel reports the loss with the next sample it can write.
        run(producer, 1, seed=5, cpu=cpu)
        assert pb.consume() == 1
        assert lost == [(cpu, 1000 - fits)]
        assert pb.lost_count == 1000 - fits
        assert got[-1] == 0


def test_iteration_copies_samples(perf_map: Fd, producer: Fd) -> None:
    with PerfBuffer(perf_map) as pb:
        run(producer, 4, seed=9, cpu=CPUS[0])
        items = list(pb.records(timeout=0))
        assert [(c, PAIR.unpack_from(d)) for c, d in items] == [
            (CPUS[0], e) for e in expected(4, 9)
        ]
        assert all(isinstance(d, bytes) for _, d in items)


def test_a_raising_callback_reports_the_record_index(perf_map: Fd, producer: Fd) -> None:
    def callback(cpu: int, data: memoryview) -> None:
        if PAIR.unpack_from(data)[0] == 2:
            raise RuntimeError("stop")

    with PerfBuffer(perf_map, callback) as pb:
        run(producer, 4, cpu=CPUS[0])
        with pytest.raises(RuntimeError) as info:
            pb.consume()
        assert info.value.record_index == 2  # type: ignore[attr-defined]
        assert pb.consume() == 1  # record 3


def test_wrong_map_type() -> None:
    with map_create(MapType.RINGBUF, 0, 0, page_size(), name="ringy") as fd, \
            pytest.raises(MapTypeError, match="map 'ringy' is a BPF_MAP_TYPE_RINGBUF"):
        PerfBuffer(fd, lambda c, d: None)


def test_bad_page_count(perf_map: Fd) -> None:
    with pytest.raises(ValueError, match="power of two"):
        PerfBuffer(perf_map, lambda c, d: None, pages=3)


def test_close_empties_the_map_and_leaks_nothing(perf_map: Fd, producer: Fd) -> None:
    gc.collect()
    fds = open_fds()
    pb = PerfBuffer(perf_map, lambda c, d: None)
    waiter = threading.Thread(target=pb.poll)
    waiter.start()
    time.sleep(0.05)
    pb.close()
    waiter.join(timeout=5)
    assert not waiter.is_alive()
    assert open_fds() == fds
    assert not map_delete_elem(perf_map, struct.pack("<I", CPUS[0]))  # already emptied
    with pytest.raises(EventError):
        pb.consume()


def test_long_runs_of_typed_samples_stop_and_fail_exactly(perf_map: Fd, producer: Fd) -> None:
    seen: list[int] = []

    def callback(cpu: int, event: Event) -> int:
        if event.index == 120:
            raise LookupError(event.index)
        seen.append(event.index)
        return -1 if event.index == 60 else 0

    with PerfBuffer(perf_map, callback, event_type=Event) as pb:
        run(producer, 200, cpu=CPUS[0])
        assert pb.consume() == 61
        with pytest.raises(LookupError) as info:
            pb.consume()
        assert info.value.record_index == 59  # type: ignore[attr-defined]
        assert pb.consume() == 79
        assert seen == [i for i in range(200) if i != 120]
