"""Installed BPF libraries: Python distributions that ship BPF objects to link against.

A *BPF library package* (built with :mod:`pybpf.packaging`) installs its linked library object,
its headers and its Python companion, and announces itself in the ``pybpf.libraries``
entry-point group::

    [project.entry-points."pybpf.libraries"]
    flowlib = "flowlib"        # library name = the Python package that holds its manifest

The package holds a ``pybpf-library.json`` manifest written at build time: for each library
it provides, the object and header paths relative to the package and the libraries it needs
itself.  Discovery goes through the
entry-point metadata and the import system's finders only, so it works for wheels, zip
imports and editable installs alike, and never needs a compiler: this is how ``pybpf gen
object OUT app.bpf.o --lib flowlib`` finds ``flowlib``'s object, and how an application
package's build links a library that was installed from PyPI.

Whatever is installed is data here, never code: finding a library imports nothing (no
``__init__`` of the library or of its parent packages runs), and every path its manifest
lists must stay inside its package.
"""

from __future__ import annotations

import importlib.util
import json
import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import metadata, resources
from importlib.machinery import ModuleSpec, PathFinder
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pybpf.errors import LibraryError as LibraryError
from pybpf.errors import LibraryNotFoundError as LibraryNotFoundError
from pybpf.errors import LibraryVersionError as LibraryVersionError

ENTRY_POINT_GROUP = "pybpf.libraries"
MANIFEST_NAME = "pybpf-library.json"
MANIFEST_FORMAT = 1

__all__ = [
    "ENTRY_POINT_GROUP",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "LibraryError",
    "LibraryInfo",
    "LibraryNotFoundError",
    "LibraryVersionError",
    "Requirement",
    "find_library",
    "libraries",
    "library_objects",
    "resolve_libraries",
]


# ---------------------------------------------------------------------------------------------
# Requirements: a stdlib-only subset of PEP 440 specifiers (pybpf has no run-time dependencies).

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*$")
_SPEC = re.compile(r"^(~=|==|!=|<=|>=|<|>)\s*([0-9][0-9A-Za-z.*+!-]*)$")


def _release(version: str) -> tuple[int, ...]:
    """The numeric release part of a version (``1.2.0rc1`` -> ``(1, 2, 0)``), zeros trimmed."""
    parts: list[int] = []
    for piece in version.split("+", 1)[0].split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.end() != len(piece):
            break
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class Requirement:
    """``flowlib``, ``flowlib>=1.0``, ``flowlib>=1.0,<2``: a library name and what it accepts."""

    name: str
    specifiers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Requirement:
        match = _REQ.match(text)
        if match is None:
            raise LibraryError(f"'{text}' is not a library requirement (expected NAME[>=VERSION])")
        name, rest = match.groups()
        specs: list[tuple[str, str]] = []
        for chunk in filter(None, (c.strip() for c in rest.split(","))):
            spec = _SPEC.match(chunk)
            if spec is None:
                raise LibraryError(
                    f"'{text}': cannot read version specifier '{chunk}' "
                    "(use ==, !=, <, <=, >, >= or ~=)"
                )
            specs.append((spec.group(1), spec.group(2)))
        return cls(_normalize(name), tuple(specs))

    def accepts(self, version: str) -> bool:
        return all(_compare(version, op, want) for op, want in self.specifiers)

    def __str__(self) -> str:
        return self.name + ",".join(op + v for op, v in self.specifiers)


def _compare(version: str, op: str, want: str) -> bool:
    have = _release(version)
    if op in ("==", "!=") and want.endswith(".*"):
        prefix = _release(want[:-2])
        equal = _release(".".join(map(str, have[: len(prefix)]))) == prefix
        return equal if op == "==" else not equal
    target = _release(want)
    if op == "~=":
        upper = list(target[:-1]) if len(target) > 1 else list(target)
        upper[-1] += 1
        return have >= target and have < tuple(upper)
    return {
        "==": have == target,
        "!=": have != target,
        "<": have < target,
        "<=": have <= target,
        ">": have > target,
        ">=": have >= target,
    }[op]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


# ---------------------------------------------------------------------------------------------
# Discovery.


