"""Skeletons and subskeletons as live Python objects.

A :class:`Skeleton` owns one :class:`~pybpf.object.BpfObject` and exposes its maps, programs,
links and global-data sections as attributes, like a ``bpftool gen skeleton`` header does in C.

A :class:`Subskeleton` is the Python side of a *BPF library*: it is bound to *someone else's*
object (the application the library was linked into) and finds everything by name there,
never by the library object's offsets.  It owns nothing: destroying it leaves the
application's object untouched.

Both are built the same way: an :class:`~pybpf.skel.description.ObjectDescription` (what the
library or object offers, without offsets) is *bound* to a target object by :func:`bind`,
which looks every map, program and variable up in the target and reports every one it cannot
find, or finds with another type, in a single :class:`SkeletonError`.  The live classes here
describe an object file on the fly; generated modules (``pybpf gen ... --lang python``) carry
their description as a literal and subclass :class:`SkeletonBase` / :class:`SubskeletonBase`
with typed attributes.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, cast

from pybpf.btf.to_ctypes import CTypesBuilder
from pybpf.errors import DestroyedError as DestroyedError
from pybpf.errors import SkeletonError as SkeletonError
from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.specs import VarSpec
from pybpf.object import BpfObject
from pybpf.skel.description import (
    MapDescription,
    ObjectDescription,
    SectionDescription,
    describe,
    is_exposed,
)
from pybpf.skel.sections import DataSection
from pybpf.skel.type_signature import signature_digest
from pybpf.skel.values import VarCodec, VariableError, codec_for, type_name

if TYPE_CHECKING:
    from pybpf.btf.btf import Btf
    from pybpf.object import Map, Program


class LinkLike(Protocol):
    """What a skeleton needs of an attachment: a way to end it."""

    def close(self) -> None: ...


class _Lifecycle(Protocol):
    """The loader's side of :class:`~pybpf.object.BpfObject` that skeletons drive."""

    def load(self, *, log_level: int = 0, btf_custom_path: str | Path | None = None) -> object:
        ...

    def close(self) -> None: ...


class _AutoAttach(Protocol):
    def auto_attach(self) -> LinkLike | None: ...


