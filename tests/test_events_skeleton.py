"""Skeleton access to event streams: ``skel.maps.events.reader(callback)`` in one call."""

from __future__ import annotations

import struct

import pytest

from conftest import compile_bpf, open_fds, requires_root
from pybpf import BpfError, RingBuffer, Skeleton, UserRingBuffer
from pybpf.events import PerfBuffer

pytestmark = [requires_root, pytest.mark.kernel]


def test_skeleton_maps_give_their_readers() -> None:
    before = open_fds()
    with Skeleton.open(compile_bpf("events_stream")) as skel:
        with pytest.raises(BpfError, match="not loaded"):
            skel.maps.events.reader(print)
        skel.load()
        got: list[tuple[int, int]] = []
        with skel.maps.events.reader(
            lambda e: got.append((e.index, e.value)), event_type="struct event"
        ) as rb:
            assert isinstance(rb, RingBuffer)
            skel.progs.produce.test_run(ctx_in=struct.pack("<2Q", 10, 100))
            assert rb.poll(timeout=1) == 8  # every 5th record is discarded by the program
        assert got == [(i, 100 + 3 * i) for i in range(10) if i % 5 != 4]
        with skel.maps.samples.reader(lambda cpu, data: None) as pb:
            assert isinstance(pb, PerfBuffer)
        with skel.maps.commands.reader() as ub:
            assert isinstance(ub, UserRingBuffer)
        with pytest.raises(BpfError, match="not an event stream"):
            skel.obj.map(".bss").reader(print)
    assert open_fds() == before
