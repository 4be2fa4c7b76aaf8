"""Layout arithmetic for the BTF-to-C dumper: sizes, alignments, packing and padding fields.

BTF records where every member sits and how big a struct is, but not the source attributes
that produced that layout.  To print C that compiles back to the *same* layout, the dumper
infers ``__attribute__((packed))`` from misaligned members and fills holes the compiler would
not leave on its own with anonymous bitfields (``long: 64;``).  These rules are libbpf's
(``btf__align_of``, ``btf__resolve_size``, ``btf_is_struct_packed``,
``btf_dump_emit_bit_padding`` as shipped with bpftool 7.1); being bug-compatible with them is
what makes our output byte-identical.  Unlike :meth:`Btf.align_of`, failures here are values
(0 or -1), not exceptions, because libbpf carries on and prints what it can.  The exception is
a type that contains itself: libbpf recurses on it until it crashes, we raise :class:`BtfError`.
"""

from __future__ import annotations

from pybpf.btf.btf import MAX_RESOLVE_DEPTH, Btf
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
    BtfKind,
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


_LONG_NAMES = (
    "long",
    "long int",
    "int long",
    "unsigned long",
    "long unsigned",
    "unsigned long int",
    "unsigned int long",
    "long unsigned int",
    "long int unsigned",
    "int unsigned long",
    "int long unsigned",
)
_HOST_POINTER_SIZE = 8
"""bpftool runs on x86-64 here; libbpf falls back to the host's pointer size."""


def guess_pointer_size(btf: Btf) -> int:
    """The pointer size libbpf assumes for ``btf``: the size of its first ``long`` INT.

    For BPF objects libbpf takes it from the ELF class instead, which is 64-bit and agrees:
    BPF's ``long`` is 8 bytes.  Raw BTF of a 32-bit kernel would say 4.
    """
    best: tuple[int, int] | None = None
    for name in _LONG_NAMES:
        for type_id in btf.find(name, BtfKind.INT):
            size = btf.size_of(type_id)
            if size in (4, 8) and (best is None or type_id < best[0]):
                best = (type_id, size)
                break
    return _HOST_POINTER_SIZE if best is None else best[1]


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
                    if member.bitfield_size == 0 and member.offset % (8 * align):
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
            if align and member.bitfield_size == 0 and member.offset % (8 * align):
                return True
            max_align = max(align, max_align)
        return t.size % max_align != 0


def _roundup(value: int, step: int) -> int:
    return (value + step - 1) // step * step


def padding_fields(
    ptr_size: int, cur_off: int, next_off: int, next_align: int, in_bitfield: bool
) -> list[tuple[str, int, int]]:
    """Anonymous bitfields that move the layout from bit ``cur_off`` to bit ``next_off``.

    Returns ``(type name, bit count, repeat)`` runs, each line printed as
    ``<type>: <bits>;``, ``repeat`` times over.  Runs rather than lines because a hole can
    span millions of ``long: 64;`` lines, which the dumper writes out in bounded blocks.
    The idea (libbpf's): pick the widest of long/int/short/char whose next natural boundary
    does not overshoot, let the compiler's own alignment close the first stretch where it
    would, then fill the rest with whole units and one smallest-sufficient remainder.
    """
    if cur_off >= next_off:
        return []
    pads = (("long", ptr_size * 8), ("int", 32), ("short", 16), ("char", 8))
    out: list[tuple[str, int, int]] = []
    # The widest unit whose next boundary does not overshoot (char if none fits).
    pad_type, pad_bits = pads[-1]
    new_off = _roundup(cur_off, pad_bits)
    for name, width in pads:
        if _roundup(cur_off, width) <= next_off:
            pad_type, pad_bits = name, width
            new_off = _roundup(cur_off, width)
            break
    if cur_off < new_off <= next_off:
        # An explicit `<type>: 0;` is needed when the compiler would not align to new_off by
        # itself: always inside a bitfield run (where the count is then spelled out), when
        # the next member's own alignment lands elsewhere, or when the following `<type>: X`
        # would fit entirely in the hole and be swallowed by it.
        if (
            in_bitfield
            or (new_off == next_off and _roundup(cur_off, max(next_align, 1) * 8) != new_off)
            or (new_off != next_off and next_off - new_off <= new_off - cur_off)
        ):
            out.append((pad_type, new_off - cur_off if in_bitfield else 0, 1))
        cur_off = new_off
    # Whole units, then one remainder in the smallest type that holds it.
    units, rest = divmod(next_off - cur_off, pad_bits)
    if units:
        out.append((pad_type, pad_bits, units))
    if rest:
        name = next(name for name, width in reversed(pads) if width >= rest)
        out.append((name, rest, 1))
    return out
