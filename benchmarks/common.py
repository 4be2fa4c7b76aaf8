"""Helpers shared by benchmarks: timing, C reference programs built in the same run."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = HERE / ".build"
REPO = HERE.parent


def timeit(fn: Callable[[], object], *, repeat: int = 5, number: int = 1) -> float:
    """Best-of-``repeat`` seconds per call of ``fn`` (each sample runs it ``number`` times)."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return min(samples)


def median(values: list[float]) -> float:
    return statistics.median(values)


def build_c(name: str, source: str, *libs: str) -> Path:
    """Compile a C reference program (kept in the benchmark file) with gcc -O2."""
    if shutil.which("gcc") is None:
        raise SystemExit("gcc is needed for the C reference programs")
    BUILD.mkdir(exist_ok=True)
    src = BUILD / f"{name}.c"
    exe = BUILD / name
    src.write_text(source)
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(src), *libs], check=True)
    return exe


def run_c(exe: Path, *args: str) -> str:
    return subprocess.run([str(exe), *args], check=True, capture_output=True, text=True).stdout


def compile_bpf(source: Path, out: Path) -> Path:
    clang = shutil.which("clang-16") or "clang"
    out.parent.mkdir(exist_ok=True)
    subprocess.run(
        [
            clang,
            "-g",
            "-O2",
            "-target",
            "bpf",
            "-I/usr/include/x86_64-linux-gnu",
            "-c",
            str(source),
            "-o",
            str(out),
        ],
        check=True,
    )
    return out


def report(title: str, rows: list[tuple[str, float, str]]) -> None:
    """Print rows of (label, value, unit) under a title."""
    print(f"\n## {title}")
    width = max(len(label) for label, _, _ in rows)
    for label, value, unit in rows:
        print(f"  {label:<{width}}  {value:12.3f} {unit}")
