"""Closing a reader while other threads use it: prompt, clean, and exactly once.

The contract under test (:mod:`pybpf.events.poller`): ``close()`` may be called from any
thread at any moment and returns within a second, even while a kernel producer keeps the ring
full and another thread is consuming it; a thread iterating ``records()`` simply stops; and the
wake-up eventfd is written only while it is still open, so no 8-byte write can land in a
descriptor number the process has since reused.

Producers are real: raw_tracepoint programs (:mod:`test_events_support`) run back to back by
``BPF_PROG_TEST_RUN`` in threads of their own (the syscall releases the GIL, so one of them is
nearly always in the kernel, refilling the ring as fast as it drains).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import random
import struct
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace, TracebackType
from typing import Any

import pytest

from conftest import open_fds, requires_root
from pybpf.abi.bpf import MapType
from pybpf.events import ClosedError, PerfBuffer, RingBuffer, UserRingBuffer
from pybpf.events.poller import Poller
from pybpf.kernel.events_sys import online_cpus
from pybpf.kernel.fd import Fd
from pybpf.kernel.maps import map_create
from pybpf.kernel.system import page_size
from test_events_ringbuf import bpf_maps
from test_events_support import (
    perf_producer,
    ringbuf_map,
    ringbuf_producer,
    run,
    user_ringbuf_drainer,
)

pytestmark = [requires_root, pytest.mark.kernel]

PAIR = struct.Struct("<QQ")
PROMPT = 1.0
"""Seconds close() may take, whatever the other threads are doing."""
ROUNDS = 50
BUDGET = 5.0
"""Seconds a repeated scenario may run in all (rounds stop early on a slow machine)."""


class Event(ctypes.Structure):
    _fields_ = (("index", ctypes.c_uint64), ("value", ctypes.c_uint64))


class Flood:
    """Producer threads running a program back to back until the block ends."""

    def __init__(self, prog: Fd, threads: int = 2, count: int = 1 << 16) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._produce, args=(prog, count), daemon=True)
            for _ in range(threads)
        ]

    def _produce(self, prog: Fd, count: int) -> None:
        while not self._stop.is_set():
            run(prog, count)

    def __enter__(self) -> Flood:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


class Worker:
    """A daemon thread running ``target`` once; keeps what it raised for the test to check."""

    def __init__(self, target: Callable[[], object]) -> None:
        self.error: BaseException | None = None
        self._target = target
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._target()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def join(self, timeout: float = 10) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker thread did not finish"
        if self.error is not None:
            raise self.error


class Timed:
    """``close()`` run in a thread of its own, so that one which never returns fails the test
    (after the producers stop) instead of hanging it."""

    def __init__(self, reader: Any) -> None:
        self.seconds = float("inf")
        self._reader = reader
        self._worker: Worker | None = None

    def __enter__(self) -> Timed:
        def close() -> None:
            start = time.monotonic()
            self._reader.close()
            self.seconds = time.monotonic() - start

        self._worker = Worker(close)
        self._worker.thread.join(PROMPT * 2)
        if self._worker.error is not None:
            raise self._worker.error
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._worker is not None
        if exc_type is None:  # on failure it finishes once the producers stop
            self._worker.join()


def until_closed(step: Callable[[], object]) -> Callable[[], None]:
    """A consumer loop: ``step()`` again and again until the reader says it is closed."""
    def loop() -> None:
        with contextlib.suppress(ClosedError):
            while True:
                step()
    return loop


def rounds() -> Iterator[int]:
    deadline = time.monotonic() + BUDGET
    for index in range(ROUNDS):
        if index >= 5 and time.monotonic() > deadline:
            return
        yield index


@pytest.fixture
def fed() -> Iterator[tuple[Fd, Fd]]:
    """A 64 KiB ring buffer map and a program writing 16-byte records ``(i, 3 * i)`` to it."""
    with ringbuf_map(1 << 16) as ring, ringbuf_producer(ring.fileno(), 16) as producer:
        yield ring, producer


# --- close() returns promptly under a producer that keeps the ring full --------------------

BIG = 1 << 22
"""A ring holding more than one batch (MAX_BATCH records): batch consumers loop too."""

CONSUMERS: dict[str, Callable[[RingBuffer, Callable[..., object]], object]] = {
    "poll": lambda rb, seen: rb.poll(timeout=1),
    "consume": lambda rb, seen: rb.consume(),
    "consume_batch": lambda rb, seen: rb.consume_batch(seen),
}


@pytest.mark.parametrize("event_type", [None, Event], ids=["views", "typed"])
@pytest.mark.parametrize("how", list(CONSUMERS))
def test_close_returns_promptly_while_the_ring_is_kept_full(how: str, event_type: Any) -> None:
    fds, maps = open_fds(), bpf_maps()
    step = CONSUMERS[how]
    with ringbuf_map(BIG) as ring, ringbuf_producer(ring.fileno(), 16) as producer, \
            Flood(producer):
        for _ in rounds():
            started = threading.Event()

            def seen(*_: object, started: threading.Event = started) -> None:
                started.set()

            rb = RingBuffer(ring, seen, event_type=event_type)
            consumer = Worker(until_closed(lambda rb=rb, seen=seen: step(rb, seen)))
            assert started.wait(5)
            time.sleep(random.uniform(0, 0.005))
            with Timed(rb) as closing:
                assert closing.seconds < PROMPT
            consumer.join(timeout=PROMPT)  # the consumer stops too, as promptly
    gc.collect()
    assert open_fds() == fds and bpf_maps() == maps


def test_close_does_not_wait_for_a_slow_callback_and_it_releases_after(
    fed: tuple[Fd, Fd],
) -> None:
    ring, producer = fed
    fds, maps = open_fds(), bpf_maps()
    entered, seen = threading.Event(), []

    def slow(record: memoryview) -> int:
        entered.set()
        time.sleep(2 * PROMPT)
        seen.append(PAIR.unpack(record))  # still mapped: the consumer releases, after this
        return -1

    rb = RingBuffer(ring, slow)
    run(producer, 3)
    consumer = Worker(lambda: rb.poll(timeout=5))
    assert entered.wait(5)
    with Timed(rb) as closing:
        assert closing.seconds < PROMPT
    assert rb.closed
    consumer.join()
    assert seen == [(0, 0)]
    assert open_fds() == fds and bpf_maps() == maps


# --- records() in one thread, close() in another ---------------------------------------------

def test_iteration_stops_cleanly_when_another_thread_closes(fed: tuple[Fd, Fd]) -> None:
    """Two rings, so the iterator holds records of both when close() lands in the first."""
    ring, producer = fed
    fds, maps = open_fds(), bpf_maps()
    with ringbuf_map(1 << 16, name="second") as second, \
            ringbuf_producer(second.fileno(), 16) as other:
        rb = RingBuffer(ring)
        rb.add(second)
        run(producer, 100)
        run(other, 100)
        paused, closed = threading.Event(), threading.Event()
        got: list[tuple[int, int]] = []
        after: list[bytes] = []

        def iterate() -> None:
            for record in rb.records(timeout=1):
                if closed.is_set():
                    after.append(bytes(record))
                    continue
                got.append(PAIR.unpack(record))
                if len(got) == 10:
                    paused.set()
                    assert closed.wait(5)
                    got.append(PAIR.unpack(record))  # the record in hand stays readable

        consumer = Worker(iterate)
        assert paused.wait(5)
        with Timed(rb) as closing:
            assert closing.seconds < PROMPT
        closed.set()
        consumer.join()
        assert got == [(i, 3 * i) for i in range(10)] + [(9, 27)]
        assert after == []  # nothing more once closed
    gc.collect()
    assert open_fds() == fds and bpf_maps() == maps


@pytest.mark.parametrize("event_type", [None, Event], ids=["views", "typed"])
def test_iteration_under_a_flood_ends_without_error_at_close(
    fed: tuple[Fd, Fd], event_type: Any
) -> None:
    ring, producer = fed
    fds, maps = open_fds(), bpf_maps()
    with ringbuf_map(1 << 16, name="second") as second, \
            ringbuf_producer(second.fileno(), 16) as other, Flood(producer), Flood(other):
        for _ in rounds():
            rb = RingBuffer(ring, event_type=event_type)
            rb.add(second, event_type=event_type)
            started = threading.Event()

            def iterate(rb: RingBuffer = rb, started: threading.Event = started) -> None:
                for record in rb.records(timeout=1):
                    started.set()
                    index, _value = PAIR.unpack(bytes(record))
                    assert index < 1 << 16

            consumer = Worker(iterate)
            assert started.wait(5)
            time.sleep(random.uniform(0, 0.01))
            with Timed(rb) as closing:
                assert closing.seconds < PROMPT
            consumer.join(timeout=PROMPT)
    gc.collect()
    assert open_fds() == fds and bpf_maps() == maps


# --- the wake-up eventfd is written only while open ----------------------------------------

def is_open_eventfd(fd: int) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"
    except FileNotFoundError:
        return False


@pytest.fixture
def slow_signal(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """``os.eventfd_write`` that gives other threads 50 ms before it writes, and notes every
    descriptor it was asked to write to that was no longer an open eventfd by then."""
    real = os.eventfd_write
    state = SimpleNamespace(signalling=threading.Event(), stale=[])

    def spy(fd: int, value: int) -> None:
        state.signalling.set()
        time.sleep(0.05)
        if not is_open_eventfd(fd):
            state.stale.append(fd)
        real(fd, value)

    monkeypatch.setattr(os, "eventfd_write", spy)
    return state


def test_poller_close_signals_before_a_concurrent_leave_can_release(
    slow_signal: SimpleNamespace,
) -> None:
    fds = open_fds()
    for _ in range(3):
        slow_signal.signalling.clear()
        released = threading.Event()
        poller: Poller[int] = Poller("test poller", released.set)

        def session(poller: Poller[int] = poller) -> None:
            poller.enter()
            try:
                assert slow_signal.signalling.wait(5)  # leave while close() is signalling
            finally:
                poller.leave()

        worker = Worker(session)
        time.sleep(0.01)
        poller.close()
        worker.join()
        assert released.is_set()
    assert slow_signal.stale == []
    assert open_fds() == fds


@contextlib.contextmanager
def reader_with_producer(kind: str) -> Iterator[tuple[Callable[[Any], Any], Callable[[], int]]]:
    """``(open a reader with this callback, produce two records)`` for ``kind``."""
    cpu = online_cpus()[0]
    if kind == "ringbuf":
        with ringbuf_map(1 << 16) as fd, ringbuf_producer(fd.fileno(), 16) as prog:
            yield (lambda callback: RingBuffer(fd, callback)), (lambda: run(prog, 2))
        return
    with map_create(MapType.PERF_EVENT_ARRAY, 4, 4, cpu + 1, name="samples") as fd, \
            perf_producer(fd.fileno(), 16) as prog:
        yield (lambda callback: PerfBuffer(fd, callback, cpus=[cpu])), \
            (lambda: run(prog, 2, cpu=cpu))


@pytest.mark.parametrize("kind", ["ringbuf", "perfbuf"])
def test_reader_close_racing_the_consumer_leaving(
    kind: str, slow_signal: SimpleNamespace
) -> None:
    fds = open_fds()
    with reader_with_producer(kind) as (open_reader, produce):
        for _ in range(3):
            slow_signal.signalling.clear()
            entered = threading.Event()

            def callback(*_: object, entered: threading.Event = entered) -> int:
                entered.set()
                assert slow_signal.signalling.wait(5)  # leave while close() is signalling
                return -1

            reader = open_reader(callback)
            produce()
            consumer = Worker(lambda reader=reader: reader.poll(timeout=5))
            assert entered.wait(5)
            reader.close()
            consumer.join()
    assert slow_signal.stale == []
    assert open_fds() == fds


def test_user_ringbuffer_close_while_producers_write() -> None:
    """A program drains all along; writers end with ClosedError, never anything else."""
    fds = open_fds()
    with map_create(MapType.USER_RINGBUF, 0, 0, page_size(), name="to_prog") as fd, \
            map_create(MapType.ARRAY, 4, 16, 1, name="result") as result, \
            user_ringbuf_drainer(fd.fileno(), result.fileno()) as drainer, \
            Flood(drainer, count=0):
        for _ in rounds():
            urb = UserRingBuffer(fd)
            wrote = threading.Event()

            def write(urb: UserRingBuffer = urb, wrote: threading.Event = wrote) -> None:
                if urb.write(bytes(8)) and urb.free() >= 0:
                    wrote.set()

            writers = [Worker(until_closed(write)) for _ in range(2)]
            assert wrote.wait(5)
            time.sleep(random.uniform(0, 0.002))
            with Timed(urb) as closing:
                assert closing.seconds < PROMPT
            for writer in writers:
                writer.join()
    assert open_fds() == fds
