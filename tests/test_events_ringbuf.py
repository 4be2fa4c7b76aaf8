"""RingBuffer against the running kernel: every record, in order, with the right bytes.

Producers are hand-assembled raw_tracepoint programs run with BPF_PROG_TEST_RUN
(:mod:`test_events_support`): record ``i`` holds ``(i, seed + 3 * i)`` plus filler, and every
``discard_every``-th record is discarded by the program instead of submitted.
"""

from __future__ import annotations

import ctypes
import gc
import os
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from conftest import open_fds, requires_root
from pybpf.abi.bpf import MapType
from pybpf.events import (
    ClosedError,
    EventError,
    MapTypeError,
    RingBuffer,
    record_bytes,
    record_size,
)
from pybpf.kernel.events_sys import online_cpus
from pybpf.kernel.fd import Fd
from pybpf.kernel.maps import map_create
from pybpf.kernel.system import page_size
from test_events_support import ringbuf_map, ringbuf_producer, run

pytestmark = [requires_root, pytest.mark.kernel]

PAIR = struct.Struct("<QQ")


class Event(ctypes.Structure):
    _fields_ = (("index", ctypes.c_uint64), ("value", ctypes.c_uint64))


def expected(count: int, seed: int = 0, discard_every: int = 0, first: int = 0) -> list[tuple]:
    return [
        (i, seed + 3 * i)
        for i in range(first, first + count)
        if not discard_every or i % discard_every != discard_every - 1
    ]


def bpf_maps() -> int:
    """How many BPF map mappings this process has (ring buffers show as bpf-map)."""
    with open("/proc/self/maps") as f:
        return sum("anon_inode:bpf-map" in line for line in f)


@pytest.fixture
def ring() -> Iterator[Fd]:
    fd = ringbuf_map(1 << 16)
    yield fd
    fd.close()


@pytest.fixture
def producer(ring: Fd) -> Iterator[Fd]:
    prog = ringbuf_producer(ring.fileno(), 16, discard_every=3)
    yield prog
    prog.close()


def test_every_record_arrives_in_order_and_discards_are_skipped(ring: Fd, producer: Fd) -> None:
    got: list[tuple] = []
    with RingBuffer(ring, lambda r: got.append(PAIR.unpack(r))) as rb:
        run(producer, 1000, seed=7)
        assert rb.pending() == 1000 * 24  # discarded records hold space until consumed
        assert rb.consume() == len(expected(1000, 7, 3))
        assert rb.pending() == 0
        assert got == expected(1000, 7, 3)
        assert rb.consume() == 0
        run(producer, 10, seed=100)
        assert rb.poll(timeout=1) == len(expected(10, 100, 3))
        assert got[-7:] == expected(10, 100, 3)


def test_records_are_memoryviews_valid_only_during_the_callback(ring: Fd, producer: Fd) -> None:
    kept: list[memoryview] = []

    def callback(record: memoryview) -> None:
        assert record.readonly and len(record) == 16
        kept.append(record)

    with RingBuffer(ring, callback) as rb:
        run(producer, 2)
        assert rb.consume() == 2
    with pytest.raises(ValueError, match="released"):
        bytes(kept[0])


def test_a_full_buffer_keeps_the_oldest_records_and_recovers() -> None:
    page = page_size()
    with ringbuf_map(page) as fd, ringbuf_producer(fd.fileno(), 16) as prog:
        fits = (page - 1) // 24  # 8-byte header + 16-byte payload; the kernel keeps one byte
        got: list[tuple] = []
        with RingBuffer(fd, lambda r: got.append(PAIR.unpack(r))) as rb:
            run(prog, 1000)
            assert rb.consume() == fits
            assert got == expected(fits)
            run(prog, 5, seed=1)
            assert rb.consume() == 5
            assert got[fits:] == expected(5, seed=1)


def test_records_crossing_the_end_of_the_ring_are_contiguous() -> None:
    """40-byte payloads take 48 bytes: positions drift across the end of a one-page ring."""
    page = page_size()
    with ringbuf_map(page) as fd, ringbuf_producer(fd.fileno(), 40) as prog:
        seen: list[bytes] = []
        with RingBuffer(fd, lambda r: seen.append(bytes(r))) as rb:
            total = 0
            for round_ in range(20):
                run(prog, 50, seed=round_)
                total += rb.consume()
                tail = struct.pack("<QQQ", 16, 24, 32)
                assert [s[:16] for s in seen[-50:]] == [PAIR.pack(*e) for e in expected(50, round_)]
                assert all(s[16:] == tail for s in seen[-50:])
            assert total == 1000


