"""vmlinux BTF: parse + first lookup of ``task_struct``, pybpf vs libbpf (C, same run).

Cold means a fresh process (nothing cached in memory); each figure is the median of runs.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks.common import build_c, median, report, run_c

LIBBPF_SOURCE = r"""
#include <bpf/btf.h>
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9; }
int main(void) {
  double t0 = now();
  struct btf *btf = btf__parse("/sys/kernel/btf/vmlinux", NULL);
  double t1 = now();
  int id = btf__find_by_name_kind(btf, "task_struct", BTF_KIND_STRUCT);
  double t2 = now();
  printf("%f %f %d\n", (t1 - t0) * 1e3, (t2 - t1) * 1e3, id);
  btf__free(btf);
  return 0;
}
"""

PYBPF_SNIPPET = """
import time
t0 = time.perf_counter()
from pybpf.btf import Btf, BtfKind
btf = Btf.vmlinux()
t1 = time.perf_counter()
tid = btf.find_one("task_struct", BtfKind.STRUCT)
size = btf.size_of(tid)
t2 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, tid)
"""


def main(runs: int = 7) -> None:
    exe = build_c("btf_parse", LIBBPF_SOURCE, "-lbpf")
    c_parse, c_find, py_parse, py_find = [], [], [], []
    for _ in range(runs):
        parse, find, c_id = run_c(exe).split()
        c_parse.append(float(parse))
        c_find.append(float(find))
        out = subprocess.run(
            [sys.executable, "-c", PYBPF_SNIPPET], check=True, capture_output=True, text=True
        ).stdout.split()
        py_parse.append(float(out[0]))
        py_find.append(float(out[1]))
        assert out[2] == c_id, (out, c_id)
    lib_total = median(c_parse) + median(c_find)
    ours_total = median(py_parse) + median(py_find)
    report(
        f"vmlinux BTF, cold process (median of {runs})",
        [
            ("libbpf btf__parse", median(c_parse), "ms"),
            ("libbpf find task_struct", median(c_find), "ms"),
            ("pybpf Btf.vmlinux (import incl.)", median(py_parse), "ms"),
            ("pybpf find_one task_struct", median(py_find), "ms"),
            ("ratio pybpf/libbpf (parse+find)", ours_total / lib_total, "x"),
        ],
    )


if __name__ == "__main__":
    main()
