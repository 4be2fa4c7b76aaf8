"""BTF types as ctypes types, laid out exactly where BTF says.

Skeleton accessors and typed events hand users live ctypes views over BPF memory (a map's mmap
or a ring-buffer record), so a struct's Python layout must match the compiler's to the byte.
ctypes' own layout rules cannot be trusted for that: its bitfield packing has differed from
GCC's (CPython issue 73939) and ``_pack_`` semantics change in 3.14.  So every struct is built
with ``_pack_ = 1`` and explicit padding members at the BTF byte offsets, and bitfields are not
ctypes bitfields at all: their bytes are covered by an opaque storage array and each bitfield is
a property that shifts and masks.  Each built class is checked against BTF (size and every
member offset) before it is returned.
"""

from __future__ import annotations

import ctypes
import keyword
import re
from collections.abc import Container
from typing import Any

from pybpf.btf.btf import Btf
from pybpf.btf.types import (
    VOID,
    BtfArray,
    BtfEnum,
    BtfEnum64,
    BtfFloat,
    BtfFuncProto,
    BtfFwd,
    BtfInt,
    BtfMember,
    BtfPtr,
    BtfStruct,
    BtfUnion,
    IntEncoding,
)
from pybpf.errors import BtfError

CType = Any
"""A ctypes type object (``type[ctypes._CData]``; typeshed's private name is not importable)."""

_SIGNED = {1: ctypes.c_int8, 2: ctypes.c_int16, 4: ctypes.c_int32, 8: ctypes.c_int64}
_UNSIGNED = {1: ctypes.c_uint8, 2: ctypes.c_uint16, 4: ctypes.c_uint32, 8: ctypes.c_uint64}
_FLOATS = {4: ctypes.c_float, 8: ctypes.c_double}


_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")
_CTYPES_NAMES = frozenset(
    name for cls in (ctypes.Structure, ctypes.Union) for name in (*dir(cls), *dir(type(cls)))
) | {"_fields_", "_pack_", "_align_", "_anonymous_", "_layout_", "_swappedbytes_"}
"""What a member must not be called: ctypes' own attributes of a class or its metaclass
(``from_buffer``, ``_fields_``, ``__init__``...), which a field of that name would hide."""


def python_name(name: str, reserved: Container[str] = frozenset()) -> str:
    """``name`` as an ASCII Python identifier, deterministically.

    BTF names are arbitrary bytes (a crafted object's member can be called ``a.b`` or ``class``,
    or not be UTF-8), but they become attribute names here and in generated modules.  Every
    character but ASCII letters, digits and ``_`` becomes ``_`` (ASCII only, so that Python's
    NFKC folding of identifiers cannot merge two names), a leading digit or an empty name gets
    a ``_`` in front, and a keyword or a ``reserved`` name gets ``_`` appended until it is
    neither.  A C identifier that is not a keyword comes back unchanged.
    """
    base = _NOT_IDENTIFIER.sub("_", name)
    if not base or base[0].isdigit():
        base = "_" + base
    while keyword.iskeyword(base) or base in reserved:
        base += "_"
    return base


def _field_name(name: str, taken: set[str]) -> str:
    """A usable, unique attribute name (ctypes rejects duplicates)."""
    base = python_name(name, _CTYPES_NAMES)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate)
    return candidate


