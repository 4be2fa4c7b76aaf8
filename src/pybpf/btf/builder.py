"""A mutable BTF under construction: the linker's and the deduplicator's working copy.

:class:`~pybpf.btf.btf.Btf` is read-only and lazy, which suits reading objects and vmlinux.
Producing BTF (linking objects, deduplicating, synthesising types) needs the opposite: a
plain list of :mod:`pybpf.btf.types` values that can be appended to and rewritten, and that
can be serialised again.  :class:`BtfBuilder` is that list plus a string set; encoding lives
in :mod:`pybpf.btf.encode`.

Type ids work as in BTF: the builder's first type has id ``start_id`` (1, or one past the
base's last id for split BTF) and types refer to each other by id.  :func:`map_type_ids` and
:func:`referenced_ids` are the one place that knows which fields of each kind hold type ids,
so that appending (shifting ids) and deduplication (remapping ids) cannot forget one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pybpf.btf.btf import Btf
from pybpf.btf.encode import StringSet, encode_btf
from pybpf.btf.types import (
    BtfArray,
    BtfConst,
    BtfDatasec,
    BtfDeclTag,
    BtfEnum,
    BtfEnum64,
    BtfFloat,
    BtfFunc,
    BtfFuncProto,
    BtfFwd,
    BtfInt,
    BtfMember,
    BtfParam,
    BtfPtr,
    BtfRestrict,
    BtfStruct,
    BtfType,
    BtfTypedef,
    BtfTypeTag,
    BtfUnion,
    BtfVar,
    BtfVarSecInfo,
    BtfVolatile,
)
from pybpf.errors import BtfError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

IdMap = Callable[[int], int]
"""A function from old type id to new type id (it must map 0, ``void``, to 0)."""


# --------------------------------------------------------------------------------- type ids


def _map_members(members: tuple[BtfMember, ...], f: IdMap) -> tuple[BtfMember, ...]:
    return tuple([BtfMember(m.name, f(m.type), m.offset, m.bitfield_size) for m in members])


# One function per class, found by ``type(t)``: the linker and the deduplicator call these for
# every type they handle, and a dictionary lookup beats a chain of ``isinstance`` tests.
_MAPPERS: dict[type, Callable[[Any, IdMap], BtfType]] = {
    BtfPtr: lambda t, f: BtfPtr(f(t.type), t.name),
    BtfStruct: lambda t, f: BtfStruct(t.name, t.size, _map_members(t.members, f), t.kind_flag),
    BtfUnion: lambda t, f: BtfUnion(t.name, t.size, _map_members(t.members, f), t.kind_flag),
    BtfConst: lambda t, f: BtfConst(f(t.type), t.name),
    BtfTypedef: lambda t, f: BtfTypedef(t.name, f(t.type)),
    BtfFuncProto: lambda t, f: BtfFuncProto(
        f(t.return_type), tuple([BtfParam(p.name, f(p.type)) for p in t.params]), t.name
    ),
    BtfArray: lambda t, f: BtfArray(f(t.type), f(t.index_type), t.nelems, t.name),
    BtfFunc: lambda t, f: BtfFunc(t.name, f(t.type), t.linkage),
    BtfVolatile: lambda t, f: BtfVolatile(f(t.type), t.name),
    BtfRestrict: lambda t, f: BtfRestrict(f(t.type), t.name),
    BtfVar: lambda t, f: BtfVar(t.name, f(t.type), t.linkage),
    BtfDatasec: lambda t, f: BtfDatasec(
        t.name, t.size, tuple([BtfVarSecInfo(f(v.type), v.offset, v.size) for v in t.vars])
    ),
    BtfDeclTag: lambda t, f: BtfDeclTag(t.name, f(t.type), t.component_idx, t.kind_flag),
    BtfTypeTag: lambda t, f: BtfTypeTag(t.name, f(t.type), t.kind_flag),
}
_NO_REFS = (BtfInt, BtfEnum, BtfEnum64, BtfFwd, BtfFloat)


def map_type_ids(t: BtfType, f: IdMap) -> BtfType:
    """``t`` with every type id it refers to replaced by ``f(id)``.

    Types without references are returned as is (they are immutable, sharing is safe).
    """
    mapper = _MAPPERS.get(t.__class__)
    return t if mapper is None else mapper(t, f)  # INT, ENUM, ENUM64, FWD, FLOAT: no references


_REFERENCED: dict[type, Callable[[Any], tuple[int, ...]]] = {
    BtfStruct: lambda t: tuple([m.type for m in t.members]),
    BtfUnion: lambda t: tuple([m.type for m in t.members]),
    BtfFuncProto: lambda t: (t.return_type, *[p.type for p in t.params]),
    BtfArray: lambda t: (t.type, t.index_type),
    BtfDatasec: lambda t: tuple([v.type for v in t.vars]),
    **{cls: lambda t: () for cls in _NO_REFS},
}


def referenced_ids(t: BtfType) -> tuple[int, ...]:
    """The type ids ``t`` refers to, in on-disk order (members, params, DATASEC entries)."""
    refs = _REFERENCED.get(t.__class__)
    return (t.type,) if refs is None else refs(t)  # type: ignore[union-attr]


# --------------------------------------------------------------------------------- builder


class BtfBuilder:
    """An editable list of BTF types with ids from ``start_id``, plus a string set.

    ``base`` makes it split BTF: ids below ``start_id`` name the base's types, which the
    builder never copies.
    """

    __slots__ = ("_extra_strings", "_strings", "_types", "base", "start_id")

    def __init__(self, base: Btf | None = None) -> None:
        self.base = base
        self.start_id = 1 if base is None else base.end_id
        self._types: list[BtfType] = []
        self._strings: StringSet | None = None
        self._extra_strings: dict[str, None] = {}

    @classmethod
    def from_btf(cls, btf: Btf) -> BtfBuilder:
        """A builder holding every type of ``btf`` under the same ids (and the same base)."""
        builder = cls(btf.base)
        builder._types = list(btf)
        return builder

    # ----------------------------------------------------------------------------- types

    def __len__(self) -> int:
        """Number of types held (not counting void or the base's types)."""
        return len(self._types)

    @property
    def end_id(self) -> int:
        """One past the last type id."""
        return self.start_id + len(self._types)

    def type_ids(self) -> range:
        return range(self.start_id, self.end_id)

    def __iter__(self) -> Iterator[BtfType]:
        return iter(self._types)

    def types(self) -> list[BtfType]:
        """A copy of the held types, in id order."""
        return list(self._types)

    def _index(self, type_id: int) -> int:
        index = type_id - self.start_id
        if index < 0 or index >= len(self._types):
            raise BtfError(f"type id {type_id} out of range [{self.start_id}, {self.end_id - 1}]")
        return index

    def __getitem__(self, type_id: int) -> BtfType:
        """The type with id ``type_id``; base ids are looked up in the base."""
        if 0 < type_id < self.start_id and self.base is not None:
            return self.base[type_id]
        return self._types[self._index(type_id)]

    def add(self, t: BtfType) -> int:
        """Append ``t`` and return its new type id."""
        self._types.append(t)
        return self.start_id + len(self._types) - 1

    def replace(self, type_id: int, t: BtfType) -> None:
        """Put ``t`` in place of the type with id ``type_id`` (base types cannot change)."""
        self._types[self._index(type_id)] = t

    def add_all(self, other: Btf | BtfBuilder) -> int:
        """Append every type of ``other``, shifting its ids; return the shift.

        A type of ``other`` with id ``i`` gets id ``i + shift`` here.  ``other`` may be
        standalone BTF, or split BTF over this builder's own base (its base ids then stay).
        """
        first = self.end_id
        shift = first - other.start_id
        if other.base is None:
            limit = 1  # every non-void id moves
        elif self.base is not None and other.start_id == self.start_id:
            limit = other.start_id  # ids of the shared base stay
        else:
            raise BtfError(
                f"cannot append split BTF starting at id {other.start_id} to a builder "
                f"starting at id {self.start_id}: different bases"
            )

        def shifted(type_id: int) -> int:
            return type_id + shift if type_id >= limit else type_id

        self._types.extend(map_type_ids(t, shifted) for t in other)
        return shift

    # ----------------------------------------------------------------------------- strings

    def add_string(self, text: str) -> int:
        """The string-section offset of ``text``, for data that refers to BTF strings.

        .BTF.ext line info and CO-RE records point into the .BTF string section.  These
        strings are laid out first, in the order asked, so the offsets handed out here hold
        in every :meth:`encode` output; :func:`~pybpf.btf.dedup.dedup` asks for them again in
        the same order, so they hold in its result too.
        """
        self._extra_strings.setdefault(text)
        return self._string_set().add(text)  # this set only ever holds such strings

    @property
    def extra_strings(self) -> tuple[str, ...]:
        """Strings asked for with :meth:`add_string`, in first-asked order."""
        return tuple(self._extra_strings)

    def _string_set(self) -> StringSet:
        if self._strings is None:
            self._strings = StringSet(self.base)
        return self._strings

    # ----------------------------------------------------------------------------- output

    def encode(self) -> bytes:
        """The raw BTF blob (little endian): header, type section, string section.

        The string section holds the :meth:`add_string` strings first, then the types'
        names in order of first use: the same types and the same :meth:`add_string` calls
        give the same bytes, whatever was encoded or replaced before.
        """
        return encode_btf(self._types, self._string_set().copy())

    def to_btf(self) -> Btf:
        """Encode and parse back, for read-only use (lookups, dumps)."""
        return Btf.from_bytes(self.encode(), base=self.base, section=None)

    def __repr__(self) -> str:
        return f"<BtfBuilder: {len(self)} types from id {self.start_id}>"
