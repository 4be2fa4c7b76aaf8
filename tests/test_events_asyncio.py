"""asyncio integration: ``await rb.poll_async()`` and ``async for`` on the running loop."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator

import pytest

from conftest import open_fds, requires_root
from pybpf.abi.bpf import MapType
from pybpf.events import PerfBuffer, RingBuffer
from pybpf.kernel.events_sys import online_cpus
from pybpf.kernel.fd import Fd
from pybpf.kernel.maps import map_create
from test_events_support import perf_producer, ringbuf_map, ringbuf_producer, run

pytestmark = [requires_root, pytest.mark.kernel]

PAIR = struct.Struct("<QQ")


@pytest.fixture
def ring() -> Iterator[tuple[Fd, Fd]]:
    fd = ringbuf_map(1 << 16)
    prog = ringbuf_producer(fd.fileno(), 16)
    yield fd, prog
    prog.close()
    fd.close()


def test_poll_async_waits_without_blocking_the_loop(ring: tuple[Fd, Fd]) -> None:
    fd, prog = ring
    got: list[tuple] = []

    async def main() -> int:
        with RingBuffer(fd, lambda r: got.append(PAIR.unpack(r))) as rb:
            assert await rb.poll_async(timeout=0.01) == 0
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, run, prog, 3, 1)
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.005)
                    ticks += 1

            task = asyncio.create_task(ticker())
            count = await rb.poll_async(timeout=5)
            task.cancel()
            assert ticks >= 1  # the loop kept running while we waited
            return count

    assert asyncio.run(main()) == 3
    assert got == [(0, 1), (1, 4), (2, 7)]


def test_async_for_until_closed(ring: tuple[Fd, Fd]) -> None:
    fd, prog = ring
    fds = open_fds()

    async def main() -> list[tuple]:
        rb = RingBuffer(fd)
        seen: list[tuple] = []
        loop = asyncio.get_running_loop()
        loop.call_soon(run, prog, 4, 10)
        async for record in rb:
            seen.append(PAIR.unpack(record))
            if len(seen) == 4:
                loop.call_later(0.05, run, prog, 2, 20)
            if len(seen) == 6:
                loop.call_later(0.05, rb.close)
        return seen

    assert asyncio.run(main()) == [(0, 10), (1, 13), (2, 16), (3, 19), (0, 20), (1, 23)]
    assert open_fds() == fds


def test_async_for_over_a_perf_buffer() -> None:
    cpu = online_cpus()[0]
    with map_create(MapType.PERF_EVENT_ARRAY, 4, 4, len(online_cpus())) as pm, \
            perf_producer(pm.fileno(), 16) as prog:

        async def main() -> list[tuple]:
            out: list[tuple] = []
            with PerfBuffer(pm) as pb:
                asyncio.get_running_loop().call_later(0.02, run, prog, 3, 0, cpu)
                async for c, data in pb.records_async(timeout=1):
                    out.append((c, PAIR.unpack_from(data)))
                    if len(out) == 3:
                        break
            return out

        assert asyncio.run(main()) == [(cpu, (i, 3 * i)) for i in range(3)]


def test_leaving_async_for_early_consumes_exactly_what_was_yielded(ring: tuple[Fd, Fd]) -> None:
    fd, prog = ring

    async def main() -> tuple[list[tuple], int]:
        with RingBuffer(fd) as rb:
            run(prog, 6)
            first: list[tuple] = []
            async for record in rb:
                assert isinstance(record, bytes)
                first.append(PAIR.unpack(record))
                if len(first) == 2:
                    break
            rest = [PAIR.unpack(r) for r in rb.records(timeout=0)]  # usable right away
            return first + rest, len(rest)

    records, rest = asyncio.run(main())
    assert records == [(i, 3 * i) for i in range(6)] and rest == 4