def test_typed_events_from_a_ctypes_class(ring: Fd, producer: Fd) -> None:
    got: list[Event] = []
    with RingBuffer(ring, got.append, event_type=Event) as rb:
        run(producer, 30, seed=5)
        assert rb.consume() == 20
    assert [(e.index, e.value) for e in got] == expected(30, 5, 3)  # copies outlive the ring


def test_a_record_shorter_than_its_type_is_delivered_with_its_bytes(
    ring: Fd, producer: Fd
) -> None:
    """Variable-size records (a trailing array sent only as far as it is used) arrive
    zero-filled to the type, and the record's own bytes and size stay with the value."""

    class Big(ctypes.Structure):
        _fields_ = (("data", ctypes.c_uint8 * 32),)

    got: list[Big] = []
    raw: list[bytes] = []
    with RingBuffer(ring, lambda e: raw.append(bytes(e))) as plain:
        run(producer, 1)
        plain.consume()
    with RingBuffer(ring, got.append, event_type=Big) as rb:
        run(producer, 1)
        assert rb.consume() == 1
    (event,) = got
    assert record_size(event) == len(raw[0]) == 16
    assert record_bytes(event) == raw[0]
    assert bytes(event) == raw[0] + bytes(16)  # zero-filled past the record


def test_event_type_by_name_needs_btf(ring: Fd) -> None:
    with pytest.raises(EventError, match="no BTF"):
        RingBuffer(ring, lambda e: None, event_type="struct event")


def test_a_raising_callback_stops_and_reports_the_record_index(ring: Fd, producer: Fd) -> None:
    got: list[int] = []

    def callback(record: memoryview) -> None:
        index = PAIR.unpack(record)[0]
        if index == 4:
            raise KeyError("boom")
        got.append(index)

    with RingBuffer(ring, callback) as rb:
        run(producer, 9)  # delivers 0 1 3 4 6 7
        with pytest.raises(KeyError) as info:
            rb.consume()
        assert info.value.record_index == 3  # type: ignore[attr-defined]
        assert any("record #3" in note for note in info.value.__notes__)
        assert got == [0, 1, 3]
        assert rb.consume() == 2  # the failing record was consumed, as in libbpf
        assert got == [0, 1, 3, 6, 7]


def test_a_negative_return_stops_the_pass(ring: Fd, producer: Fd) -> None:
    got: list[int] = []

    def callback(record: memoryview) -> int:
        got.append(PAIR.unpack(record)[0])
        return -1 if len(got) == 2 else 0

    with RingBuffer(ring, callback) as rb:
        run(producer, 6)  # 0 1 3 4
        assert rb.consume() == 2
        assert rb.consume() == 2
        assert got == [0, 1, 3, 4]


def test_several_maps_share_one_epoll_set() -> None:
    got: dict[str, list[tuple]] = {"a": [], "b": []}
    with ringbuf_map(1 << 14, "a") as a, ringbuf_map(1 << 14, "b") as b, \
            ringbuf_producer(a.fileno()) as pa, ringbuf_producer(b.fileno()) as pb, \
            RingBuffer(a, lambda r: got["a"].append(PAIR.unpack(r))) as rb:
        assert rb.add(b, lambda r: got["b"].append(PAIR.unpack(r))) == 1
        assert rb.rings == 2
        assert rb.poll(timeout=0) == 0
        run(pb, 3, seed=9)
        assert rb.poll(timeout=1) == 3
        assert got == {"a": [], "b": expected(3, 9)}
        run(pa, 2)
        run(pb, 1)
        assert rb.poll(timeout=1) == 3
        assert got == {"a": expected(2), "b": [*expected(3, 9), (0, 0)]}


def test_poll_times_out_without_records(ring: Fd) -> None:
    with RingBuffer(ring, lambda r: None) as rb:
        start = time.monotonic()
        assert rb.poll(timeout=0.05) == 0
        assert time.monotonic() - start >= 0.04


def test_iteration_without_a_callback(ring: Fd, producer: Fd) -> None:
    with RingBuffer(ring) as rb:
        run(producer, 12, seed=2)
        assert [PAIR.unpack(r) for r in rb.records(timeout=0)] == expected(12, 2, 3)
        assert list(rb.records(timeout=0)) == []
        run(producer, 1)
        with pytest.raises(EventError, match="no callback"):
            rb.poll(timeout=1)


def test_leaving_an_iteration_early_consumes_only_what_was_yielded(
    ring: Fd, producer: Fd
) -> None:
    with RingBuffer(ring) as rb:
        run(producer, 10)  # 0 1 3 4 6 7 9
        for record in rb.records(timeout=0):
            if PAIR.unpack(record)[0] == 3:
                break
        assert [PAIR.unpack(r)[0] for r in rb.records(timeout=0)] == [4, 6, 7, 9]


