"""Run-time support for generated skeleton modules (``pybpf gen ... --lang python``).

A generated module imports everything it uses from here, so that its only contract with pybpf
is this module: the description classes it writes its object's description with, the bases
its skeleton and section classes derive from, and the types its attributes are annotated
with.  The bases keep the per-access path short, since every ``skel.data.counter`` goes
through them: scalars are read and written with precompiled :class:`struct.Struct` methods
straight from the map's memory, and everything else through the variable's codec.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence
from typing import TypeVar, cast, overload

from pybpf.btf.to_ctypes import CBitfield
from pybpf.object import BpfObject as BpfObject
from pybpf.object import Link as Link
from pybpf.object import Map as Map
from pybpf.object import Program as Program
from pybpf.skel.description import MapDescription as MapDescription
from pybpf.skel.description import ObjectDescription as ObjectDescription
from pybpf.skel.description import SectionDescription as SectionDescription
from pybpf.skel.description import VarDescription as VarDescription
from pybpf.skel.runtime import BoundSection, LinkLike
from pybpf.skel.runtime import SkeletonBase as SkeletonBase
from pybpf.skel.runtime import SkeletonError as SkeletonError
from pybpf.skel.runtime import SubskeletonBase as SubskeletonBase
from pybpf.skel.runtime_names import RUNTIME_NAMES
from pybpf.skel.sections import SectionCore
from pybpf.skel.values import ValueKind, VarCodec
from pybpf.skel.values import VariableError as VariableError

# The names generated modules import are listed once, in runtime_names (the generator reads
# them too); the redundant "as" aliases above mark them as re-exports for linters.
__all__ = [*RUNTIME_NAMES, "SkeletonError", "VariableError"]

T = TypeVar("T")


class Bitfield(CBitfield):
    """A bitfield member of a generated ctypes struct, typed as ``int`` for checkers."""

    __slots__ = ()

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Bitfield: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> int: ...
    def __get__(self, obj: object, owner: type | None = None) -> Bitfield | int:
        if obj is None:
            return self
        value: int = super().__get__(obj, owner)
        return value

    def __set__(self, obj: object, value: int) -> None:
        super().__set__(obj, value)


class TypedSection(SectionCore):
    """Base of a generated section class: one typed property per variable."""

    __slots__ = ()

    def __init__(self, bound: BoundSection) -> None:
        super().__init__(bound.section_map, bound.codecs)

    def _pybpf_int(self, name: str) -> int:
        unpack, offset, _ = self._pybpf_readers[name]
        value: int = unpack(self._pybpf_map.memory, offset)[0]
        return value

    def _pybpf_float(self, name: str) -> float:
        unpack, offset, _ = self._pybpf_readers[name]
        value: float = unpack(self._pybpf_map.memory, offset)[0]
        return value

    def _pybpf_bool(self, name: str) -> bool:
        unpack, offset, _ = self._pybpf_readers[name]
        return bool(unpack(self._pybpf_map.memory, offset)[0])

    def _pybpf_bigint(self, name: str) -> int:
        value: int = self._pybpf_get(name)
        return value

    def _pybpf_bytes(self, name: str) -> bytes:
        value: bytes = self._pybpf_get(name)
        return value

    def _pybpf_view(self, name: str, cls: type[T]) -> T:
        """A ctypes view of the variable in the map's memory; after load, a frozen map's views
        read the kernel's read-only mapping and refuse writes."""
        return cast(T, self._pybpf_get(name))

    def _pybpf_set(self, name: str, value: object) -> None:
        if isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
            codec = self._pybpf_codec(name)
            if codec.kind is ValueKind.VIEW:
                value = _array_from(codec, value)
        super()._pybpf_set(name, value)


def _array_from(codec: VarCodec, items: Sequence[object]) -> object:
    """A ctypes array of ``codec``'s class from a Python sequence (``[1, 2, 3]``)."""
    length = getattr(codec.ctype, "_length_", None)
    if length is None:
        raise VariableError(f"cannot set {codec.name} ({codec.type_name}) from a sequence")
    if len(items) != length:
        raise VariableError(
            f"cannot set {codec.name} ({codec.type_name}): {len(items)} items for {length}"
        )
    try:
        return codec.ctype(*items)
    except (TypeError, ValueError, ctypes.ArgumentError) as exc:
        raise VariableError(f"cannot set {codec.name} ({codec.type_name}): {exc}") from None


class ReadOnlySection(TypedSection):
    """A section user space never writes (``.kconfig``): assignments raise a clear error."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        refusal = self._pybpf_sync()[2] or "the section is read-only"
        raise VariableError(
            f"cannot set {self._pybpf_map.section_name} variable '{name}': {refusal}"
        )


class LinksBase:
    """Base of a generated skeleton's ``links``: the link of each program, once attached."""

    __slots__ = ("_pybpf_links",)

    def __init__(self, links: Mapping[str, LinkLike]) -> None:
        self._pybpf_links = links

    def _pybpf_link(self, name: str) -> Link | None:
        return cast("Link | None", self._pybpf_links.get(name))

