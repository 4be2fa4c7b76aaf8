"""UserRingBuffer against the running kernel: a program drains what we write.

The drainer (:mod:`test_events_support`) calls ``bpf_user_ringbuf_drain`` and, per record,
adds its first u64 to ``result[0]`` and 1 to ``result[1]``; it returns the drained count.
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
from pybpf.events import ClosedError, EventError, MapTypeError, UserRingBuffer
from pybpf.kernel.fd import Fd
from pybpf.kernel.maps import map_create, map_lookup_elem
from pybpf.kernel.system import page_size
from test_events_support import run, user_ringbuf_drainer

pytestmark = [requires_root, pytest.mark.kernel]

U64 = struct.Struct("<Q")
ZERO = bytes(4)


class Sample(ctypes.Structure):
    _fields_ = (("value", ctypes.c_uint64), ("tag", ctypes.c_uint32))


@pytest.fixture
def maps() -> Iterator[tuple[Fd, Fd]]:
    ring = map_create(MapType.USER_RINGBUF, 0, 0, page_size(), name="to_prog")
    result = map_create(MapType.ARRAY, 4, 16, 1, name="result")
    yield ring, result
    ring.close()
    result.close()


@pytest.fixture
def drainer(maps: tuple[Fd, Fd]) -> Iterator[Fd]:
    prog = user_ringbuf_drainer(maps[0].fileno(), maps[1].fileno())
    yield prog
    prog.close()


def totals(result: Fd) -> tuple[int, int]:
    raw = map_lookup_elem(result, ZERO, 16)
    assert raw is not None
    return struct.unpack("<QQ", raw)


def test_the_program_counts_and_sums_every_record(maps: tuple[Fd, Fd], drainer: Fd) -> None:
    ring, result = maps
    with UserRingBuffer(ring) as urb:
        for i in range(100):
            assert urb.write(U64.pack(i * i) + bytes(i % 5))  # mixed sizes
        assert run(drainer, 0) == 100
        assert totals(result) == (sum(i * i for i in range(100)), 100)
        assert urb.free() == urb.size
        assert run(drainer, 0) == 0


def test_reservations_commit_in_order_and_discards_are_skipped(
    maps: tuple[Fd, Fd], drainer: Fd
) -> None:
    ring, result = maps
    with UserRingBuffer(ring) as urb:
        first = urb.reserve(8)
        second = urb.reserve(8)
        assert first is not None and second is not None
        second.data[:] = U64.pack(20)
        second.submit()
        assert run(drainer, 0) == 0  # the first, still reserved, blocks the drain
        first.data[:] = U64.pack(1000)
        first.discard()
        assert run(drainer, 0) == 1
        assert totals(result) == (20, 1)
        with pytest.raises(EventError, match="already"):
            first.submit()


def test_context_manager_submits_or_discards(maps: tuple[Fd, Fd], drainer: Fd) -> None:
    ring, result = maps
    with UserRingBuffer(ring) as urb:
        with urb.reserve(Sample) as res:  # type: ignore[union-attr]
            res.value.value = 7
            res.value.tag = 1
        with pytest.raises(ZeroDivisionError), urb.reserve(8) as res2:  # type: ignore[union-attr]
            res2.data[:] = U64.pack(99)
            raise ZeroDivisionError
        assert res2.done
        assert run(drainer, 0) == 1
        assert totals(result) == (7, 1)


def test_a_full_buffer_refuses_then_accepts_after_a_drain(
    maps: tuple[Fd, Fd], drainer: Fd
) -> None:
    ring, _ = maps
    with UserRingBuffer(ring) as urb:
        written = 0
        while urb.write(U64.pack(1)):
            written += 1
        assert written == page_size() // 16  # 8-byte header + 8-byte payload each
        assert urb.reserve(8) is None
        assert run(drainer, 0) == written
        assert urb.write(U64.pack(1))
        with pytest.raises(EventError, match="cannot fit"):
            urb.reserve(page_size())


def test_reserve_blocking_waits_for_a_drain(maps: tuple[Fd, Fd], drainer: Fd) -> None:
    ring, _ = maps
    with UserRingBuffer(ring) as urb:
        while urb.write(U64.pack(1)):
            pass
        with pytest.raises(TimeoutError):
            urb.reserve_blocking(8, timeout=0.05)
        timer = threading.Timer(0.1, run, (drainer, 0))
        timer.start()
        start = time.monotonic()
        res = urb.reserve_blocking(8, timeout=5)
        assert 0.05 < time.monotonic() - start < 4
        res.discard()
        timer.join()


def test_close_wakes_a_blocked_writer_and_leaks_nothing(maps: tuple[Fd, Fd]) -> None:
    gc.collect()
    fds = open_fds()
    urb = UserRingBuffer(maps[0])
    while urb.write(U64.pack(1)):
        pass
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            urb.reserve_blocking(8)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.05)
    urb.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ClosedError)
    assert open_fds() == fds


def test_open_reservations_are_discarded_on_close(maps: tuple[Fd, Fd], drainer: Fd) -> None:
    ring, result = maps
    urb = UserRingBuffer(ring)
    urb.reserve(8)
    urb.close()
    with UserRingBuffer(ring) as again:
        assert again.write(U64.pack(5))
        assert run(drainer, 0) == 1  # the abandoned reservation did not block it
    assert totals(result) == (5, 1)


def test_wrong_map_type() -> None:
    with map_create(MapType.RINGBUF, 0, 0, page_size(), name="kern_ring") as fd, \
            pytest.raises(MapTypeError, match="map 'kern_ring' is a BPF_MAP_TYPE_RINGBUF"):
        UserRingBuffer(fd)


def test_several_threads_produce_without_losing_records() -> None:
    with map_create(MapType.USER_RINGBUF, 0, 0, 1 << 16, name="shared") as ring, \
            map_create(MapType.ARRAY, 4, 16, 1, name="result") as result, \
            user_ringbuf_drainer(ring.fileno(), result.fileno()) as drainer, \
            UserRingBuffer(ring) as urb:

        def produce(base: int) -> None:
            for i in range(500):
                assert urb.write(U64.pack(base + i))

        threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert run(drainer, 0) == 2000
        assert totals(result) == (sum(k * 1000 + i for k in range(4) for i in range(500)), 2000)
