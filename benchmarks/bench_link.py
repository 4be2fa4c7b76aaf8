"""Static linking: ``pybpf.linker`` vs ``bpftool gen object`` (libbpf's linker, in C).

Two workloads: the test fixture set (three objects with weak/strong/extern symbols across
files) and a generated set of 50 objects that all include one header of shared types, so
BTF deduplication has 50 copies of every type to merge.  bpftool's time includes starting
the process (a few milliseconds), which is how users call it; ours runs in-process.  Also
reported: BTF type counts of both outputs (ours must not be larger).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from benchmarks.common import BUILD, REPO, report, timeit

FIXTURES = REPO / "tests" / "fixtures"
GENERATED = BUILD / "link50"
N_OBJECTS = 50
N_SHARED_TYPES = 40

CFLAGS = ["-g", "-O2", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", f"-I{FIXTURES}"]


def _clang() -> str:
    return shutil.which("clang-16") or "clang"


def _bpftool() -> str:
    found = shutil.which("bpftool") or "/usr/sbin/bpftool"
    if not Path(found).exists():
        raise SystemExit("bpftool is needed as the reference linker")
    return found


def _compile(src: Path, out: Path) -> Path:
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    subprocess.run(
        [_clang(), *CFLAGS, f"-I{src.parent}", "-c", str(src), "-o", str(out)], check=True
    )
    return out


def _shared_header() -> str:
    """A header of chained structs, unions, enums and typedefs every generated file shares."""
    lines = ["#include <linux/bpf.h>", "#include <bpf/bpf_helpers.h>", ""]
    for i in range(N_SHARED_TYPES):
        prev = f"struct s{i - 1} *link; " if i else ""
        lines += [
            f"enum e{i} {{ E{i}_A = {i}, E{i}_B }};",
            f"typedef unsigned long long u64_{i};",
            f"struct s{i} {{ {prev}u64_{i} value; enum e{i} kind; "
            f"union {{ int i; char c[{i % 7 + 1}]; }} u; }};",
        ]
    lines.append(
        "struct big { " + " ".join(f"struct s{i} m{i};" for i in range(N_SHARED_TYPES)) + " };"
    )
    return "\n".join(lines) + "\n"


def _generated_source(i: int) -> str:
    nxt = (i + 1) % N_OBJECTS
    return f"""#include "shared.h"

extern int func_{nxt}(struct s{nxt % N_SHARED_TYPES} *p);
int weak_value_{i % 5} __weak = {i + 1};
struct big big_{i};
static int counter_{i};

__noinline int func_{i}(struct s{i % N_SHARED_TYPES} *p)
{{
	return p ? p->value + counter_{i} : {i};
}}

SEC("syscall")
int prog_{i}(void *ctx)
{{
	counter_{i}++;
	big_{i}.m0.value = weak_value_{i % 5};
	return func_{nxt}(0);
}}

char LICENSE[] SEC("license") = "GPL";
"""


def generated_set() -> list[Path]:
    GENERATED.mkdir(parents=True, exist_ok=True)
    header = GENERATED / "shared.h"
    text = _shared_header()
    if not header.exists() or header.read_text() != text:
        header.write_text(text)
    objs = []
    for i in range(N_OBJECTS):
        src = GENERATED / f"gen{i}.bpf.c"
        body = _generated_source(i)
        if not src.exists() or src.read_text() != body:
            src.write_text(body)
        if src.stat().st_mtime < header.stat().st_mtime:
            src.touch()
        objs.append(_compile(src, GENERATED / f"gen{i}.bpf.o"))
    return objs


def fixture_set() -> list[Path]:
    BUILD.mkdir(exist_ok=True)
    return [
        _compile(FIXTURES / f"link_{name}.bpf.c", BUILD / f"link_{name}.bpf.o")
        for name in ("lib2", "lib1", "app")
    ]


def _btf_types(path: Path) -> int:
    from pybpf.btf.btf import Btf
    from pybpf.elf import ElfFile

    section = ElfFile.open(path).section(".BTF")
    return 0 if section is None else len(Btf.from_bytes(section.data))


def _bench(title: str, inputs: list[Path], repeat: int) -> None:
    from pybpf.linker import link_objects

    ours_out = BUILD / "bench_link_ours.o"
    theirs_out = BUILD / "bench_link_bpftool.o"
    tool = _bpftool()

    def ours() -> None:
        ours_out.write_bytes(link_objects(inputs))

    def theirs() -> None:
        subprocess.run([tool, "gen", "object", str(theirs_out), *map(str, inputs)], check=True)

    start = time.perf_counter()
    ours()
    first = time.perf_counter() - start
    t_ours = timeit(ours, repeat=repeat)
    t_theirs = timeit(theirs, repeat=repeat)
    report(
        title,
        [
            ("pybpf.linker (first run)", first * 1e3, "ms"),
            ("pybpf.linker (best)", t_ours * 1e3, "ms"),
            ("bpftool gen object (best)", t_theirs * 1e3, "ms"),
            ("ratio pybpf/bpftool", t_ours / t_theirs, "x"),
            ("BTF types, pybpf", _btf_types(ours_out), ""),
            ("BTF types, bpftool", _btf_types(theirs_out), ""),
        ],
    )


def main() -> None:
    _bench("link the fixture set (3 objects)", fixture_set(), repeat=7)
    _bench(f"link {N_OBJECTS} objects sharing a header", generated_set(), repeat=3)


if __name__ == "__main__":
    main()
