"""Serialising BTF types to the raw format the kernel and libbpf read.

The output is always little endian (BPF objects on x86 and arm64; the kernel refuses BTF of
the other endianness).  Strings go through a :class:`StringSet`, so the string section holds
each distinct string once, in order of first use: encoding the same types (after the same
:meth:`StringSet.add` calls) gives the same bytes.

Struct/union members follow the kernel's rule for bitfields: a composite with any bitfield
member must have ``kind_flag`` set, and then each member's offset word holds
``bitfield_size << 24 | bit_offset``.  A ``kind_flag`` set in the model is kept even without
bitfields, since it is part of the type's identity for deduplication.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

from pybpf.abi.btf import ARRAY, ENUM64, MEMBER, TYPE, VAR_SECINFO, pack_header
from pybpf.btf.btf import Btf
from pybpf.btf.types import (
    BtfArray,
    BtfDatasec,
    BtfDeclTag,
    BtfEnum,
    BtfEnum64,
    BtfFloat,
    BtfFunc,
    BtfFuncProto,
    BtfFwd,
    BtfInt,
    BtfStruct,
    BtfType,
    BtfUnion,
    BtfVar,
)
from pybpf.errors import BtfError

MAX_VLEN = 0xFFFF
MAX_BITFIELD_OFFSET = (1 << 24) - 1
MAX_BITFIELD_SIZE = 0xFF

_II = struct.Struct("<II")
_I = struct.Struct("<I")
_i = struct.Struct("<i")


def _string_offsets(btf: Btf) -> dict[str, int]:
    """Offset of every string of ``btf`` and its bases (first occurrence wins, bases first)."""
    index = {} if btf.base is None else _string_offsets(btf.base)
    data = btf.string_bytes
    start = btf.start_str_off
    pos = 0
    while pos < len(data):
        end = data.index(0, pos)
        index.setdefault(data[pos:end].decode("utf-8", "surrogateescape"), start + pos)
        pos = end + 1
    return index


class StringSet:
    """Deduplicated NUL-terminated strings, laid out as a BTF string section.

    Offsets are stable: a string keeps the offset it got when first added, so callers (the
    linker writing .BTF.ext line info) may take offsets before the types are encoded.  For
    split BTF the base's strings are reused at their base offsets and new strings are numbered
    after the base's string section, which is how the kernel reads module BTF.
    """

    __slots__ = ("_base", "_data", "_offsets", "start_off")

    def __init__(self, base: Btf | None = None) -> None:
        self._data = bytearray()
        self._offsets: dict[str, int] = {}
        self._base: Mapping[str, int] = {} if base is None else _string_offsets(base)
        if base is None:
            self.start_off = 0
            self.add("")
        else:
            self.start_off = base.start_str_off + len(base.string_bytes)

    def copy(self) -> StringSet:
        """An independent copy (sharing the read-only index of the base's strings)."""
        twin = StringSet.__new__(StringSet)
        twin._base = self._base
        twin._data = bytearray(self._data)
        twin._offsets = dict(self._offsets)
        twin.start_off = self.start_off
        return twin

    def add(self, text: str) -> int:
        """The offset of ``text``, appending it if it is new."""
        off = self._offsets.get(text)
        if off is None:
            off = self._base.get(text)
            if off is None:
                encoded = text.encode("utf-8", "surrogateescape")
                if b"\0" in encoded:
                    raise BtfError(f"string {text!r} contains a NUL byte")
                off = self.start_off + len(self._data)
                self._data += encoded
                self._data.append(0)
            self._offsets[text] = off
        return off

    def __contains__(self, text: str) -> bool:
        return text in self._offsets or text in self._base

    def __len__(self) -> int:
        """Size in bytes of this set's own string section."""
        return len(self._data)

    @property
    def data(self) -> bytes:
        """This set's own string section (without the base's)."""
        return bytes(self._data)


def _info(kind: int, vlen: int, kind_flag: bool, what: str) -> int:
    if vlen > MAX_VLEN:
        raise BtfError(f"{what}: {vlen} entries, BTF allows at most {MAX_VLEN}")
    return (kind_flag << 31) | (kind << 24) | vlen


def _member_word(t: BtfStruct | BtfUnion, kflag: bool, index: int) -> int:
    m = t.members[index]
    if kflag:
        if m.offset > MAX_BITFIELD_OFFSET or m.bitfield_size > MAX_BITFIELD_SIZE:
            raise BtfError(
                f"{t.kind.name} '{t.name}' member '{m.name}': bit offset {m.offset} / "
                f"bitfield size {m.bitfield_size} do not fit the kind_flag encoding"
            )
        return (m.bitfield_size << 24) | m.offset
    if m.offset >> 32:
        raise BtfError(f"{t.kind.name} '{t.name}' member '{m.name}': offset {m.offset} too big")
    return m.offset


def _encode_type(out: bytearray, t: BtfType, add: StringSet) -> None:
    """Append the record of one type (common header plus kind-specific data) to ``out``."""
    name_off = add.add(t.name)
    kind = t.kind
    if isinstance(t, BtfStruct | BtfUnion):
        kflag = t.kind_flag or any(m.bitfield_size for m in t.members)
        info = _info(kind, len(t.members), kflag, f"{kind.name} '{t.name}'")
        out += TYPE.pack(name_off, info, t.size)
        for i, m in enumerate(t.members):
            out += MEMBER.pack(add.add(m.name), m.type, _member_word(t, kflag, i))
    elif isinstance(t, BtfInt):
        out += TYPE.pack(name_off, kind << 24, t.size)
        if t.bits_offset > 0xFF or t.nr_bits > 0xFF:
            raise BtfError(f"INT '{t.name}': bits_offset/nr_bits do not fit 8 bits")
        out += _I.pack((int(t.encoding) << 24) | (t.bits_offset << 16) | t.nr_bits)
    elif isinstance(t, BtfArray):
        out += TYPE.pack(name_off, kind << 24, 0)
        out += ARRAY.pack(t.type, t.index_type, t.nelems)
    elif isinstance(t, BtfEnum):
        info = _info(kind, len(t.values), t.signed, f"ENUM '{t.name}'")
        out += TYPE.pack(name_off, info, t.size)
        for e in t.values:
            out += _II.pack(add.add(e.name), e.value & 0xFFFFFFFF)
    elif isinstance(t, BtfEnum64):
        info = _info(kind, len(t.values), t.signed, f"ENUM64 '{t.name}'")
        out += TYPE.pack(name_off, info, t.size)
        for e in t.values:
            raw = e.value & 0xFFFFFFFFFFFFFFFF
            out += ENUM64.pack(add.add(e.name), raw & 0xFFFFFFFF, raw >> 32)
    elif isinstance(t, BtfFwd):
        out += TYPE.pack(name_off, (t.is_union << 31) | (kind << 24), 0)
    elif isinstance(t, BtfFunc):
        out += TYPE.pack(name_off, (kind << 24) | int(t.linkage), t.type)
    elif isinstance(t, BtfFuncProto):
        info = _info(kind, len(t.params), False, f"FUNC_PROTO '{t.name}'")
        out += TYPE.pack(name_off, info, t.return_type)
        for p in t.params:
            out += _II.pack(add.add(p.name), p.type)
    elif isinstance(t, BtfVar):
        out += TYPE.pack(name_off, kind << 24, t.type)
        out += _I.pack(int(t.linkage))
    elif isinstance(t, BtfDatasec):
        info = _info(kind, len(t.vars), False, f"DATASEC '{t.name}'")
        out += TYPE.pack(name_off, info, t.size)
        for v in t.vars:
            out += VAR_SECINFO.pack(v.type, v.offset, v.size)
    elif isinstance(t, BtfFloat):
        out += TYPE.pack(name_off, kind << 24, t.size)
    elif isinstance(t, BtfDeclTag):
        out += TYPE.pack(name_off, (t.kind_flag << 31) | (kind << 24), t.type)
        out += _i.pack(t.component_idx)
    else:  # PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG: a name and a target
        kflag = getattr(t, "kind_flag", False)
        out += TYPE.pack(name_off, (kflag << 31) | (kind << 24), t.type)


def encode_btf(types: Iterable[BtfType], strings: StringSet) -> bytes:
    """The raw BTF blob for ``types`` (ids in iteration order), adding names to ``strings``.

    For split BTF pass a :class:`StringSet` made over the base; the blob then holds only the
    split part's types and strings, as kernel module BTF does.
    """
    body = bytearray()
    for t in types:
        try:
            _encode_type(body, t, strings)
        except struct.error as exc:
            raise BtfError(f"{t.kind.name} '{t.name}': field out of range: {exc}") from None
    type_len = len(body)
    body += strings.data
    header = pack_header(type_len, len(strings))
    return header + bytes(body)