@dataclass(frozen=True)
class LibraryInfo:
    """One installed BPF library: what linking against it needs."""

    name: str
    version: str
    objects: tuple[Path, ...]
    """The library's object files, in link order."""
    requires: tuple[Requirement, ...] = ()
    """Other BPF libraries this one must be linked with."""
    headers: tuple[Path, ...] = ()
    """C headers for applications that call into the library."""
    package: str = ""
    distribution: str = ""
    _keep: ExitStack = field(default_factory=ExitStack, repr=False, compare=False)

    @property
    def include_dirs(self) -> tuple[Path, ...]:
        """Directories to pass to clang as ``-I`` so that ``#include "flowlib.h"`` works."""
        return tuple(dict.fromkeys(h.parent for h in self.headers))


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _package_spec(package: str) -> ModuleSpec | None:
    """Where ``package`` would be imported from, found without importing anything.

    :func:`importlib.util.find_spec` imports the parents of a dotted name (their
    ``__init__`` runs), so only the top-level name goes through it; each sub-package is then
    looked up by the path finder in its parent's search locations, as the import system
    itself would once the parent had run.
    """
    parts = package.split(".")
    spec = importlib.util.find_spec(parts[0])
    for depth in range(2, len(parts) + 1):
        if spec is None or spec.submodule_search_locations is None:
            return None
        locations = list(spec.submodule_search_locations)
        spec = PathFinder.find_spec(".".join(parts[:depth]), locations)
    return spec


def _package_files(package: str, label: str) -> Traversable:
    """The package's files, without running its ``__init__`` (or its parents').

    Linking against a library must not execute the library's Python: finding a library is
    something a build or ``pybpf gen object --lib`` does on behalf of whoever installed it,
    and the companion may import things a build environment lacks.  A package on the file
    system is read as a directory (the one holding the manifest, for a namespace package
    spread over several); a zip import through its loader's resource reader, which opens the
    archive but runs nothing.
    """
    try:
        spec = _package_spec(package)
    except (ImportError, ValueError) as exc:
        raise LibraryError(f"{label}: its package '{package}' cannot be found: {exc}") from None
    if spec is None or spec.submodule_search_locations is None:
        what = "is not installed" if spec is None else "is a module, not a package"
        raise LibraryError(f"{label}: its package '{package}' {what}")
    locations = [Path(p) for p in spec.submodule_search_locations]
    if locations and all(p.is_dir() for p in locations):
        return next((p for p in locations if (p / MANIFEST_NAME).exists()), locations[0])
    get_reader = getattr(spec.loader, "get_resource_reader", None)
    reader = get_reader(spec.name) if get_reader is not None else None
    files = getattr(reader, "files", None)
    root = files() if files is not None else None
    if not isinstance(root, Traversable):
        raise LibraryError(f"{label}: the files of its package '{package}' cannot be read "
                           f"(found at {spec.origin or locations})")
    return root


def _entry_package(ep: metadata.EntryPoint) -> str | None:
    """The package an entry point names (``flowlib`` or ``acme.flowlib``), if it names one."""
    package = ep.value.split(":", 1)[0].strip()
    parts = package.split(".")
    return package if all(part.isidentifier() for part in parts) else None


def _inside(root: Traversable, rel: object, what: str, where: str) -> Traversable:
    """``root/rel``, refusing any ``rel`` that could name a file outside the package.

    A manifest comes with whatever distribution was installed, and the paths it lists are
    handed to the linker and to clang; so they must be plain relative ``a/b`` paths (no
    ``..``, no absolute path, no backslash) and, on a file system, must not resolve through
    a symbolic link to somewhere else.
    """
    if not isinstance(rel, str) or not rel:
        raise LibraryError(f"{where}: {what} path {rel!r} is not a relative path")
    parts = rel.split("/")
    if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
        raise LibraryError(f"{where}: {what} path '{rel}' leaves the package (paths must be "
                           "relative to it, '/'-separated, without '.' or '..')")
    ref = root.joinpath(*parts)
    if isinstance(root, Path) and isinstance(ref, Path):
        real = ref.resolve()
        if not real.is_relative_to(root.resolve()):
            raise LibraryError(f"{where}: {what} path '{rel}' leaves the package "
                               f"(it resolves to {real})")
    return ref


