"""``[tool.pybpf]``: what a package's build compiles, links and generates.

One table in ``pyproject.toml`` describes the BPF side of a Python package::

    [tool.pybpf]
    package = "flowlib"                  # the import package that receives the outputs
    include-dirs = ["bpf"]               # -I for clang, relative to the project root
    cflags = ["-Wall"]                   # added after pybpf's own flags
    target-arch = "x86"                  # __TARGET_ARCH_x86 (default: the build machine's)

    [tool.pybpf.libraries.flowlib]       # a BPF library: its sources linked into one object
    sources = ["bpf/flowlib.bpf.c", "bpf/flowlib_hist.bpf.c"]
    headers = ["bpf/flowlib.h"]          # shipped for applications that include them
    module = "flowlib_subskel"           # generated Python subskeleton (default NAME_subskel)

    [tool.pybpf.apps.flowapp]            # an application: its final object and skeleton
    sources = ["bpf/flowapp.bpf.c"]
    libraries = ["flowlib>=0.1"]         # installed BPF libraries, or this project's own
    module = "flowapp_skel"              # generated Python skeleton (default NAME_skel)

The build hook may repeat or override any key in its own table
(``[tool.hatch.build.hooks.custom]``), which wins over ``[tool.pybpf]``.
"""

from __future__ import annotations

import platform
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybpf.errors import BuildError as BuildError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PACKAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

# platform.machine() -> the __TARGET_ARCH_* name libbpf's bpf_tracing.h knows.
_ARCHES = {
    "x86_64": "x86",
    "amd64": "x86",
    "i386": "x86",
    "i686": "x86",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "s390x": "s390",
    "ppc64le": "powerpc",
    "ppc64": "powerpc",
    "riscv64": "riscv",
    "loongarch64": "loongarch",
    "mips64": "mips",
    "mips": "mips",
}
_BIG_ENDIAN = {"s390", "powerpc_be", "mips_be"}


def host_arch() -> str:
    machine = platform.machine().lower()
    return _ARCHES.get(machine, machine)


@dataclass(frozen=True, slots=True)
class ObjectConfig:
    """One library or application: its sources and what to generate for it."""

    name: str
    sources: tuple[str, ...]
    module: str
    headers: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()
    """BPF libraries used: ``NAME`` or ``NAME>=VERSION``.  An application links them in; a
    library only records them (its users link them) and compiles against their headers."""
    cflags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BuildConfig:
    """The whole ``[tool.pybpf]`` table, checked."""

    package: str
    libraries: tuple[ObjectConfig, ...]
    apps: tuple[ObjectConfig, ...]
    include_dirs: tuple[str, ...] = ()
    cflags: tuple[str, ...] = ()
    target_arch: str = ""
    clang: str | None = None

    @property
    def package_path(self) -> str:
        """The package as a path inside a wheel (``a.b`` -> ``a/b``)."""
        return self.package.replace(".", "/")

    @property
    def arch(self) -> str:
        return self.target_arch or host_arch()

    @property
    def endian_target(self) -> str:
        return "bpfeb" if self.arch in _BIG_ENDIAN else "bpfel"

    @classmethod
    def from_pyproject(
        cls, root: str | Path, overrides: Mapping[str, Any] | None = None
    ) -> BuildConfig:
        """Read ``root/pyproject.toml``; ``overrides`` (a build hook's table) win."""
        path = Path(root) / "pyproject.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise BuildError(f"{path}: cannot read: {exc}") from None
        table: dict[str, Any] = dict(data.get("tool", {}).get("pybpf", {}))
        for key, value in (overrides or {}).items():
            if key not in ("path", "dependencies", "require-runtime-dependencies",
                           "require-runtime-features", "enable-by-default"):
                table[key] = value
        return cls.from_table(table, where=f"{path} [tool.pybpf]")

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str = "[tool.pybpf]") -> BuildConfig:
        known = {"package", "include-dirs", "cflags", "target-arch", "clang", "libraries", "apps"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise BuildError(f"{where}: unknown key(s) {', '.join(unknown)}")
        package = table.get("package")
        if not isinstance(package, str) or not _PACKAGE.match(package):
            raise BuildError(f"{where}: 'package' must name the import package, e.g. \"flowlib\"")
        libs = _objects(table.get("libraries", {}), "libraries", "_subskel", where)
        apps = _objects(table.get("apps", {}), "apps", "_skel", where)
        if not libs and not apps:
            raise BuildError(f"{where}: nothing to build: add [tool.pybpf.libraries.NAME] "
                             "or [tool.pybpf.apps.NAME]")
        names = [o.name for o in (*libs, *apps)]
        modules = [o.module for o in (*libs, *apps)]
        for what, seq in (("name", names), ("module", modules)):
            dup = sorted({x for x in seq if seq.count(x) > 1})
            if dup:
                raise BuildError(f"{where}: {what} {', '.join(dup)} used twice")
        clang = table.get("clang")
        if clang is not None and not isinstance(clang, str):
            raise BuildError(f"{where}: 'clang' must be a string")
        return cls(
            package=package,
            libraries=libs,
            apps=apps,
            include_dirs=_strings(table.get("include-dirs", []), "include-dirs", where),
            cflags=_strings(table.get("cflags", []), "cflags", where),
            target_arch=str(table.get("target-arch", "")),
            clang=clang,
        )


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BuildError(f"{where}: '{key}' must be a list of strings")
    return tuple(value)


def _objects(value: Any, kind: str, suffix: str, where: str) -> tuple[ObjectConfig, ...]:
    if not isinstance(value, dict):
        raise BuildError(f"{where}: '{kind}' must be a table of tables ([tool.pybpf.{kind}.NAME])")
    result: list[ObjectConfig] = []
    for name, entry in sorted(value.items()):
        at = f"{where} {kind}.{name}"
        if not _IDENT.match(name):
            raise BuildError(f"{at}: the name must be a C identifier")
        if not isinstance(entry, dict):
            raise BuildError(f"{at}: must be a table")
        allowed = {"sources", "module", "headers", "cflags", "libraries"}
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise BuildError(f"{at}: unknown key(s) {', '.join(unknown)}")
        sources = _strings(entry.get("sources", []), "sources", at)
        if not sources:
            raise BuildError(f"{at}: 'sources' lists no .bpf.c file")
        module = entry.get("module", name + suffix)
        if not isinstance(module, str) or not _IDENT.match(module):
            raise BuildError(f"{at}: 'module' must be a Python identifier")
        result.append(
            ObjectConfig(
                name=name,
                sources=sources,
                module=module,
                headers=_strings(entry.get("headers", []), "headers", at),
                libraries=_strings(entry.get("libraries", []), "libraries", at),
                cflags=_strings(entry.get("cflags", []), "cflags", at),
            )
        )
    return tuple(result)