class Namespace:
    """Read-only attribute access to a name → object table (``skel.maps.events``)."""

    __slots__ = ("_items", "_what")

    def __init__(self, what: str, items: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_what", what)
        object.__setattr__(self, "_items", items)

    def __getattr__(self, name: str) -> Any:
        items: Mapping[str, Any] = object.__getattribute__(self, "_items")
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


# ------------------------------------------------------------------------------ binding


class SectionSource:
    """One binding's way to a data section's map: what the binding's accessors go through.

    Destroying a skeleton or subskeleton retires its sources, so every accessor made from its
    binding (live sections, generated section classes, ctypes views taken from either) raises
    :class:`DestroyedError` from then on instead of touching the memory, while other bindings
    of the same map (the application's skeleton, when a library's subskeleton is destroyed)
    keep working.
    """

    __slots__ = ("_retired", "map")

    def __init__(self, section_map: Map) -> None:
        self.map = section_map
        self._retired: str | None = None

    @property
    def obj(self) -> BpfObject:
        return self.map.obj

    @property
    def section_name(self) -> str:
        return self.map.section_name

    @property
    def memory(self) -> Any:
        if self._retired is not None:
            raise DestroyedError(f"{self._retired}: its {self.map.section_name} accessors are gone")
        return self.map.memory

    @property
    def memory_is_live(self) -> bool:
        return self._retired is None and self.map.memory_is_live

    def write_refusal(self) -> str | None:
        return self._retired if self._retired is not None else self.map.write_refusal()

    def retire(self, reason: str) -> None:
        self._retired = reason


@dataclass(frozen=True, slots=True)
class BoundSection:
    """One data section of the target: its map and a codec per described variable."""

    section_map: SectionSource
    codecs: dict[str, VarCodec]
    readonly: bool = False


@dataclass(slots=True)
class Binding:
    """A description resolved against one target object."""

    maps: dict[str, Map] = field(default_factory=dict)
    progs: dict[str, Program] = field(default_factory=dict)
    sections: dict[str, BoundSection] = field(default_factory=dict)

    def section(self, ident: str) -> BoundSection:
        return self.sections[ident]

    def retire(self, reason: str) -> None:
        """Make every section accessor of this binding raise ``reason`` from now on."""
        for bound in self.sections.values():
            bound.section_map.retire(reason)


def bind(
    obj: BpfObject, desc: ObjectDescription, *, verify_types: bool = True
) -> Binding:
    """Find ``desc``'s maps, programs and variables in ``obj`` (opened or loaded).

    Raises :class:`SkeletonError` naming every symbol ``obj`` lacks or has with another type.
    ``verify_types=False`` skips the type comparison (for a description made from ``obj``).
    """
    problems: list[str] = []
    binding = Binding()
    for map_desc in desc.maps:
        found = _find_map(obj, map_desc)
        if found is None:
            problems.append(f"map '{map_desc.key}' is missing")
            continue
        mismatch = _map_mismatch(found, map_desc)
        if mismatch:
            problems.append(mismatch)
        else:
            binding.maps[map_desc.ident] = found
    target_progs = {p.name: p for p in obj.programs}
    for prog_name in desc.programs:
        prog = target_progs.get(prog_name)
        if prog is None:
            problems.append(f"program '{prog_name}' is missing")
        else:
            binding.progs[prog_name] = prog
    for sec_desc in desc.sections:
        bound = _bind_section(obj, sec_desc, problems, verify_types)
        if bound is not None:
            binding.sections[sec_desc.ident] = bound
    if problems:
        where = obj.spec.path or obj.name
        raise SkeletonError(
            f"object '{where}' does not contain '{desc.name}' as described: "
            + "; ".join(problems)
        )
    return binding


def _find_map(obj: BpfObject, desc: MapDescription) -> Map | None:
    for m in obj.maps:
        if desc.internal:
            if m.is_internal and m.section_name == desc.section:
                return m
        elif not m.is_internal and m.name == desc.name:
            return m
    return None


def _map_mismatch(found: Map, desc: MapDescription) -> str | None:
    """Why a user map of the target cannot be the described one (``None``: it can)."""
    if desc.internal or not desc.type:
        return None
    have = (int(found.type), found.key_size, found.value_size)
    want = (desc.type, desc.key_size, desc.value_size)
    if have == want:
        return None
    return (
        f"map '{desc.name}' has another definition (type {have[0]}, key {have[1]} bytes, "
        f"value {have[2]} bytes; expected type {want[0]}, key {want[1]}, value {want[2]})"
    )


def _bind_section(
    obj: BpfObject, desc: SectionDescription, problems: list[str], verify_types: bool
) -> BoundSection | None:
    """Codecs for the described variables at the offsets *the target* gives them."""
    target_map = None
    for m in obj.maps:
        if m.is_internal and m.section_name == desc.section:
            target_map = m
            break
    btf = obj.spec.btf
    if target_map is None or btf is None:
        why = "is missing" if btf is not None else "is missing (the object has no BTF)"
        problems.extend(f"variable '{v.name}' ({desc.section}) {why}" for v in desc.variables)
        return None
    by_name: dict[str, VarSpec] = {v.name: v for v in obj.spec.variables_of(desc.section)}
    builder: CTypesBuilder | None = None
    codecs: dict[str, VarCodec] = {}
    for var in desc.variables:
        target = by_name.get(var.name)
        if target is None or not is_exposed(target):
            problems.append(f"variable '{var.name}' ({desc.section}) is missing")
            continue
        if verify_types and _digest(btf, target.type_id) != var.signature:
            have = type_name(btf, target.type_id)
            same = " (same name, another layout)" if have == var.type_name else ""
            problems.append(
                f"variable '{var.name}' ({desc.section}) has type {have} in the object, "
                f"expected {var.type_name}{same}"
            )
            continue
        if builder is None and var.ctype is None:
            builder = CTypesBuilder(btf)
        try:
            codecs[var.name] = codec_for(
                btf, builder, var.name, target.type_id, target.offset, target.size,
                ctype=var.ctype,
            )  # fmt: skip
        except VariableError as exc:
            problems.append(f"variable '{var.name}' ({desc.section}): {exc}")
    return BoundSection(SectionSource(target_map), codecs, desc.readonly)


_DIGESTS: weakref.WeakKeyDictionary[Btf, dict[int, str]] = weakref.WeakKeyDictionary()


def _digest(btf: Btf, type_id: int) -> str:
    """:func:`signature_digest`, remembered per BTF object (one object is bound repeatedly,
    and a signature walks the whole type graph).  Weakly: the entries go with their BTF, so
    opening and dropping objects does not accumulate every one's types here."""
    digests = _DIGESTS.get(btf)
    if digests is None:
        digests = _DIGESTS[btf] = {}
    digest = digests.get(type_id)
    if digest is None:
        digest = digests[type_id] = signature_digest(btf, type_id)
    return digest


def _load_spec(library: str | Path | bytes | ObjectSpec | BpfObject) -> ObjectSpec:
    if isinstance(library, ObjectSpec):
        return library
    if isinstance(library, BpfObject):
        return library.spec
    if isinstance(library, bytes | bytearray | memoryview):
        return ObjectSpec.from_bytes(bytes(library))
    return ObjectSpec.from_path(library)


def _section(owner: object, what: str, name: str) -> DataSection:
    """``owner.<name>`` for a (sub)skeleton: its data section, refused once destroyed."""
    state = owner.__dict__  # not attributes: this runs as __getattr__
    sections: dict[str, DataSection] = state.get("_sections", {})
    section = sections.get(name)
    if section is None:
        known = ", ".join(sorted(sections)) or "none"
        raise AttributeError(
            f"{what} has no attribute or data section '{name}' (sections: {known})"
        )
    destroyed = state.get("_destroyed")
    if destroyed:
        raise DestroyedError(f"{destroyed}: section '{name}' is gone")
    return section


# ------------------------------------------------------------------------------ skeletons


class ProgramLinks(Mapping[str, LinkLike]):
    """Each program's link, by program name: the first live link of the program, whether
    :meth:`SkeletonBase.attach` made it or the user did (``prog.auto_attach()``)."""

    __slots__ = ("_progs",)

    def __init__(self, progs: Mapping[str, Program]) -> None:
        self._progs = progs

    def __getitem__(self, name: str) -> LinkLike:
        prog = self._progs[name]
        for link in prog.links:
            return link
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (name for name, prog in self._progs.items() if len(prog.links))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class SkeletonBase:
    """What every skeleton does: own the object, load, attach, detach, destroy.

    Subclasses decide how maps, programs, links and sections are shown: :class:`Skeleton`
    by name lookups, generated classes by typed properties.
    """

    def __init__(
        self, obj: BpfObject, desc: ObjectDescription, *, verify_types: bool = True
    ) -> None:
        self.obj = obj
        self._binding = bind(obj, desc, verify_types=verify_types)
        self._links = ProgramLinks(self._binding.progs)
        self._destroyed: str | None = None
        """Why the accessors are gone, once destroyed."""

    def load(self, *, log_level: int = 0, btf_custom_path: str | Path | None = None) -> Self:
        """Load the object into the kernel (``NAME__load``); the options are
        :meth:`BpfObject.load <pybpf.object.BpfObject.load>`'s."""
        cast(_Lifecycle, self.obj).load(log_level=log_level, btf_custom_path=btf_custom_path)
        return self

    def attach(self) -> Self:
        """Attach every program that can be attached by section name (``NAME__attach``).

        All or nothing: if one program fails to attach, the links made by this call are
        closed again before the error propagates.
        """
        made: list[LinkLike] = []
        try:
            for prog in self._binding.progs.values():
                # Attached already (by this skeleton or by hand): libbpf skips those too, so
                # attach() twice never doubles a program's counts.
                if prog.name in self._links or getattr(prog, "fd", None) is None:
                    continue
                link = cast(_AutoAttach, prog).auto_attach()
                if link is not None:
                    made.append(link)
        except BaseException:
            for link in made:
                link.close()
            raise
        return self

    def detach(self) -> None:
        """Destroy the links of the skeleton's programs, those attached by hand included
        (``NAME__detach``)."""
        for prog in self._binding.progs.values():
            prog.links.close()

    def destroy(self) -> None:
        """Detach, then close the object and everything it holds (``NAME__destroy``).

        Every section accessor of this skeleton raises :class:`DestroyedError` afterwards.
        """
        if self._destroyed:
            return
        self._destroyed = f"skeleton '{self.obj.name}' was destroyed"
        self._binding.retire(self._destroyed)
        self.detach()
        cast(_Lifecycle, self.obj).close()

    def _map(self, ident: str) -> Map:
        return self._binding.maps[ident]

    def _prog(self, name: str) -> Program:
        return self._binding.progs[name]

    def _link(self, name: str) -> Any:
        return self._links.get(name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


class Skeleton(SkeletonBase):
    """A BPF object with its maps, programs and global variables as attributes."""

    def __init__(self, obj: BpfObject) -> None:
        super().__init__(obj, describe(obj.spec), verify_types=False)
        self.maps = Namespace("map", self._binding.maps)
        self.progs = Namespace("program", self._binding.progs)
        self.links = Namespace("link", self._links)
        self._sections = {
            ident: DataSection(bound.section_map, bound.codecs)
            for ident, bound in self._binding.sections.items()
        }

    @classmethod
    def open(cls, source: str | Path | bytes, name: str | None = None) -> Skeleton:
        """Open an object file or image and wrap it (``NAME__open``)."""
        return cls(BpfObject.open(source, name))

    def __getattr__(self, name: str) -> DataSection:
        return _section(self, "skeleton", name)

    @property
    def sections(self) -> dict[str, DataSection]:
        """Every data section accessor by identifier (``data``, ``rodata``, ``data_custom``...)."""
        return dict(self._sections)

    def __repr__(self) -> str:
        return f"<Skeleton {self.obj.name}: sections {', '.join(self._sections) or '-'}>"


# ------------------------------------------------------------------------------ subskeletons


class SubskeletonBase:
    """A library's view of someone else's object; destroying it frees only the view."""

    def __init__(self, obj: BpfObject, desc: ObjectDescription) -> None:
        self.obj = obj
        self.library_name = desc.name
        self._binding = bind(obj, desc)
        self._destroyed: str | None = None

    def destroy(self) -> None:
        """Forget the bindings; the object (owned by someone else) is left as it is.

        Every section accessor of this subskeleton raises :class:`DestroyedError` afterwards.
        """
        self._destroyed = f"subskeleton '{self.library_name}' was destroyed"
        self._binding.retire(self._destroyed)
        self._binding = Binding()

    def _map(self, ident: str) -> Map:
        return self._binding.maps[ident]

    def _prog(self, name: str) -> Program:
        return self._binding.progs[name]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


class Subskeleton(SubskeletonBase):
    """A BPF library's view of the object it was linked into, found by name."""

    def __init__(self, obj: BpfObject, desc: ObjectDescription) -> None:
        super().__init__(obj, desc)
        self._sections = self._wrap_sections()
        self.maps = Namespace("map", self._binding.maps)
        self.progs = Namespace("program", self._binding.progs)

    def _wrap_sections(self) -> dict[str, DataSection]:
        return {
            ident: DataSection(bound.section_map, bound.codecs)
            for ident, bound in self._binding.sections.items()
        }

    @classmethod
    def open(
        cls, obj: BpfObject, library: str | Path | bytes | ObjectSpec | BpfObject
    ) -> Subskeleton:
        """Bind ``library``'s maps, programs and variables to ``obj`` (opened or loaded).

        Raises :class:`SkeletonError` naming every library symbol that ``obj`` lacks or has
        with another type.
        """
        return cls(obj, describe(_load_spec(library)))

    @classmethod
    def from_description(cls, obj: BpfObject, desc: ObjectDescription) -> Subskeleton:
        """Bind a library known only by its description (no library object needed)."""
        return cls(obj, desc)

    def __getattr__(self, name: str) -> DataSection:
        return _section(self, "subskeleton", name)

    @property
    def sections(self) -> dict[str, DataSection]:
        return dict(self._sections)

    def destroy(self) -> None:
        super().destroy()
        self.maps = Namespace("map", {})
        self.progs = Namespace("program", {})

    def __repr__(self) -> str:
        return f"<Subskeleton {self.library_name} in {self.obj.name}>"
