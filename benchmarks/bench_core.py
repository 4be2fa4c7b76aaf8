"""CO-RE: kernel BTF open + first candidate lookup, and relocating ~200 relocations, vs libbpf.

1. *Open + first lookup*: parse ``/sys/kernel/btf/vmlinux`` and find the candidates of a
   local ``task_struct``.  libbpf (C, same run): ``btf__parse`` plus the loop of
   ``bpf_core_add_cands`` (every type, kind check, essential-name compare).  pybpf:
   :meth:`TargetBtf.running_kernel` + :meth:`find_candidates`, *cold* (fresh process, empty
   cache directory) and *warm* (fresh process, cache written by an earlier process).  libbpf
   has no cache, so its cold and warm are the same measurement.  Times are taken inside each
   process (interpreter start-up and imports excluded, reported apart); medians of runs.
2. *Relocation*: a generated object with ~200 CO-RE relocations over ~40 kernel structs.
   pybpf: open the target BTF and relocate every program (cold and warm).  libbpf 1.1 has no
   ``bpf_object__prepare``, so its CO-RE cost is measured as the difference between
   ``bpf_object__load`` of that object and of the same program compiled with plain
   ``offsetof`` constants (identical instructions and maps, no ``.BTF.ext`` CO-RE records,
   hence no vmlinux BTF parse and no relocation): everything else the load does (map and
   BTF creation, verification) cancels out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import BUILD, build_c, median, report, run_c

VMLINUX = "/sys/kernel/btf/vmlinux"
CFLAGS = ["-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I/usr/include/x86_64-linux-gnu"]

LIBBPF_CANDS = r"""
#include <bpf/btf.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9; }
/* libbpf's bpf_core_essential_name_len */
static size_t essential_len(const char *s) {
  size_t n = strlen(s);
  for (int i = (int)n - 5; i >= 0; i--)
    if (s[i] != '_' && s[i+1] == '_' && s[i+2] == '_' && s[i+3] == '_' && s[i+4] != '_')
      return i + 1;
  return n;
}
int main(void) {
  const char *local = "task_struct";
  double t0 = now();
  struct btf *btf = btf__parse("/sys/kernel/btf/vmlinux", NULL);
  double t1 = now();
  size_t len = essential_len(local);
  int n = btf__type_cnt(btf), found = 0, first = 0;
  for (int i = 1; i < n; i++) {   /* bpf_core_add_cands */
    const struct btf_type *t = btf__type_by_id(btf, i);
    if (btf_kind(t) != BTF_KIND_STRUCT) continue;
    const char *name = btf__name_by_offset(btf, t->name_off);
    if (!name[0] || essential_len(name) != len || strncmp(name, local, len)) continue;
    if (!found++) first = i;
  }
  double t2 = now();
  printf("%f %f %d\n", (t1 - t0) * 1e3, (t2 - t1) * 1e3, first);
  btf__free(btf);
  return 0;
}
"""

LIBBPF_LOAD = r"""
#include <bpf/libbpf.h>
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9; }
static int quiet(enum libbpf_print_level l, const char *f, va_list a) { return 0; }
int main(int argc, char **argv) {
  libbpf_set_print(quiet);
  double t0 = now();
  struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
  double t1 = now();
  if (!obj || bpf_object__load(obj)) { fprintf(stderr, "load failed\n"); return 1; }
  double t2 = now();
  printf("%f %f\n", (t1 - t0) * 1e3, (t2 - t1) * 1e3);
  bpf_object__close(obj);
  return 0;
}
"""

PY_OPEN = """
import sys, time
t0 = time.perf_counter()
from pybpf.btf.builder import BtfBuilder
from pybpf.btf.types import BtfStruct
from pybpf.core import TargetBtf
b = BtfBuilder(); b.add(BtfStruct("task_struct", 0, ())); local = b.to_btf()
t1 = time.perf_counter()
target = TargetBtf.running_kernel(cache_dir=sys.argv[1])
cands = target.find_candidates(local, 1)
t2 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, cands[0].type_id)
if len(sys.argv) > 2:
    target.prepare()