def _strings(entry: dict[str, Any], key: str, where: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LibraryError(f"{where}: '{key}' must be a list of strings")
    return value


def _load(ep: metadata.EntryPoint) -> LibraryInfo:
    dist = ep.dist
    version = dist.version if dist is not None else "0"
    dist_name = (dist.metadata["Name"] or "") if dist is not None else ""
    label = f"BPF library '{ep.name}' ({dist_name or '?'} {version})"
    package = _entry_package(ep)
    if package is None:
        raise LibraryError(f"{label}: entry point '{ep.value}' does not name a package")
    root = _package_files(package, label)
    where = f"{label}: {package}/{MANIFEST_NAME}"
    manifest_ref = _inside(root, MANIFEST_NAME, "manifest", f"{label}: package {package}")
    try:
        manifest: object = json.loads(manifest_ref.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise LibraryError(f"{where}: cannot read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise LibraryError(f"{where}: manifest format {found!r} is not {MANIFEST_FORMAT}; "
                           "rebuild it with this pybpf")
    described = manifest.get("libraries", {})
    entry = described.get(ep.name) if isinstance(described, dict) else None
    if not isinstance(entry, dict):
        listed = ", ".join(map(str, described)) if isinstance(described, dict) else "nothing"
        raise LibraryError(f"{where}: does not describe it (it lists: {listed})")
    with ExitStack() as extracted:

        def path_of(rel: str, what: str) -> Path:
            ref = _inside(root, rel, what, where)
            # Zip imports have no real files: as_file() extracts them for as long as the
            # LibraryInfo keeps `extracted` open (and removes them again if this fails).
            return extracted.enter_context(resources.as_file(ref))

        objects = tuple(path_of(rel, "object") for rel in _strings(entry, "objects", where))
        for obj in objects:
            if not obj.is_file():
                raise LibraryError(f"{label}: object {obj} is missing")
        headers = tuple(path_of(rel, "header") for rel in _strings(entry, "headers", where))
        requires = tuple(Requirement.parse(r) for r in _strings(entry, "requires", where))
        return LibraryInfo(
            name=ep.name,
            version=version,
            objects=objects,
            requires=requires,
            headers=headers,
            package=package,
            distribution=dist_name,
            _keep=extracted.pop_all(),
        )


def libraries() -> list[LibraryInfo]:
    """Every installed BPF library, by name."""
    return [_load(ep) for ep in _entry_points()]


def find_library(name: str) -> LibraryInfo:
    """The installed library ``name`` (``flowlib`` or ``flowlib>=1.0,<2``).

    Raises :class:`LibraryNotFoundError` (naming the libraries that are installed) or
    :class:`LibraryVersionError`.
    """
    req = Requirement.parse(name)
    found = [ep for ep in _entry_points() if _normalize(ep.name) == req.name]
    if not found:
        installed = ", ".join(ep.name for ep in _entry_points()) or "none"
        raise LibraryNotFoundError(
            f"BPF library '{req.name}' is not installed (installed BPF libraries: {installed}); "
            f"install the Python package that provides it, e.g. pip install {req.name}"
        )
    info = _load(found[0])
    if not req.accepts(info.version):
        raise LibraryVersionError(
            f"BPF library '{req.name}' {info.version} (from {info.distribution}) does not "
            f"satisfy '{req}'"
        )
    return info


def resolve_libraries(names: list[str]) -> list[LibraryInfo]:
    """``names`` and everything they require, each once, a library before what it needs.

    That is the order the static linker wants: an application's objects, then its libraries,
    then theirs (the linker resolves in any order, but it keeps output stable).
    """
    order: list[LibraryInfo] = []
    seen: dict[str, LibraryInfo] = {}
    pending = list(names)
    while pending:
        text = pending.pop(0)
        req = Requirement.parse(text)
        if req.name in seen:
            have = seen[req.name]
            if not req.accepts(have.version):
                raise LibraryVersionError(
                    f"BPF library '{req.name}' {have.version} does not satisfy '{req}'"
                )
            continue
        info = find_library(text)
        seen[req.name] = info
        order.append(info)
        pending.extend(str(r) for r in info.requires)
    return order


def library_objects(names: list[str]) -> list[Path]:
    """The object files that ``--lib NAME`` adds to a link, in link order (for ``link_files``)."""
    return [path for info in resolve_libraries(names) for path in info.objects]
