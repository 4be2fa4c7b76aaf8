"""The BTF type model: one frozen value class per BTF kind.

Types refer to each other by *type id* (an ``int``), exactly as BTF does on disk, instead of
holding Python references.  That keeps decoding lazy (a type is only materialised when asked
for), makes deduplication and re-encoding a matter of rewriting integers, and lets split BTF
(kernel modules) refer into a base BTF without copying it.

Type id 0 is ``void`` and is never materialised; :data:`VOID` stands for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag


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


VOID = 0
"""The type id of ``void``."""


@dataclass(frozen=True, slots=True)
class BtfInt:
    name: str
    size: int
    encoding: IntEncoding
    bits_offset: int
    nr_bits: int
    kind = BtfKind.INT


@dataclass(frozen=True, slots=True)
class BtfPtr:
    type: int
    name: str = ""
    kind = BtfKind.PTR


@dataclass(frozen=True, slots=True)
class BtfArray:
    type: int
    index_type: int
    nelems: int
    name: str = ""
    kind = BtfKind.ARRAY


@dataclass(frozen=True, slots=True)
class BtfMember:
    """A struct/union member.  ``offset`` is in *bits*; ``bitfield_size`` is 0 for non-bitfields."""

    name: str
    type: int
    offset: int
    bitfield_size: int = 0


@dataclass(frozen=True, slots=True)
class BtfStruct:
    """STRUCT.  ``kind_flag`` says members encode bitfield sizes (kernel's bitfield encoding)."""

    name: str
    size: int
    members: tuple[BtfMember, ...]
    kind_flag: bool = False
    kind = BtfKind.STRUCT


@dataclass(frozen=True, slots=True)
class BtfUnion:
    name: str
    size: int
    members: tuple[BtfMember, ...]
    kind_flag: bool = False
    kind = BtfKind.UNION


@dataclass(frozen=True, slots=True)
class BtfEnumValue:
    name: str
    value: int


@dataclass(frozen=True, slots=True)
class BtfEnum:
    """ENUM with 32-bit values; ``signed`` is the kind_flag.  Values are stored as decoded."""

    name: str
    size: int
    values: tuple[BtfEnumValue, ...]
    signed: bool = False
    kind = BtfKind.ENUM


@dataclass(frozen=True, slots=True)
class BtfEnum64:
    name: str
    size: int
    values: tuple[BtfEnumValue, ...]
    signed: bool = False
    kind = BtfKind.ENUM64


@dataclass(frozen=True, slots=True)
class BtfFwd:
    name: str
    is_union: bool = False
    kind = BtfKind.FWD


@dataclass(frozen=True, slots=True)
class BtfTypedef:
    name: str
    type: int
    kind = BtfKind.TYPEDEF


@dataclass(frozen=True, slots=True)
class BtfVolatile:
    type: int
    name: str = ""
    kind = BtfKind.VOLATILE


@dataclass(frozen=True, slots=True)
class BtfConst:
    type: int
    name: str = ""
    kind = BtfKind.CONST


@dataclass(frozen=True, slots=True)
class BtfRestrict:
    type: int
    name: str = ""
    kind = BtfKind.RESTRICT


@dataclass(frozen=True, slots=True)
class BtfFunc:
    """FUNC: ``type`` is its FUNC_PROTO."""

    name: str
    type: int
    linkage: FuncLinkage = FuncLinkage.STATIC
    kind = BtfKind.FUNC


@dataclass(frozen=True, slots=True)
class BtfParam:
    name: str
    type: int


@dataclass(frozen=True, slots=True)
class BtfFuncProto:
    """FUNC_PROTO.  A trailing param with type 0 and no name means ``...``."""

    return_type: int
    params: tuple[BtfParam, ...]
    name: str = ""
    kind = BtfKind.FUNC_PROTO


@dataclass(frozen=True, slots=True)
class BtfVar:
    name: str
    type: int
    linkage: VarLinkage = VarLinkage.STATIC
    kind = BtfKind.VAR


@dataclass(frozen=True, slots=True)
class BtfVarSecInfo:
    """One DATASEC entry: VAR (or FUNC for ksyms) ``type`` at byte ``offset``, ``size`` bytes."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class BtfDatasec:
    name: str
    size: int
    vars: tuple[BtfVarSecInfo, ...]
    kind = BtfKind.DATASEC


@dataclass(frozen=True, slots=True)
class BtfFloat:
    name: str
    size: int
    kind = BtfKind.FLOAT


@dataclass(frozen=True, slots=True)
class BtfDeclTag:
    """DECL_TAG.  ``component_idx`` is -1 for the whole type, else a member/param index.

    ``kind_flag`` set means the tag is an ``__attribute__`` rather than a btf_decl_tag.
    """

    name: str
    type: int
    component_idx: int
    kind_flag: bool = False
    kind = BtfKind.DECL_TAG


@dataclass(frozen=True, slots=True)
class BtfTypeTag:
    name: str
    type: int
    kind_flag: bool = False
    kind = BtfKind.TYPE_TAG


BtfType = (
    BtfInt
    | BtfPtr
    | BtfArray
    | BtfStruct
    | BtfUnion
    | BtfEnum
    | BtfEnum64
    | BtfFwd
    | BtfTypedef
    | BtfVolatile
    | BtfConst
    | BtfRestrict
    | BtfFunc
    | BtfFuncProto
    | BtfVar
    | BtfDatasec
    | BtfFloat
    | BtfDeclTag
    | BtfTypeTag
)
"""Any materialised BTF type."""

Composite = BtfStruct | BtfUnion
Modifier = BtfVolatile | BtfConst | BtfRestrict | BtfTypeTag

MODIFIER_KINDS = frozenset({BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG})
"""Kinds that qualify another type without changing its layout."""
