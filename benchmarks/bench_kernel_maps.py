"""Per-element map operations through ``pybpf.kernel`` (needs root): the cost of our side of
one ``bpf()`` call, for array and hash maps, 100k operations each.

Batches are shown next to single-element calls because they are the answer when per-call
overhead matters.  Run: ``python -m benchmarks kernel_maps``.
"""

from __future__ import annotations

import os
import struct

from benchmarks.common import report, timeit

OPS = 100_000
BATCH = 1024


def _bench_map(label: str, map_type: int) -> list[tuple[str, float, str]]:
    from pybpf.kernel.maps import (
        map_create,
        map_lookup_batch,
        map_lookup_elem,
        map_lookup_elem_into,
        map_update_batch,
        map_update_elem,
    )

    keys = [struct.pack("<I", i % BATCH) for i in range(OPS)]
    value = struct.pack("<Q", 42)
    buf = bytearray(8)
    batch_keys = keys[:BATCH]
    batch_values = [value] * BATCH
    with map_create(map_type, 4, 8, BATCH) as m:

        def update() -> None:
            for k in keys:
                map_update_elem(m, k, value)

        def lookup() -> None:
            for k in keys:
                map_lookup_elem(m, k, 8)

        def lookup_into() -> None:
            for k in keys:
                map_lookup_elem_into(m, k, buf)

        def update_batch() -> None:
            map_update_batch(m, batch_keys, batch_values)

        def lookup_batch() -> None:
            map_lookup_batch(m, 4, 8, BATCH)

        per_op = 1e9 / OPS
        per_elem = 1e9 / BATCH
        return [
            (f"{label} update", timeit(update, repeat=3) * per_op, "ns/op"),
            (f"{label} lookup", timeit(lookup, repeat=3) * per_op, "ns/op"),
            (f"{label} lookup_into", timeit(lookup_into, repeat=3) * per_op, "ns/op"),
            (f"{label} update_batch/{BATCH}", timeit(update_batch) * per_elem, "ns/elem"),
            (f"{label} lookup_batch/{BATCH}", timeit(lookup_batch) * per_elem, "ns/elem"),
        ]


def main() -> None:
    if os.geteuid() != 0:
        print("\n## kernel maps: skipped (needs root for bpf())")
        return
    from pybpf.abi.bpf import MapType

    rows = _bench_map("array", MapType.ARRAY)
    rows += _bench_map("hash", MapType.HASH)
    report(f"kernel maps: pybpf.kernel, {OPS} ops (best of 3)", rows)


if __name__ == "__main__":
    main()
