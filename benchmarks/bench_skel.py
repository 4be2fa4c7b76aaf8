"""Subskeletons: binding time and per-access cost, live runtime vs generated module vs C.

Workload: the skeleton test library (``tests/fixtures/skel_lib1/2.bpf.c``) linked into test
application 1 with bpftool.  Measured on the opened object (variables live in the same
anonymous mmap before and after load, so access costs do not depend on the kernel):

- binding: ``Subskeleton.open(obj, library_path)`` (parses the library each time),
  ``Subskeleton.from_description`` (library already described), the generated
  ``SkelLib.open(obj)``, and C's ``skel_lib__open(obj)`` on libbpf (bpftool's header);
- access: a scalar read/write (``lib.data.lib_counter``) and a struct field read/write
  (``lib.data.lib_stats.sum``, which makes a ctypes view each time) through the live accessor
  and the generated one, next to C's pointer dereference.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.common import BUILD, REPO, report, run_c, timeit

FIXTURES = REPO / "tests" / "fixtures"
CFLAGS = ["-g", "-O2", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", f"-I{FIXTURES}"]
ACCESSES = 200_000

C_BENCH = r"""
#include <stdio.h>
#include <time.h>
#include <bpf/libbpf.h>
#include "skel_lib.h"
#include "skel_lib.subskel.h"
#include "skel_app1.skel.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
	struct skel_app1 *skel = skel_app1__open();
	struct skel_lib *lib;
	volatile long long sink = 0;
	double t;
	int i, n = 2000;

	if (!skel)
		return 1;
	t = now();
	for (i = 0; i < n; i++)
		skel_lib__destroy(skel_lib__open(skel->obj));
	printf("open_us=%f\n", (now() - t) / n * 1e6);
	lib = skel_lib__open(skel->obj);
	n = 100000000;
	t = now();
	for (i = 0; i < n; i++)
		sink += *(volatile int *)lib->data.lib_counter;
	printf("scalar_read_ns=%f\n", (now() - t) / n * 1e9);
	t = now();
	for (i = 0; i < n; i++)
		((volatile struct lib_stats *)lib->data.lib_stats)->sum = i;
	printf("field_write_ns=%f\n", (now() - t) / n * 1e9);
	skel_lib__destroy(lib);
	skel_app1__destroy(skel);
	return (int)(sink & 0);
}
"""


def _tool(name: str) -> str:
    found = shutil.which(name) or f"/usr/sbin/{name}"
    if not Path(found).exists():
        raise SystemExit(f"{name} is needed to build the benchmark's objects")
    return found


def _objects() -> dict[str, Path]:
    """The library and application 1, compiled with clang and linked with bpftool."""
    out = BUILD / "skel"
    out.mkdir(parents=True, exist_ok=True)
    clang, bpftool = _tool("clang-16"), _tool("bpftool")
    objs: dict[str, Path] = {}
    for name in ("lib1", "lib2", "app1"):
        objs[name] = out / f"skel_{name}.bpf.o"
        subprocess.run([clang, *CFLAGS, "-c", str(FIXTURES / f"skel_{name}.bpf.c"),
                        "-o", str(objs[name])], check=True)  # fmt: skip
    objs["lib"] = out / "skel_lib.o"
    objs["final"] = out / "skel_app1.o"
    subprocess.run([bpftool, "gen", "object", objs["lib"], objs["lib2"], objs["lib1"]], check=True)
    subprocess.run([bpftool, "gen", "object", objs["final"], objs["app1"], objs["lib"]], check=True)
    return objs


def _generated_module(lib: Path) -> ModuleType:
    from pybpf.skel.codegen import generate

    path = BUILD / "skel" / "skel_lib_gen.py"
    path.write_text(generate("subskeleton", lib, "skel_lib", "python"))
    spec = importlib.util.spec_from_file_location("skel_lib_gen", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _c_baseline(objs: dict[str, Path]) -> dict[str, float] | None:
    if shutil.which("gcc") is None or not Path("/usr/include/bpf/libbpf.h").exists():
        return None
    bpftool = _tool("bpftool")
    headers = BUILD / "skel"
    for kind, obj, name, filename in (
        ("subskeleton", objs["lib"], "skel_lib", "skel_lib.subskel.h"),
        ("skeleton", objs["final"], "skel_app1", "skel_app1.skel.h"),
    ):
        text = subprocess.run([bpftool, "gen", kind, str(obj), "name", name],
                              check=True, capture_output=True, text=True).stdout  # fmt: skip
        (headers / filename).write_text(text)
    src, exe = headers / "bench_skel.c", headers / "bench_skel"
    src.write_text(C_BENCH)
    subprocess.run(["gcc", "-O2", f"-I{headers}", f"-I{FIXTURES}", str(src), "-o", str(exe),
                    "-lbpf"], check=True)  # fmt: skip
    output = run_c(exe)
    return {k: float(v) for k, v in (line.split("=") for line in output.split())}


def _per_access_ns(fn: Any) -> float:
    return timeit(fn, repeat=5) / ACCESSES * 1e9


def main() -> None:
    from pybpf.obj import ObjectSpec
    from pybpf.object import BpfObject
    from pybpf.skel.description import describe
    from pybpf.skel.runtime import Subskeleton

    objs = _objects()
    module = _generated_module(objs["lib"])
    obj = BpfObject.open(objs["final"], "skel_app1")
    desc = describe(ObjectSpec.from_path(objs["lib"]))
    c = _c_baseline(objs)

    rows = [
        ("Subskeleton.open(obj, path) (live)", timeit(
            lambda: Subskeleton.open(obj, objs["lib"]), repeat=7, number=20) * 1e6, "us"),
        ("Subskeleton.from_description (live)", timeit(
            lambda: Subskeleton.from_description(obj, desc), repeat=7, number=50) * 1e6, "us"),
        ("SkelLib.open(obj) (generated)", timeit(
            lambda: module.SkelLib.open(obj), repeat=7, number=50) * 1e6, "us"),
    ]  # fmt: skip
    if c is not None:
        rows.append(("skel_lib__open (C, libbpf)", c["open_us"], "us"))
    report("subskeleton binding (per open)", rows)

    live = Subskeleton.open(obj, objs["lib"])
    gen = module.SkelLib.open(obj)
    live_data, gen_data = live.data, gen.data
    span = range(ACCESSES)

    def live_read() -> None:
        for _ in span:
            live_data.lib_counter  # noqa: B018

    def live_write() -> None:
        for i in span:
            live_data.lib_counter = i

    def gen_read() -> None:
        for _ in span:
            gen_data.lib_counter  # noqa: B018

    def gen_write() -> None:
        for i in span:
            gen_data.lib_counter = i

    def live_field_read() -> None:
        for _ in span:
            live_data.lib_stats.sum  # noqa: B018

    def live_field_write() -> None:
        for i in span:
            live_data.lib_stats.sum = i

    def gen_field_read() -> None:
        for _ in span:
            gen_data.lib_stats.sum  # noqa: B018

    def gen_field_write() -> None:
        for i in span:
            gen_data.lib_stats.sum = i

    stats = gen_data.lib_stats

    def held_view_write() -> None:
        for i in span:
            stats.sum = i

    rows = [
        ("scalar read, live", _per_access_ns(live_read), "ns"),
        ("scalar read, generated", _per_access_ns(gen_read), "ns"),
        ("scalar write, live", _per_access_ns(live_write), "ns"),
        ("scalar write, generated", _per_access_ns(gen_write), "ns"),
        ("struct field read, live", _per_access_ns(live_field_read), "ns"),
        ("struct field read, generated", _per_access_ns(gen_field_read), "ns"),
        ("struct field write, live", _per_access_ns(live_field_write), "ns"),
        ("struct field write, generated", _per_access_ns(gen_field_write), "ns"),
        ("struct field write, view held", _per_access_ns(held_view_write), "ns"),
    ]
    if c is not None:
        rows += [
            ("scalar read (C pointer)", c["scalar_read_ns"], "ns"),
            ("struct field write (C pointer)", c["field_write_ns"], "ns"),
        ]
    report("variable access (per access, loop included)", rows)


if __name__ == "__main__":
    main()
