"""Skeletons and subskeletons as live Python objects.

A :class:`Skeleton` owns one :class:`~pybpf.object.BpfObject` and exposes its maps, programs,
links and global-data sections as attributes, like a ``bpftool gen skeleton`` header does in C.

A :class:`Subskeleton` is the Python side of a *BPF library*: it is opened with the library's
own object (for its names and types) against *someone else's* object (the application the
library was linked into), and finds everything by name there, never by the library object's
offsets.  It owns nothing: destroying it leaves the application's object untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pybpf.btf.to_ctypes import CTypesBuilder
from pybpf.btf.types import VarLinkage
from pybpf.errors import BpfError
from pybpf.obj.spec import MapKind, MapSpec, ObjectSpec, VarSpec
from pybpf.skel.sections import DataSection
from pybpf.skel.type_signature import type_signature
from pybpf.skel.values import VarCodec, codec_for

if TYPE_CHECKING:
    from pybpf.object import BpfObject, Map, Program


class SkeletonError(BpfError):
    """A skeleton or subskeleton cannot be built for this object."""


class Namespace:
    """Read-only attribute access to a name → object table (``skel.maps.events``)."""

    __slots__ = ("_items", "_what")

    def __init__(self, what: str, items: dict[str, Any]) -> None:
        object.__setattr__(self, "_what", what)
        object.__setattr__(self, "_items", items)

    def __getattr__(self, name: str) -> Any:
        items: dict[str, Any] = object.__getattribute__(self, "_items")
        try:
            return items[name]
        except KeyError:
            what = object.__getattribute__(self, "_what")
            known = ", ".join(sorted(items)) or "none"
            raise AttributeError(f"no {what} '{name}' (known: {known})") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._what} cannot be reassigned")

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __dir__(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> list[tuple[str, Any]]:
        return list(self._items.items())

    def __repr__(self) -> str:
        return f"<{self._what}s: {', '.join(self._items)}>"


def _is_exposed(var: VarSpec) -> bool:
    """Skeletons show every variable but statics (and ``__hidden`` globals, counted static)."""
    return var.linkage != VarLinkage.STATIC


def _data_maps(spec: ObjectSpec) -> list[MapSpec]:
    return [m for m in spec.maps if (m.is_internal and m.mmapable) or m.kind is MapKind.KCONFIG]


def _load_spec(library: str | Path | bytes | ObjectSpec | BpfObject) -> ObjectSpec:
    from pybpf.object import BpfObject

    if isinstance(library, ObjectSpec):
        return library
    if isinstance(library, BpfObject):
        return library.spec
    if isinstance(library, bytes | bytearray | memoryview):
        return ObjectSpec.from_bytes(bytes(library))
    return ObjectSpec.from_path(library)


class Skeleton:
    """A BPF object with its maps, programs and global variables as attributes."""

    def __init__(self, obj: BpfObject) -> None:
        self.obj = obj
        self.maps = Namespace("map", {m.spec.ident: m for m in obj.maps})
        self.progs = Namespace("program", {p.name: p for p in obj.programs})
        self._links: dict[str, Any] = {}
        self.links = Namespace("link", self._links)
        self._sections: dict[str, DataSection] = {}
        btf = obj.spec.btf
        if btf is not None:
            builder = CTypesBuilder(btf)
            for map_spec in _data_maps(obj.spec):
                live_map = obj.map(map_spec.section_name)
                codecs = {
                    var.name: codec_for(btf, builder, var.name, var.type_id, var.offset, var.size)
                    for var in obj.spec.variables_of(map_spec.section_name)
                    if _is_exposed(var)
                }
                self._sections[map_spec.ident] = DataSection(live_map, codecs)

    @classmethod
    def open(cls, source: str | Path | bytes, name: str | None = None) -> Skeleton:
        """Open an object file or image and wrap it (``NAME__open``)."""
        from pybpf.object import BpfObject

        return cls(BpfObject.open(source, name))

    def __getattr__(self, name: str) -> DataSection:
        sections: dict[str, DataSection] = self.__dict__.get("_sections", {})
        try:
            return sections[name]
        except KeyError:
            known = ", ".join(sorted(sections)) or "none"
            raise AttributeError(
                f"no attribute or data section '{name}' (sections: {known})"
            ) from None

    @property
    def sections(self) -> dict[str, DataSection]:
        """Every data section accessor by identifier (``data``, ``rodata``, ``data_custom``...)."""
        return dict(self._sections)

    def load(self) -> Skeleton:
        """Load the object into the kernel (``NAME__load``)."""
        self.obj.load()
        return self

    def attach(self) -> Skeleton:
        """Attach every program that can be attached by section name (``NAME__attach``)."""
        for prog in self.obj.programs:
            if self._links.get(prog.name) is None:
                link = prog.auto_attach()
                if link is not None:
                    self._links[prog.name] = link
        return self

    def detach(self) -> None:
        """Destroy every link this skeleton made (``NAME__detach``)."""
        for name, link in list(self._links.items()):
            link.close()
            del self._links[name]

    def destroy(self) -> None:
        """Detach, then close the object and everything it holds (``NAME__destroy``)."""
        self.detach()
        self.obj.close()

    def __enter__(self) -> Skeleton:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __repr__(self) -> str:
        return f"<Skeleton {self.obj.name}: sections {', '.join(self._sections) or '-'}>"


class Subskeleton:
    """A BPF library's view of the object it was linked into."""

    def __init__(
        self,
        obj: BpfObject,
        maps: dict[str, Map],
        progs: dict[str, Program],
        sections: dict[str, DataSection],
        library_name: str,
    ) -> None:
        self.obj = obj
        self.maps = Namespace("map", maps)
        self.progs = Namespace("program", progs)
        self._sections = sections
        self.library_name = library_name

    @classmethod
    def open(
        cls, obj: BpfObject, library: str | Path | bytes | ObjectSpec | BpfObject
    ) -> Subskeleton:
        """Bind ``library``'s maps, programs and variables to ``obj`` (opened or loaded).

        Raises :class:`SkeletonError` naming every library symbol that ``obj`` lacks or has
        with another type.
        """
        lib = _load_spec(library)
        problems: list[str] = []
        maps: dict[str, Map] = {}
        for map_spec in lib.maps:
            key = map_spec.section_name if map_spec.is_internal else map_spec.name
            found = _find_map(obj, map_spec)
            if found is None:
                problems.append(f"map '{key}' is missing")
            else:
                maps[map_spec.ident] = found
        progs: dict[str, Program] = {}
        target_progs = {p.name: p for p in obj.programs}
        for prog_spec in lib.programs:
            if prog_spec.name in target_progs:
                progs[prog_spec.name] = target_progs[prog_spec.name]
            else:
                problems.append(f"program '{prog_spec.name}' is missing")
        sections = _bind_sections(obj, lib, problems)
        if problems:
            where = obj.spec.path or obj.name
            raise SkeletonError(
                f"object '{where}' does not contain library '{lib.name}' as linked: "
                + "; ".join(problems)
            )
        return cls(obj, maps, progs, sections, lib.name)

    def __getattr__(self, name: str) -> DataSection:
        sections: dict[str, DataSection] = self.__dict__.get("_sections", {})
        try:
            return sections[name]
        except KeyError:
            known = ", ".join(sorted(sections)) or "none"
            raise AttributeError(
                f"no attribute or data section '{name}' (sections: {known})"
            ) from None

    @property
    def sections(self) -> dict[str, DataSection]:
        return dict(self._sections)

    def destroy(self) -> None:
        """Forget the bindings; the object (owned by someone else) is left as it is."""
        self._sections = {}
        self.maps = Namespace("map", {})
        self.progs = Namespace("program", {})

    def __enter__(self) -> Subskeleton:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __repr__(self) -> str:
        return f"<Subskeleton {self.library_name} in {self.obj.name}>"


