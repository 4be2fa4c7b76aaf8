"""Size and alignment of BTF types: the one answer every part of pybpf uses.

The rules are libbpf's (``btf__resolve_size``, ``btf__align_of``, ``btf_is_struct_packed``
as shipped with bpftool 7.1), because being bug-compatible with them is what makes the C
dumper's output byte-identical and CO-RE agree with libbpf.  Failures are values (0 or -1),
not exceptions, because libbpf's dumper carries on and prints what it can;
:meth:`Btf.size_of <pybpf.btf.btf.Btf.size_of>` and :meth:`Btf.align_of
<pybpf.btf.btf.Btf.align_of>` are the raising wrappers the rest of pybpf calls.  The exception
is a type that contains itself: libbpf recurses on it until it crashes, we raise
:class:`BtfError`.  Nothing here recurses, so hostile nesting costs time, not the stack.
"""

from __future__ import annotations

from pybpf.btf.types import (
    VOID,
    BtfArray,
    BtfConst,
    BtfDatasec,
    BtfDeclTag,
    BtfEnum,
    BtfEnum64,
    BtfFloat,
    BtfInt,
    BtfMember,
    BtfPtr,
    BtfRestrict,
    BtfStruct,
    BtfTypedef,
    BtfTypeTag,
    BtfUnion,
    BtfVar,
    BtfVolatile,
    Modifier,
)
from pybpf.errors import BtfError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pybpf.btf.btf import Btf

MAX_RESOLVE_DEPTH = 32
"""libbpf gives up resolving after 32 modifier/typedef hops; a longer chain is a cycle."""

_UINT32_MAX = 0xFFFFFFFF
_ALIGNED_AS_TARGET = (BtfTypedef, BtfVolatile, BtfConst, BtfRestrict, BtfTypeTag, BtfArray)
"""Kinds whose alignment is that of the type they refer to (an array's: its element's)."""


class _Waiting:
    """A type :meth:`TypeLayout.align_of` is computing: its members are visited one by one.

    ``composite`` is ``None`` for typedefs, qualifiers and arrays, whose alignment is simply
    the next one found.
    """

    __slots__ = ("composite", "index", "max_align", "type_id")

    def __init__(self, type_id: int, composite: BtfStruct | BtfUnion | None) -> None:
        self.type_id = type_id
        self.composite = composite
        self.index = 0
        self.max_align = 1


