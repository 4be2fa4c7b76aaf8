"""``linux/btf.h``: kinds and linkages, the header and the record formats of ``.BTF``/``.BTF.ext``.

The parser, the encoder, the loader's sanitizer and the feature probes all read or write these
layouts; defining them once here keeps a header field from being packed two different ways.
Formats are little-endian (``"<"``) unless a caller asks for the other byte order, because BPF
objects built on this machine and every BTF the kernel takes are host-endian.
"""

from __future__ import annotations

import struct
from enum import IntEnum, IntFlag

BTF_MAGIC = 0xEB9F
"""``btf_header.magic`` as read in the blob's own byte order."""
BTF_MAGIC_SWAPPED = 0x9FEB
"""The magic read with the wrong byte order: a blob of the other endianness."""
BTF_VERSION = 1
HEADER_SIZE = 24
"""``sizeof(struct btf_header)``; ``hdr_len`` may be larger, with zeroes after."""
TYPE_HEADER_SIZE = 12
"""``sizeof(struct btf_type)``: ``name_off``, ``info``, ``size``/``type``."""

class BtfKind(IntEnum):
    """``BTF_KIND_*`` from ``linux/btf.h``."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


class IntEncoding(IntFlag):
    """``BTF_INT_*`` encoding bits of an INT type."""

    NONE = 0
    SIGNED = 1 << 0
    CHAR = 1 << 1
    BOOL = 1 << 2


class FuncLinkage(IntEnum):
    """``BTF_FUNC_*``: linkage of a FUNC."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


class VarLinkage(IntEnum):
    """``BTF_VAR_*``: linkage of a VAR."""

    STATIC = 0
    GLOBAL_ALLOCATED = 1
    GLOBAL_EXTERN = 2


_HEADER_FORMAT = "HBBIIIII"
HEADER = struct.Struct("<" + _HEADER_FORMAT)
"""magic, version, flags, hdr_len, type_off, type_len, str_off, str_len (little-endian)."""
TYPE = struct.Struct("<III")
"""``struct btf_type``."""
VAR_SECINFO = struct.Struct("<III")
"""``struct btf_var_secinfo``: type, offset, size."""
ARRAY = struct.Struct("<III")
"""``struct btf_array``: type, index_type, nelems."""
MEMBER = struct.Struct("<III")
"""``struct btf_member``: name_off, type, offset (bit offset, or bitfield size and offset)."""
ENUM64 = struct.Struct("<III")
"""``struct btf_enum64``: name_off, val_lo32, val_hi32."""

BTF_EXT_HEADER_MIN = 24
"""``.BTF.ext`` header up to ``line_info_len`` (the oldest layout)."""
BTF_EXT_HEADER_SIZE = 32
"""``.BTF.ext`` header including the CO-RE relocation fields."""
FUNC_INFO = struct.Struct("<II")
"""``struct bpf_func_info``: insn_off, type_id."""
LINE_INFO = struct.Struct("<IIII")
"""``struct bpf_line_info``: insn_off, file_name_off, line_off, line_col."""
CORE_RELO = struct.Struct("<IIII")
"""``struct bpf_core_relo``: insn_off, type_id, access_str_off, kind."""


def header_struct(endian: str = "<") -> struct.Struct:
    """The header format in byte order ``endian`` (``"<"`` or ``">"``)."""
    return HEADER if endian == "<" else struct.Struct(endian + _HEADER_FORMAT)


def pack_header(type_len: int, str_len: int, flags: int = 0) -> bytes:
    """A little-endian header for types followed directly by strings, as the kernel takes."""
    return HEADER.pack(
        BTF_MAGIC, BTF_VERSION, flags, HEADER_SIZE, 0, type_len, type_len, str_len
    )


def unpack_header(
    data: bytes | memoryview, endian: str = "<"
) -> tuple[int, int, int, int, int, int, int, int]:
    """The header at the start of ``data``, fields in :data:`HEADER`'s order; the caller checks
    magic, version and bounds.  A plain tuple: ``import pybpf.btf`` must not pay for ``typing``.
    """
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = header_struct(
        endian
    ).unpack_from(data, 0)
    return magic, version, flags, hdr_len, type_off, type_len, str_off, str_len
