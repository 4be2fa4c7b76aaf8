"""Shared test harness: BPF fixtures compiled at test time, oracle tools, kernel markers.

Fixtures live in ``tests/fixtures/*.bpf.c``; :func:`compile_bpf` builds one with clang-16 into
``tests/.build/`` (rebuilt when the source is newer) and returns the object's path.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
BUILD = TESTS / ".build"
CLANG = shutil.which("clang-16") or shutil.which("clang")
BPFTOOL = shutil.which("bpftool") or (
    "/usr/sbin/bpftool" if Path("/usr/sbin/bpftool").exists() else None
)
CFLAGS = [
    "-g",
    "-O2",
    "-target",
    "bpf",
    "-D__TARGET_ARCH_x86",
    "-I/usr/include/x86_64-linux-gnu",
    f"-I{FIXTURES}",
]


def btf_blob(types: bytes, strings: bytes) -> bytes:
    """A little-endian BTF blob: the 24-byte header, then ``types``, then ``strings``.

    Spelled out here, not taken from pybpf, so the tests build their BTF independently of the
    encoder they check.
    """
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


def compile_bpf(name: str, *extra: str, out_name: str | None = None) -> Path:
    """Compile ``tests/fixtures/<name>.bpf.c`` (or a path) to an object; cached by mtime."""
    src = Path(name) if name.endswith(".c") else FIXTURES / f"{name}.bpf.c"
    BUILD.mkdir(exist_ok=True)
    stem = out_name or src.name.removesuffix(".c").removesuffix(".bpf")
    out = BUILD / f"{stem}.bpf.o"
    headers = list(FIXTURES.glob("*.h"))
    newest = max([src.stat().st_mtime, *(h.stat().st_mtime for h in headers)])
    if out.exists() and out.stat().st_mtime >= newest and not extra:
        return out
    if CLANG is None:
        pytest.skip("clang-16 is not installed (apt-get install clang-16)")
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    subprocess.run([CLANG, *CFLAGS, *extra, "-c", str(src), "-o", str(tmp)], check=True)
    tmp.replace(out)
    return out


def libbpf_driver(source: str, out: Path) -> Path:
    """Build ``fixtures/<source>``, a C oracle on the system libbpf, as ``out``."""
    gcc = shutil.which("gcc")
    if gcc is None or not Path("/usr/include/bpf/libbpf.h").exists():
        pytest.skip("needs gcc and libbpf-dev")
    subprocess.run([gcc, "-O2", "-Wall", f"-I{FIXTURES}", str(FIXTURES / source), "-o", str(out),
                    "-lbpf"], check=True)  # fmt: skip
    return out


def bpftool(*args: str | Path) -> str:
    """Run bpftool (the oracle) and return its stdout; a failure fails the test."""
    if BPFTOOL is None:
        pytest.skip("bpftool is not installed (apt-get install bpftool)")
    result = subprocess.run([BPFTOOL, *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"bpftool {' '.join(map(str, args))} failed: {result.stderr}")
    return result.stdout


def open_fds() -> set[int]:
    """This process's open file descriptors (for fd-leak checks)."""
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def have_bpf_syscall() -> bool:
    return os.geteuid() == 0 and Path("/sys/fs/bpf").exists()


requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for the bpf() syscall")