def test_batch_callback_gets_every_ready_record(ring: Fd, producer: Fd) -> None:
    batches: list[list[tuple]] = []
    with RingBuffer(ring) as rb:
        run(producer, 100, seed=1)
        n = rb.poll_batch(lambda rs: batches.append([PAIR.unpack(r) for r in rs]), timeout=1)
        assert n == len(expected(100, 1, 3))
        assert batches == [expected(100, 1, 3)]
        assert rb.consume_batch(lambda rs: batches.append(rs)) == 0


def test_read_batch_fixed_size_records_is_one_copy(ring: Fd) -> None:
    with ringbuf_producer(ring.fileno(), 24) as prog, RingBuffer(ring, event_type=Event) as rb:
        run(prog, 500, seed=3)
        batch = rb.read_batch()
        assert len(batch) == 500 and batch.record_size == 24 and batch.stride == 32
        assert isinstance(batch.offsets, range)
        assert [(e.index, e.value) for e in batch] == expected(500, 3)
        assert (batch[-1].index, batch[499].value) == (499, 3 + 3 * 499)
        assert len(rb.read_batch()) == 0


def test_read_batch_with_discards_and_mixed_sizes(ring: Fd) -> None:
    with ringbuf_producer(ring.fileno(), 16, discard_every=4) as small, \
            ringbuf_producer(ring.fileno(), 32) as big, RingBuffer(ring) as rb:
        run(small, 8)
        run(big, 2, seed=50)
        batch = rb.read_batch()
        assert batch.record_size is None
        assert list(batch.lengths) == [16] * 6 + [32] * 2
        heads = [PAIR.unpack_from(p) for p in batch.payloads()]
        assert heads == expected(8, 0, 4) + expected(2, 50)


def test_read_batch_numpy_view() -> None:
    import numpy as np  # a test dependency (pybpf[numpy])

    with ringbuf_map(1 << 20) as fd, ringbuf_producer(fd.fileno(), 16) as prog, \
            RingBuffer(fd, event_type=Event) as rb:
        run(prog, 10000, seed=11)
        arr = rb.read_batch().numpy()
        assert arr.shape == (10000,)
        assert np.array_equal(arr["index"], np.arange(10000))
        assert np.array_equal(arr["value"], 11 + 3 * np.arange(10000))
        run(prog, 3)
        raw = rb.read_batch().numpy(np.dtype([("i", "<u8"), ("v", "<u8")]))
        assert raw["v"].tolist() == [0, 3, 6]


def test_wrong_map_type_names_the_map() -> None:
    with map_create(MapType.HASH, 4, 4, 8, name="not_a_ring") as fd, \
            pytest.raises(MapTypeError, match=r"map 'not_a_ring' is a BPF_MAP_TYPE_HASH"):
        RingBuffer(fd, lambda r: None)


def test_no_descriptor_or_mapping_left_after_close(ring: Fd, producer: Fd) -> None:
    gc.collect()
    fds, maps = open_fds(), bpf_maps()
    other = ringbuf_map(1 << 14)
    rb = RingBuffer(ring, lambda r: None)
    rb.add(other, lambda r: None)
    other.close()  # the reader holds its own descriptor
    run(producer, 5)
    assert rb.poll(timeout=1) == 4
    assert bpf_maps() == maps + 4
    rb.close()
    rb.close()  # idempotent
    assert open_fds() == fds
    assert bpf_maps() == maps
    with pytest.raises(ClosedError):
        rb.poll(timeout=0)


def test_close_from_another_thread_wakes_a_blocked_poll(ring: Fd) -> None:
    fds, maps = open_fds(), bpf_maps()
    rb = RingBuffer(ring, lambda r: None)
    result: list[object] = []
    poller = threading.Thread(target=lambda: result.append(rb.poll()))
    poller.start()
    time.sleep(0.1)
    assert poller.is_alive()
    start = time.monotonic()
    rb.close()
    poller.join(timeout=5)
    assert not poller.is_alive() and result == [0]
    assert time.monotonic() - start < 2
    assert open_fds() == fds and bpf_maps() == maps


def test_close_from_inside_a_callback(ring: Fd, producer: Fd) -> None:
    fds = open_fds()
    seen: list[int] = []

    def callback(record: memoryview) -> int:
        seen.append(PAIR.unpack(record)[0])
        rb.close()
        return -1

    rb = RingBuffer(ring, callback)
    run(producer, 3)
    assert rb.consume() == 1
    assert rb.closed and seen == [0]
    assert open_fds() == fds