"""

PY_RELOC = """
import sys, time
t0 = time.perf_counter()
from pybpf.core import CoreRelocator, TargetBtf
from pybpf.obj import ObjectSpec
t1 = time.perf_counter()
spec = ObjectSpec.from_path(sys.argv[2])
t2 = time.perf_counter()
target = TargetBtf.running_kernel(cache_dir=sys.argv[1])
relocator = CoreRelocator(spec.btf, target)
n = 0
for prog in spec.programs:
    insns = bytearray(prog.insns)
    relocator.relocate(insns, prog.core_relos, prog_name=prog.name)
    n += len(prog.core_relos)
t3 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, n)
"""


def _c_type(btf: object, type_id: int) -> str | None:
    from pybpf.btf.btf import Btf
    from pybpf.btf.types import BtfInt, BtfPtr

    assert isinstance(btf, Btf)
    t = btf[btf.resolve(type_id)]
    if isinstance(t, BtfPtr):
        return "void *"
    if isinstance(t, BtfInt) and t.bits_offset == 0 and t.size in (1, 2, 4, 8):
        return {1: "__u8", 2: "__u16", 4: "__u32", 8: "__u64"}[t.size]
    return None


def generate_source(count: int = 200, per_struct: int = 5) -> str:
    """A program with ``count`` field relocations over kernel structs named once in vmlinux.

    ``-DCORE`` makes them CO-RE relocations; without it the same expressions are ``offsetof``
    constants, for libbpf's baseline.
    """
    from pybpf.btf.btf import Btf
    from pybpf.btf.types import BtfKind, BtfStruct

    vmlinux = Btf.vmlinux()
    chosen: list[tuple[str, list[tuple[str, str]]]] = []
    total = 0
    for type_id in vmlinux.type_ids():
        if total >= count:
            break
        if vmlinux.kind_of(type_id) != BtfKind.STRUCT:
            continue
        t = vmlinux[type_id]
        assert isinstance(t, BtfStruct)
        if not t.name or "___" in t.name or len(vmlinux.find(t.name, BtfKind.STRUCT)) != 1:
            continue
        fields = []
        for m in t.members:
            c_type = _c_type(vmlinux, m.type) if m.name and not m.bitfield_size else None
            if c_type is not None:
                fields.append((m.name, c_type))
        if len(fields) >= per_struct:
            take = fields[: min(per_struct, count - total)]
            chosen.append((t.name, take))
            total += len(take)
    lines = [
        "// generated by benchmarks/bench_core.py",
        "#include <linux/bpf.h>",
        "#include <stddef.h>",
        "#include <bpf/bpf_helpers.h>",
        "#include <bpf/bpf_core_read.h>",
        'char LICENSE[] SEC("license") = "GPL";',
        "#ifdef CORE",
        "#define PAI __attribute__((preserve_access_index))",
        "#define OFF(s, f) bpf_core_field_offset(struct s, f)",
        "#else",
        "#define PAI",
        "#define OFF(s, f) offsetof(struct s, f)",
        "#endif",
    ]
    for name, fields in chosen:
        members = " ".join(f"{c_type} {field};" for field, c_type in fields)
        lines.append(f"struct {name} {{ {members} }} PAI;")
    lines.append(f"__u64 bench_out[{total}];")
    lines.append('SEC("raw_tp/sys_enter")\nint core_bench(void *ctx)\n{')
    lines.append("\tvolatile __u64 *o = bench_out;")
    i = 0
    for name, fields in chosen:
        for field, _ in fields:
            lines.append(f"\to[{i}] = OFF({name}, {field});")
            i += 1
    lines.append("\treturn 0;\n}")
    return "\n".join(lines) + "\n"


def build_objects() -> tuple[Path, Path]:
    BUILD.mkdir(exist_ok=True)
    src = BUILD / "core_bench.bpf.c"
    src.write_text(generate_source())
    clang = "clang-16"
    core, plain = BUILD / "core_bench.bpf.o", BUILD / "core_bench_plain.bpf.o"
    subprocess.run([clang, *CFLAGS, "-DCORE", "-c", str(src), "-o", str(core)], check=True)
    subprocess.run([clang, *CFLAGS, "-c", str(src), "-o", str(plain)], check=True)
    return core, plain


def _py(snippet: str, *args: str) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent / "src"))
    return subprocess.run(
        [sys.executable, "-c", snippet, *args], check=True, capture_output=True, text=True,
        env=env,
    ).stdout.split()


def bench_open(runs: int) -> None:
    exe = build_c("core_cands", LIBBPF_CANDS, "-lbpf")
    lib, cold, warm, imports = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        warm_dir = str(Path(tmp) / "warm")
        _py(PY_OPEN, warm_dir, "prepare")  # the earlier process that fills the cache
        for i in range(runs):
            parse, find, c_id = run_c(exe).split()
            lib.append(float(parse) + float(find))
            imp, took, py_id = _py(PY_OPEN, str(Path(tmp) / f"cold{i}"))
            assert py_id == c_id, (py_id, c_id)
            cold.append(float(took))
            imports.append(float(imp))
            _, took, py_id = _py(PY_OPEN, warm_dir)
            warm.append(float(took))
    libbpf = median(lib)
    report(
        f"vmlinux BTF open + first candidate lookup (task_struct), median of {runs}",
        [
            ("libbpf btf__parse + add_cands loop", libbpf, "ms"),
            ("pybpf cold (no cache)", median(cold), "ms"),
            ("pybpf warm (cache from an earlier process)", median(warm), "ms"),
            ("pybpf cold / libbpf", median(cold) / libbpf, "x"),
            ("pybpf warm / libbpf", median(warm) / libbpf, "x"),
            ("best of runs: libbpf", min(lib), "ms"),
            ("best of runs: pybpf cold", min(cold), "ms"),
            ("best of runs: pybpf warm", min(warm), "ms"),
            ("(pybpf imports, not counted above)", median(imports), "ms"),
        ],
    )


def bench_relocate(runs: int) -> None:
    core, plain = build_objects()
    exe = build_c("core_load", LIBBPF_LOAD, "-lbpf")
    lib_core, lib_plain, cold, warm, parse = [], [], [], [], []
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        warm_dir = str(Path(tmp) / "warm")
        _py(PY_OPEN, warm_dir, "prepare")
        for i in range(runs):
            lib_core.append(sum(map(float, run_c(exe, str(core)).split())))
            lib_plain.append(sum(map(float, run_c(exe, str(plain)).split())))
            _, spec_ms, took, n = _py(PY_RELOC, str(Path(tmp) / f"cold{i}"), str(core))
            cold.append(float(took))
            parse.append(float(spec_ms))
            count = int(n)
            _, _, took, _ = _py(PY_RELOC, warm_dir, str(core))
            warm.append(float(took))
    libbpf = median(lib_core) - median(lib_plain)
    report(
        f"{count} CO-RE relocations: target open + relocation, median of {runs}",
        [
            ("libbpf open+load, CO-RE object", median(lib_core), "ms"),
            ("libbpf open+load, same code without CO-RE", median(lib_plain), "ms"),
            ("libbpf CO-RE cost (difference)", libbpf, "ms"),
            ("pybpf cold (no cache)", median(cold), "ms"),
            ("pybpf warm (cache)", median(warm), "ms"),
            ("pybpf cold / libbpf", median(cold) / libbpf, "x"),
            ("pybpf warm / libbpf", median(warm) / libbpf, "x"),
            ("(pybpf ObjectSpec parse, not counted above)", median(parse), "ms"),
        ],
    )


def main(runs: int = 9) -> None:
    if not Path(VMLINUX).exists():
        raise SystemExit(f"{VMLINUX} is needed")
    bench_open(runs)
    if os.geteuid() == 0:
        bench_relocate(runs)
    else:
        print("\n(relocation vs libbpf skipped: libbpf's load needs root)")


if __name__ == "__main__":
    main()
