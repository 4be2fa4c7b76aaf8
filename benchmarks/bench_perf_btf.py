"""BTF and linking hot paths, pybpf vs libbpf/bpftool in the same run (optionally vs a baseline).

Figures:
- cold process: ``import pybpf.btf`` + ``Btf.vmlinux()`` + ``find_one("task_struct")`` (+ its
  size), next to libbpf's ``btf__parse`` + ``btf__find_by_name_kind``.  Python's bytecode cache
  is enabled (in a private prefix), as it is for any installed package, so the figure is the
  run time, not compiling the sources;
- decoding all of vmlinux (``Btf.vmlinux().validate()``);
- ``dump_raw`` and ``dump_c`` of vmlinux, next to ``bpftool btf dump file ... [format c]``;
- linking the 3-object fixture set and 50 generated objects, next to ``bpftool gen object``.

``python -m benchmarks.bench_perf_btf --baseline DIR`` measures the pybpf sources in ``DIR`` (a
copy of ``src`` from another revision, e.g. ``git archive HEAD src | tar -x -C /tmp/old``) in
the same run, for before/after figures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_btf import LIBBPF_SOURCE, PYBPF_SNIPPET
from benchmarks.bench_link import _bpftool, fixture_set, generated_set
from benchmarks.common import BUILD, REPO, build_c, median, run_c, timeit

VMLINUX = "/sys/kernel/btf/vmlinux"
COLD_RUNS = 9

_WORKER = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from pybpf.btf import Btf
from pybpf.btf.c_dump import dump_c
from pybpf.btf.dump_raw import dump_raw
from pybpf.linker import link_objects

def best(fn, repeat):
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return min(samples) * 1e3

links = json.loads(sys.argv[2])
out = {
    "open": best(Btf.vmlinux, 5),
    "decode": best(lambda: Btf.vmlinux().validate(), 3),
    "dump_raw": best(lambda: dump_raw(Btf.vmlinux()), 3),
    "dump_c": best(lambda: dump_c(Btf.vmlinux()), 3),
}
for name, paths in links.items():
    out[name] = best(lambda: link_objects(paths), 5)
print(json.dumps(out))
"""


def _cold_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(BUILD / "pycache")
    return env


def _cold(src: Path) -> float:
    """Median ms of import + vmlinux + find in fresh processes (after one warming run)."""
    env = _cold_env()
    env["PYTHONPATH"] = str(src)
    totals = []
    for _ in range(COLD_RUNS + 1):
        command = [sys.executable, "-c", PYBPF_SNIPPET]
        out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        fields = out.stdout.split()
        totals.append(float(fields[0]) + float(fields[1]))
    return median(totals[1:])


def _libbpf_cold() -> float:
    exe = build_c("btf_parse", LIBBPF_SOURCE, "-lbpf")
    totals = []
    for _ in range(COLD_RUNS):
        parse, find, _ = run_c(exe).split()
        totals.append(float(parse) + float(find))
    return median(totals)


def _warm(src: Path, links: dict[str, list[str]]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, str(src), json.dumps(links)],
        check=True,
        capture_output=True,
        text=True,
        env=_cold_env(),
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def _bpftool_times(links: dict[str, list[str]]) -> dict[str, float]:
    tool = _bpftool()
    out = BUILD / "bench_perf_bpftool.o"

    def run(*args: str) -> None:
        subprocess.run([tool, *args], check=True, stdout=subprocess.DEVNULL)

    times = {
        "dump_raw": timeit(lambda: run("btf", "dump", "file", VMLINUX), repeat=3) * 1e3,
        "dump_c": timeit(lambda: run("btf", "dump", "file", VMLINUX, "format", "c"), repeat=3)
        * 1e3,
    }
    for name, paths in links.items():
        times[name] = timeit(lambda p=paths: run("gen", "object", str(out), *p), repeat=5) * 1e3
    return times


ROWS = [
    ("cold", "import + Btf.vmlinux() + find task_struct (cold process)"),
    ("open", "Btf.vmlinux() (index pass, warm process)"),
    ("decode", "decode all vmlinux types (validate)"),
    ("dump_raw", "dump_raw(vmlinux)"),
    ("dump_c", "dump_c(vmlinux)"),
    ("link3", "link 3 fixture objects"),
    ("link50", "link 50 objects sharing a header"),
]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    baseline = Path(args[args.index("--baseline") + 1]) if "--baseline" in args else None
    if not Path(VMLINUX).exists() or shutil.which("gcc") is None:
        raise SystemExit(f"needs {VMLINUX} and gcc")
    links = {
        "link3": [str(p) for p in fixture_set()],
        "link50": [str(p) for p in generated_set()],
    }
    columns: list[tuple[str, dict[str, float]]] = []
    reference = {"cold": _libbpf_cold(), **_bpftool_times(links)}
    start = time.perf_counter()
    if baseline is not None:
        columns.append(("baseline", {"cold": _cold(baseline), **_warm(baseline, links)}))
    current = REPO / "src"
    columns.append(("pybpf", {"cold": _cold(current), **_warm(current, links)}))
    columns.append(("libbpf/bpftool", reference))
    took = time.perf_counter() - start
    print(f"\n## BTF and linking, ms (cold: median; others: best of runs; {took:.0f} s)")
    width = max(len(label) for _, label in ROWS)
    print(f"  {'':<{width}}" + "".join(f"  {name:>15}" for name, _ in columns) + "  pybpf/ref")
    ours = columns[-2][1]
    for key, label in ROWS:
        cells = "".join(
            f"  {values[key]:>15.1f}" if key in values else f"  {'-':>15}"
            for _, values in columns
        )
        ratio = f"  {ours[key] / reference[key]:8.1f}x" if key in reference else ""
        print(f"  {label:<{width}}{cells}{ratio}")


if __name__ == "__main__":
    main()