class CBitfield:
    """A data descriptor reading/writing ``bits`` bits at ``bit_offset`` of a struct.

    Bit numbering follows the target's byte order: on little-endian BPF bit 0 is the least
    significant bit of the byte at the struct's start, which is what clang's BTF records.
    """

    __slots__ = ("bit_offset", "bits", "byte_len", "first_byte", "name", "shift", "signed")

    def __init__(self, name: str, bit_offset: int, bits: int, signed: bool) -> None:
        self.name = name
        self.bit_offset = bit_offset
        self.bits = bits
        self.signed = signed
        self.first_byte = bit_offset // 8
        self.shift = bit_offset % 8
        self.byte_len = (self.shift + bits + 7) // 8

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        raw = ctypes.string_at(ctypes.addressof(obj) + self.first_byte, self.byte_len)
        value = (int.from_bytes(raw, "little") >> self.shift) & ((1 << self.bits) - 1)
        if self.signed and value >> (self.bits - 1):
            value -= 1 << self.bits
        return value

    def __set__(self, obj: Any, value: int) -> None:
        mask = (1 << self.bits) - 1
        if self.signed:
            lo, hi = -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        else:
            lo, hi = 0, mask
        if not lo <= value <= hi:
            raise ValueError(f"{self.name}: {value} does not fit a {self.bits}-bit bitfield")
        address = ctypes.addressof(obj) + self.first_byte
        word = int.from_bytes(ctypes.string_at(address, self.byte_len), "little")
        word = (word & ~(mask << self.shift)) | ((value & mask) << self.shift)
        ctypes.memmove(address, word.to_bytes(self.byte_len, "little"), self.byte_len)


