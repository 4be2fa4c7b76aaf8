"""pybpf.events with a clang-compiled object loaded by BpfObject (``events_stream.bpf.c``).

``produce`` emits ``args[0]`` ``struct event`` records into the ring buffer ``events`` (every
5th discarded) and into the perf buffer ``samples``; ``drain`` drains the user ring buffer
``commands``, summing ``value`` into the global ``drained_sum``.  Event types are resolved by
C name from the object's BTF.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from conftest import compile_bpf, open_fds, requires_root
from pybpf.abi.bpf import BpfTestRunFlags
from pybpf.events import EventError, PerfBuffer, RingBuffer, UserRingBuffer
from pybpf.kernel.events_sys import online_cpus
from pybpf.kernel.progs import prog_test_run
from pybpf.object import BpfObject

pytestmark = [requires_root, pytest.mark.kernel]


@pytest.fixture
def obj() -> Iterator[BpfObject]:
    o = BpfObject.open(compile_bpf("events_stream"))
    o.load()
    yield o
    o.close()


def run(obj: BpfObject, name: str, *args: int, cpu: int = 0) -> int:
    fd = obj.program(name).fd
    assert fd is not None
    ctx = struct.pack(f"<{len(args)}Q", *args) if args else bytes(8)
    result = prog_test_run(
        fd, ctx_in=ctx, ctx_size_out=0, repeat=0,
        flags=BpfTestRunFlags.BPF_F_TEST_RUN_ON_CPU, cpu=cpu,
    )
    return result.retval


def bss(obj: BpfObject, name: str) -> int:
    """A u64 global of ``.bss``, read from the kernel map at its BTF offset."""
    var = next(v for v in obj.spec.variables_of(".bss") if v.name == name)
    value = obj.map(".bss").lookup(0)
    assert isinstance(value, bytes)
    return int.from_bytes(value[var.offset : var.offset + 8], "little")


def test_ring_buffer_events_typed_by_btf_name(obj: BpfObject) -> None:
    cpu = online_cpus()[-1]
    got = []
    with RingBuffer(obj.map("events"), got.append, event_type="struct event") as rb:
        run(obj, "produce", 50, 1000, cpu=cpu)
        assert rb.poll(timeout=1) == 40
    assert [(e.index, e.value, e.cpu, e.kind, e.flags) for e in got] == [
        (i, 1000 + 3 * i, cpu, 1, i) for i in range(50) if i % 5 != 4
    ]
    assert type(got[0]).__name__ == "event"


def test_ring_buffer_batch_of_btf_typed_records(obj: BpfObject) -> None:
    with RingBuffer(obj.map("events"), event_type="struct event") as rb:
        run(obj, "produce", 20, 7)
        batch = rb.read_batch()
        assert batch.record_size is None  # discarded records break the stride
        assert [e.value for e in batch] == [7 + 3 * i for i in range(20) if i % 5 != 4]


def test_perf_buffer_samples_typed_by_btf_name(obj: BpfObject) -> None:
    got = []
    cpus = online_cpus()
    with PerfBuffer(obj.map("samples"), lambda c, e: got.append((c, e.index, e.kind)),
                    event_type="struct event") as pb:
        for cpu in cpus:
            run(obj, "produce", 10, 0, cpu=cpu)
        total = 0
        while total < 10 * len(cpus):
            n = pb.poll(timeout=2)
            assert n
            total += n
    for cpu in cpus:
        assert [(i, k) for c, i, k in got if c == cpu] == [(i, 2) for i in range(10)]


def test_user_ring_buffer_records_counted_by_the_program(obj: BpfObject) -> None:
    with UserRingBuffer(obj.map("commands")) as urb:
        for i in range(1, 101):
            with urb.reserve("struct command") as res:  # type: ignore[union-attr]
                res.value.value = i
                res.value.tag = i * 2
        assert run(obj, "drain") == 100
    assert bss(obj, "drained_sum") == 5050
    assert bss(obj, "drained_count") == 100
    assert bss(obj, "last_tag") == 200


def test_a_map_of_an_unloaded_object_is_refused() -> None:
    o = BpfObject.open(compile_bpf("events_stream"))
    with pytest.raises(EventError, match="map 'events' has no file descriptor"):
        RingBuffer(o.map("events"), lambda r: None)


def test_readers_of_an_object_leak_nothing(obj: BpfObject) -> None:
    fds = open_fds()
    rb = RingBuffer(obj.map("events"), lambda r: None)
    pb = PerfBuffer(obj.map("samples"), lambda c, d: None)
    urb = UserRingBuffer(obj.map("commands"))
    run(obj, "produce", 3, 0)
    assert rb.consume() == 3
    for reader in (rb, pb, urb):
        reader.close()
    assert open_fds() == fds