def _find_map(obj: BpfObject, spec: MapSpec) -> Map | None:
    for m in obj.maps:
        if spec.is_internal:
            if m.is_internal and m.section_name == spec.section_name:
                return m
        elif not m.is_internal and m.name == spec.name:
            return m
    return None


def _bind_sections(obj: BpfObject, lib: ObjectSpec, problems: list[str]) -> dict[str, DataSection]:
    """Codecs for the library's variables at the offsets *the final object* gives them."""
    target_btf = obj.spec.btf
    lib_btf = lib.btf
    if lib_btf is None:
        problems.append(f"library '{lib.name}' has no BTF")
        return {}
    if target_btf is None:
        problems.append("the object has no BTF")
        return {}
    builder = CTypesBuilder(target_btf)
    sections: dict[str, DataSection] = {}
    for map_spec in _data_maps(lib):
        lib_vars = [v for v in lib.variables_of(map_spec.section_name) if _is_exposed(v)]
        target_map = _find_map(obj, map_spec)
        if target_map is None:
            problems.extend(
                f"variable '{v.name}' ({map_spec.section_name}) is missing" for v in lib_vars
            )
            continue
        by_name = {v.name: v for v in obj.spec.variables_of(map_spec.section_name)}
        codecs: dict[str, VarCodec] = {}
        for var in lib_vars:
            target = by_name.get(var.name)
            if target is None or not _is_exposed(target):
                problems.append(f"variable '{var.name}' ({map_spec.section_name}) is missing")
                continue
            want = type_signature(lib_btf, var.type_id)
            have = type_signature(target_btf, target.type_id)
            if want != have:
                problems.append(
                    f"variable '{var.name}' ({map_spec.section_name}) has another type in the "
                    "object"
                )
                continue
            codecs[var.name] = codec_for(
                target_btf, builder, var.name, target.type_id, target.offset, target.size
            )
        sections[map_spec.ident] = DataSection(target_map, codecs)
    return sections
