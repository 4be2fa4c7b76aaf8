"""Compiling ``*.bpf.c`` with clang: the only build step pybpf cannot do itself.

Objects must come out the same wherever and whenever they are built (reproducible wheels),
so clang runs in the project root on relative paths, with the compilation directory and
every absolute include directory mapped to fixed names in the debug info and BTF.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from pybpf.packaging.config import BuildError

CLANG_CANDIDATES = ("clang-16", "clang", "clang-19", "clang-18", "clang-17", "clang-15", "clang-14")
INSTALL_HINT = (
    "install it (Debian/Ubuntu: apt-get install clang-16), or name it with the PYBPF_CLANG "
    "environment variable or [tool.pybpf] clang"
)


def find_clang(configured: str | None = None) -> str:
    """The clang to use: ``$PYBPF_CLANG``, then ``[tool.pybpf] clang``, then the usual names."""
    wanted = os.environ.get("PYBPF_CLANG") or configured
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            raise BuildError(f"clang '{wanted}' was not found on PATH: {INSTALL_HINT}")
        return found
    for name in CLANG_CANDIDATES:
        found = shutil.which(name)
        if found is not None:
            return found
    raise BuildError(f"clang is needed to compile BPF sources and was not found: {INSTALL_HINT}")


def system_include_dirs() -> list[str]:
    """``/usr/include/<multiarch>``: where ``asm/types.h`` lives for ``<linux/bpf.h>``."""
    multiarch = sysconfig.get_config_var("MULTIARCH")
    dirs = []
    if isinstance(multiarch, str) and multiarch:
        candidate = Path("/usr/include") / multiarch
        if candidate.is_dir():
            dirs.append(str(candidate))
    return dirs


def base_flags(arch: str, target: str, root: Path) -> list[str]:
    return [
        "-g",
        "-O2",
        "-target",
        target,
        f"-D__TARGET_ARCH_{arch}",
        "-fdebug-compilation-dir=.",
        f"-ffile-prefix-map={root}=.",
    ]


def compile_bpf(
    clang: str,
    source: str,
    output: Path,
    *,
    root: Path,
    flags: Sequence[str],
    include_dirs: Sequence[tuple[str, str]] = (),
) -> None:
    """Compile ``source`` (relative to ``root``) to ``output``.

    ``include_dirs`` are ``(directory, stable name)`` pairs: the directory is searched, and
    appears in the object as the stable name (site-packages paths differ between machines).
    """
    path = root / source
    if not path.is_file():
        raise BuildError(f"BPF source {source} does not exist (in {root})")
    cmd = [clang, *flags]
    for directory, stable in include_dirs:
        cmd += [f"-I{directory}", f"-ffile-prefix-map={directory}={stable}"]
    cmd += ["-c", source, "-o", str(output)]
    try:
        result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BuildError(f"cannot run {clang}: {exc.strerror}: {INSTALL_HINT}") from None
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip()
        raise BuildError(f"compiling BPF source {source} failed:\n{message}")