def test_concurrent_consumption_is_refused(ring: Fd, producer: Fd) -> None:
    with RingBuffer(ring, lambda r: rb.consume()) as rb:
        run(producer, 2)
        with pytest.raises(EventError, match="already being consumed"):
            rb.consume()


@pytest.mark.parametrize("reader", ["consume", "read_batch"])
def test_a_busy_record_stops_consumption_until_committed(reader: str) -> None:
    """Record 1 stays reserved (BUSY) while the producer spins on the other CPU."""
    from test_events_support import ringbuf_slow_producer

    cpus = online_cpus()
    if len(cpus) < 2:
        pytest.skip("needs two CPUs: the producer spins on one")
    got: list[tuple] = []

    def take(rb: RingBuffer) -> int:
        if reader == "consume":
            return rb.consume()
        batch = rb.read_batch()
        got.extend(PAIR.unpack(r) for r in batch)
        return len(batch)

    with ringbuf_map(1 << 14) as fd, ringbuf_slow_producer(fd.fileno()) as prog, \
            RingBuffer(fd, lambda r: got.append(PAIR.unpack(r))) as rb:

        def produce() -> None:
            # Run where we stand: a test run sent to another CPU would occupy both.
            os.sched_setaffinity(0, {cpus[1]})
            run(prog, 1 << 23, cpu=cpus[1])

        producer = threading.Thread(target=produce)
        mask = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpus[0]})  # the consumer runs on the other CPU
        try:
            producer.start()
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:
                take(rb)  # spin: wake-ups are deferred while the producer runs
            busy_seen = producer.is_alive()
        finally:
            os.sched_setaffinity(0, mask)
        if not busy_seen:
            producer.join()
            pytest.skip("the producer finished before the consumer looked (slow machine)")
        assert got == [(0, 0)]
        assert take(rb) == 0  # record 1 is still BUSY: nothing more yet
        producer.join()
        assert take(rb) == 1
        assert got == [(0, 0), (1, 1)]


def test_close_from_another_thread_waits_for_a_running_callback(ring: Fd, producer: Fd) -> None:
    fds, maps = open_fds(), bpf_maps()
    entered = threading.Event()
    finished: list[bytes] = []

    def slow(record: memoryview) -> int:
        entered.set()
        time.sleep(0.2)
        finished.append(bytes(record))  # the ring is still mapped: close() waits for us
        return -1

    rb = RingBuffer(ring, slow)
    run(producer, 3)
    poller = threading.Thread(target=rb.poll, args=(5,))
    poller.start()
    assert entered.wait(5)
    rb.close()
    poller.join(timeout=5)
    assert finished == [PAIR.pack(0, 0)]
    assert open_fds() == fds and bpf_maps() == maps


def test_callbacks_on_long_same_size_runs_stop_and_fail_exactly(ring: Fd) -> None:
    """Runs of equal records take the vectorised path; stops and errors stay exact there."""
    with ringbuf_producer(ring.fileno(), 16) as prog:
        got: list[int] = []

        def stop_at_70(record: memoryview) -> int:
            got.append(PAIR.unpack(record)[0])
            return -1 if got[-1] == 70 else 0

        with RingBuffer(ring, stop_at_70) as rb:
            run(prog, 200)
            assert rb.consume() == 71
            assert rb.consume() == 129
            assert got == list(range(200))

        def fail_at_150(event: Event) -> None:
            if event.index == 150:
                raise ValueError(event.index)

        with RingBuffer(ring, fail_at_150, event_type=Event) as rb:
            run(prog, 300)
            with pytest.raises(ValueError) as info:
                rb.consume()
            assert info.value.record_index == 150  # type: ignore[attr-defined]
            seen: list[int] = []
            rb._rings[0].callback = lambda e: seen.append(e.index)
            assert rb.consume() == 149
            assert seen == list(range(151, 300))


def test_batches_of_more_than_max_batch_records(ring: Fd) -> None:
    from pybpf.events.consume_ringbuf import MAX_BATCH

    with ringbuf_map(1 << 22) as big, ringbuf_producer(big.fileno(), 16) as prog:
        sizes: list[int] = []
        firsts: list[int] = []

        def on_batch(records: list[memoryview]) -> None:
            sizes.append(len(records))
            firsts.append(PAIR.unpack(records[0])[0])

        with RingBuffer(big) as rb:
            run(prog, MAX_BATCH + 10)
            assert rb.consume_batch(on_batch) == MAX_BATCH + 10
            assert sizes == [MAX_BATCH, 10] and firsts == [0, MAX_BATCH]