class TypeLayout:
    """Size and alignment queries against one BTF, with a fixed pointer size.

    Alignments are memoised: a vmlinux dump asks for the alignment of the same few thousand
    structs hundreds of thousands of times.
    """

    __slots__ = ("_align_cache", "_size_cache", "_types", "btf", "ptr_size")

    def __init__(self, btf: Btf, ptr_size: int = 8) -> None:
        self.btf = btf
        self.ptr_size = ptr_size
        self._align_cache: dict[int, int] = {}
        self._size_cache: dict[int, int] = {}
        self._types = btf.types_by_id

    def align_of(self, type_id: int) -> int:
        """Alignment in bytes like ``btf__align_of``; 0 when the type has none (void, func).

        A type that contains itself (a typedef, qualifier, array or struct cycle that no
        pointer breaks) has no alignment at all and is a :class:`BtfError`.
        """
        cached = self._align_cache.get(type_id)
        if cached is not None:
            return cached
        return self._compute_align(type_id)

    def _compute_align(self, root: int) -> int:
        """``btf__align_of`` without recursion, memoising every type it passes through.

        libbpf recurses through typedefs, qualifiers, arrays and members, so hostile BTF
        (a chain of 100,000 typedefs, or a struct that embeds itself) overflows its stack.
        Here the types still waiting for an alignment are an explicit stack; meeting a type
        that is already on it is a cycle.
        """
        cache = self._align_cache
        types = self._types
        ptr_size = self.ptr_size
        waiting: list[_Waiting] = []
        on_stack: set[int] = set()
        type_id = root
        while True:
            align = cache.get(type_id)
            if align is None:
                t = types[type_id] if type_id != VOID else None
                if isinstance(t, BtfInt | BtfEnum | BtfEnum64 | BtfFloat):
                    align = min(ptr_size, t.size)
                elif isinstance(t, BtfPtr):
                    align = ptr_size
                elif isinstance(t, _ALIGNED_AS_TARGET) or (
                    isinstance(t, BtfStruct | BtfUnion) and t.members
                ):
                    if type_id in on_stack:
                        raise self._cycle(type_id)
                    on_stack.add(type_id)
                    if isinstance(t, BtfStruct | BtfUnion):
                        waiting.append(_Waiting(type_id, t))
                        type_id = t.members[0].type
                    else:
                        waiting.append(_Waiting(type_id, None))
                        type_id = t.type
                    continue
                elif isinstance(t, BtfStruct | BtfUnion):
                    align = 1  # no members: any size is a multiple of 1
                else:
                    align = 0
                cache[type_id] = align
            # Hand the alignment just found to the types waiting for it, innermost first.
            while waiting:
                frame = waiting[-1]
                composite = frame.composite
                if composite is not None and align > 0:
                    member = composite.members[frame.index]
                    if _misplaced(member, align):
                        align = 1  # a member off its natural alignment: the struct is packed
                    else:
                        frame.max_align = max(frame.max_align, align)
                        frame.index += 1
                        if frame.index < len(composite.members):
                            type_id = composite.members[frame.index].type
                            break
                        align = 1 if composite.size % frame.max_align else frame.max_align
                waiting.pop()
                on_stack.discard(frame.type_id)
                cache[frame.type_id] = align
            else:
                return align

    def _cycle(self, type_id: int) -> BtfError:
        btf = self.btf
        return BtfError(
            f"type #{type_id}: {btf.describe(type_id)} contains itself (a reference cycle no "
            "pointer breaks), so it has no alignment",
            file=btf.file,
            section=btf.section,
        )

    def resolve_size(self, type_id: int) -> int:
        """Byte size like ``btf__resolve_size``; -1 when the type has no size.

        Memoised like :meth:`align_of`: the dumper asks once per member it prints.
        """
        cached = self._size_cache.get(type_id)
        if cached is not None:
            return cached
        size = self._compute_size(type_id)
        self._size_cache[type_id] = size
        return size

    def _compute_size(self, type_id: int) -> int:
        nelems = 1
        for _ in range(MAX_RESOLVE_DEPTH):
            if type_id == VOID:
                return -1
            t = self._types[type_id]
            if isinstance(
                t, BtfInt | BtfStruct | BtfUnion | BtfEnum | BtfEnum64 | BtfFloat | BtfDatasec
            ):
                size = t.size
            elif isinstance(t, BtfPtr):
                size = self.ptr_size
            elif isinstance(t, Modifier | BtfTypedef | BtfVar | BtfDeclTag):
                type_id = t.type
                continue
            elif isinstance(t, BtfArray):
                if nelems and t.nelems > _UINT32_MAX // nelems:
                    return -1
                nelems *= t.nelems
                type_id = t.type
                continue
            else:
                return -1
            if nelems and size > _UINT32_MAX // nelems:
                return -1
            return nelems * size
        return -1

    def is_packed(self, t: BtfStruct) -> bool:
        """Whether a struct must have been declared packed to get the layout BTF records."""
        max_align = 1
        for member in t.members:
            align = self.align_of(member.type)
            if align and _misplaced(member, align):
                return True
            max_align = max(align, max_align)
        return t.size % max_align != 0


def _misplaced(member: BtfMember, align: int) -> bool:
    """A non-bitfield member off its natural alignment: libbpf's sign of a packed struct.

    Both of libbpf's packed tests (``btf__align_of`` and ``btf_is_struct_packed``) ask this.
    """
    return member.bitfield_size == 0 and member.offset % (8 * align) != 0