class CTypesBuilder:
    """Builds (and caches) one ctypes type per BTF type id."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self._cache: dict[int, CType] = {}
        self._building: set[int] = set()

    def ctype(self, type_id: int) -> CType:
        """The ctypes type for values of BTF type ``type_id`` (typedefs and modifiers skipped)."""
        resolved = self.btf.resolve(type_id)
        cached = self._cache.get(resolved)
        if cached is not None:
            return cached
        if resolved in self._building:
            raise BtfError(f"type #{resolved} contains itself by value", file=self.btf.file)
        self._building.add(resolved)
        try:
            built = self._build(resolved)
        finally:
            self._building.discard(resolved)
        self._cache[resolved] = built
        return built

    def _build(self, type_id: int) -> CType:
        if type_id == VOID:
            raise BtfError("void has no ctypes representation", file=self.btf.file)
        t = self.btf[type_id]
        if isinstance(t, BtfInt):
            return self._int(t)
        if isinstance(t, BtfEnum | BtfEnum64):
            table = _SIGNED if t.signed else _UNSIGNED
            return table.get(t.size) or ctypes.c_uint8 * t.size
        if isinstance(t, BtfFloat):
            return _FLOATS.get(t.size) or ctypes.c_uint8 * t.size
        if isinstance(t, BtfPtr):
            # A pointer into kernel or BPF memory is just a 64-bit number to user space.
            return ctypes.c_uint64
        if isinstance(t, BtfArray):
            elem = self.ctype(t.type)
            return elem * t.nelems
        if isinstance(t, BtfStruct | BtfUnion):
            return self._composite(type_id, t)
        if isinstance(t, BtfFwd):
            raise BtfError(
                f"type #{type_id}: {t.name!r} is only forward-declared; its layout is unknown",
                file=self.btf.file,
            )
        if isinstance(t, BtfFuncProto):
            raise BtfError(f"type #{type_id}: a function is not a value", file=self.btf.file)
        raise BtfError(
            f"type #{type_id}: {t.kind.name} has no ctypes representation", file=self.btf.file
        )

    @staticmethod
    def _int(t: BtfInt) -> CType:
        if t.encoding & IntEncoding.BOOL and t.size == 1:
            return ctypes.c_bool
        if t.encoding & IntEncoding.CHAR or (t.size == 1 and t.name in ("char", "signed char")):
            # char (and arrays of it) read and write as bytes, which is what C strings are.
            return ctypes.c_char
        table = _SIGNED if t.encoding & IntEncoding.SIGNED else _UNSIGNED
        return table.get(t.size) or ctypes.c_uint8 * t.size

    def _composite(self, type_id: int, t: BtfStruct | BtfUnion) -> CType:
        is_union = isinstance(t, BtfUnion)
        base: type = ctypes.Union if is_union else ctypes.Structure
        # type() needs a name it can encode (one that was not UTF-8 would raise).
        name = python_name(t.name) if t.name else f"anon_{type_id}"
        fields: list[tuple[str, CType]] = []
        anonymous: list[str] = []
        bitfields: list[CBitfield] = []
        expected_offsets: dict[str, int] = {}
        taken: set[str] = set()
        cursor = 0  # next free byte (structs only)
        pad_index = 0
        unnamed = 0

        def add_padding(upto: int) -> None:
            nonlocal cursor, pad_index
            if upto > cursor:
                pad = _field_name(f"_pad{pad_index}", taken)
                fields.append((pad, ctypes.c_uint8 * (upto - cursor)))
                pad_index += 1
                cursor = upto

        members = sorted(t.members, key=lambda m: m.offset) if not is_union else list(t.members)
        for member in members:
            if member.bitfield_size or self._is_int_bitfield(member):
                bitfields.append(self._bitfield(member, taken))
                continue
            if member.offset % 8:
                raise BtfError(
                    f"type #{type_id}: member {member.name!r} at bit {member.offset} is not "
                    "byte-aligned",
                    file=self.btf.file,
                )
            byte_offset = member.offset // 8
            ctype = self.ctype(member.type)
            if not is_union:
                if byte_offset < cursor:
                    raise BtfError(
                        f"type #{type_id}: member {member.name!r} overlaps the previous member",
                        file=self.btf.file,
                    )
                add_padding(byte_offset)
                cursor = byte_offset + ctypes.sizeof(ctype)
            if member.name:
                field = _field_name(member.name, taken)
            else:
                # Only a struct or union can be anonymous (its members read as the outer
                # type's); an unnamed scalar is just a field without a C name.
                field = _field_name(f"_anon{unnamed}", taken)
                unnamed += 1
                if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure | ctypes.Union):
                    anonymous.append(field)
            fields.append((field, ctype))
            expected_offsets[field] = byte_offset
        if is_union:
            # A member as large as the union pins its size whatever the members are.
            fields.append((_field_name("_size", taken), ctypes.c_uint8 * t.size))
        else:
            # Bitfield storage is whatever bytes no ordinary member claims: padding covers it.
            add_padding(t.size)
        namespace: dict[str, Any] = {"_pack_": 1, "_layout_": "ms", "_fields_": fields}
        if anonymous:
            namespace["_anonymous_"] = anonymous
        # The docstring too must encode: bytes that were not UTF-8 are shown as escapes.
        shown = t.name.encode("utf-8", "backslashreplace").decode() if t.name else "(anon)"
        namespace["__doc__"] = f"{'union' if is_union else 'struct'} {shown}"
        cls = type(name, (base,), namespace)
        for bf in bitfields:
            setattr(cls, bf.name, bf)
        self._check_layout(type_id, t, cls, expected_offsets)
        return cls

    def _is_int_bitfield(self, member: BtfMember) -> bool:
        """Bitfields in BTF without kind_flag: an INT whose nr_bits is narrower than its size."""
        target = self.btf[self.btf.resolve(member.type)] if member.type else None
        return isinstance(target, BtfInt) and target.nr_bits != target.size * 8

    def _bitfield(self, member: BtfMember, taken: set[str]) -> CBitfield:
        target = self.btf[self.btf.resolve(member.type)]
        bits = member.bitfield_size
        offset = member.offset
        signed = False
        if isinstance(target, BtfInt):
            signed = bool(target.encoding & IntEncoding.SIGNED)
            if not bits:
                bits = target.nr_bits
                offset += target.bits_offset
        elif isinstance(target, BtfEnum | BtfEnum64):
            signed = target.signed
        name = _field_name(member.name or "_anon_bitfield", taken)
        return CBitfield(name, offset, bits, signed)

    def _check_layout(
        self, type_id: int, t: BtfStruct | BtfUnion, cls: CType, offsets: dict[str, int]
    ) -> None:
        if ctypes.sizeof(cls) != t.size:
            raise BtfError(
                f"type #{type_id}: ctypes layout of {t.name!r} is {ctypes.sizeof(cls)} bytes, "
                f"BTF says {t.size}",
                file=self.btf.file,
            )
        for field, expected in offsets.items():
            actual = getattr(cls, field).offset
            if actual != expected:
                raise BtfError(
                    f"type #{type_id}: member {field!r} of {t.name!r} at byte {actual}, "
                    f"BTF says {expected}",
                    file=self.btf.file,
                )
