"""Loading an object and using its maps: pybpf next to libbpf (needs root).

Both sides load ``tests/fixtures/load_globals.bpf.c`` (17 maps including map-in-map and a
prog array, 6 programs, 4 subprograms, kconfig externs): open + load + close, best of
``LOADS``; then per-element update and lookup on its array map ``counts``, ``OPS`` each.
Filling a map-in-map slot makes the kernel wait for an RCU grace period (milliseconds, and
noisy), which dominates that object's load on both sides; ``load_core.bpf.c`` (one program
with CO-RE relocations, three global-data maps) shows the loaders' own overhead.
The C reference (libbpf 1.1, built here with gcc -O2) does the same with
``bpf_object__open_file``/``bpf_object__load`` and ``bpf_map__update_elem``/``lookup_elem``.
Run: ``python -m benchmarks load``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from benchmarks.common import BUILD, REPO, build_c, compile_bpf, report, run_c, timeit

LOADS = 30
OPS = 100_000

C_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <bpf/libbpf.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

int main(int argc, char **argv)
{
	int loads = atoi(argv[2]), ops = atoi(argv[3]);
	double best = 1e30, t;
	struct bpf_object *obj;
	struct bpf_map *map;

	libbpf_set_print(quiet);
	for (int i = 0; i < loads; i++) {
		t = now();
		obj = bpf_object__open_file(argv[1], NULL);
		if (!obj || bpf_object__load(obj))
			return 1;
		bpf_object__close(obj);
		t = now() - t;
		if (t < best)
			best = t;
	}
	printf("load %.0f\n", best);
	if (ops == 0)
		return 0;
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj))
		return 1;
	map = bpf_object__find_map_by_name(obj, "counts");
	unsigned int key;
	unsigned long long value = 42;
	t = now();
	for (int i = 0; i < ops; i++) {
		key = i & 3;
		bpf_map__update_elem(map, &key, sizeof(key), &value, sizeof(value), 0);
	}
	printf("update %.1f\n", (now() - t) / ops);
	t = now();
	for (int i = 0; i < ops; i++) {
		key = i & 3;
		bpf_map__lookup_elem(map, &key, sizeof(key), &value, sizeof(value), 0);
	}
	printf("lookup %.1f\n", (now() - t) / ops);
	bpf_object__close(obj);
	return 0;
}
"""


def main() -> None:
    if os.geteuid() != 0:
        print("\n## load: skipped (needs root for bpf())")
        return
    from pybpf.object import BpfObject

    fixtures = REPO / "tests/fixtures"
    obj_path = compile_bpf(fixtures / "load_globals.bpf.c", BUILD / "load_globals.o")
    small_path = compile_bpf(fixtures / "load_core.bpf.c", BUILD / "load_core.o")
    exe = build_c("bench_load", C_SOURCE, "-lbpf")
    c = dict(line.split() for line in run_c(exe, str(obj_path), str(LOADS), str(OPS)).splitlines())
    c_small = float(run_c(exe, str(small_path), str(LOADS), "0").split()[1])

    def load_close(path: Path) -> float:
        def once() -> None:
            obj = BpfObject.open(path)
            obj.load()
            obj.close()

        return timeit(once, repeat=LOADS) * 1e9

    py_load = load_close(obj_path)
    py_small = load_close(small_path)
    with BpfObject.open(obj_path) as obj:
        obj.load()
        counts = obj.map("counts")
        keys = [i & 3 for i in range(OPS)]
        raw_keys = [struct.pack("<I", k) for k in keys]
        raw_value = struct.pack("<Q", 42)

        def update_ints() -> None:
            for k in keys:
                counts.update(k, 42)

        def update_bytes() -> None:
            for k in raw_keys:
                counts.update(k, raw_value)

        def lookup() -> None:
            for k in raw_keys:
                counts.lookup(k)

        per_op = 1e9 / OPS
        py_update_int = timeit(update_ints, repeat=3) * per_op
        py_update = timeit(update_bytes, repeat=3) * per_op
        py_lookup = timeit(lookup, repeat=3) * per_op

    c_load, c_update, c_lookup = float(c["load"]), float(c["update"]), float(c["lookup"])
    rows = [
        ("load_globals open+load+close pybpf", py_load / 1e6, "ms"),
        ("load_globals open+load+close libbpf", c_load / 1e6, "ms"),
        ("  ratio pybpf/libbpf", py_load / c_load, "x"),
        ("load_core open+load+close pybpf", py_small / 1e6, "ms"),
        ("load_core open+load+close libbpf", c_small / 1e6, "ms"),
        ("  ratio pybpf/libbpf", py_small / c_small, "x"),
        ("update (bytes) pybpf", py_update, "ns/op"),
        ("update (ints) pybpf", py_update_int, "ns/op"),
        ("update libbpf", c_update, "ns/op"),
        ("  ratio pybpf(bytes)/libbpf", py_update / c_update, "x"),
        ("lookup pybpf", py_lookup, "ns/op"),
        ("lookup libbpf", c_lookup, "ns/op"),
        ("  ratio pybpf/libbpf", py_lookup / c_lookup, "x"),
    ]
    report(f"load: load_globals.bpf.o, best of {LOADS} loads; {OPS} map ops", rows)


if __name__ == "__main__":
    main()
