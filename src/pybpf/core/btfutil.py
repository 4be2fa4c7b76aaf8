"""Small BTF questions every CO-RE step asks, phrased the way libbpf's helpers answer them.

CO-RE compares types across two BTFs (the object's and the kernel's) by kind and structure,
so the same handful of queries recur: "what is this after typedefs and qualifiers", "is it a
struct or union", "how big is it".  Keeping them here keeps the matching code readable.
"""

from __future__ import annotations

from pybpf.btf.btf import Btf
from pybpf.btf.naming import describe_with_id
from pybpf.btf.types import (
    VOID,
    BtfArray,
    BtfEnum,
    BtfEnum64,
    BtfKind,
    BtfStruct,
    BtfType,
    BtfUnion,
)
from pybpf.errors import BtfError

Composite = BtfStruct | BtfUnion
AnyEnum = BtfEnum | BtfEnum64


class SpecError(Exception):
    """Internal: a spec or candidate problem, re-raised as :class:`CoreError` with context."""


def type_or_none(btf: Btf, type_id: int) -> BtfType | None:
    """The type ``type_id`` of ``btf``; ``None`` for ``void`` (which has no model object)."""
    if type_id == VOID:
        return None
    return btf[type_id]


def skip_mods_and_typedefs(btf: Btf, type_id: int) -> tuple[int, BtfType | None]:
    """The id and type under any typedef/const/volatile/restrict/type_tag chain."""
    try:
        resolved = btf.resolve(type_id)
    except BtfError as exc:
        raise SpecError(exc.reason) from None
    return resolved, type_or_none(btf, resolved)


def kind_of(t: BtfType | None) -> BtfKind:
    return BtfKind.UNKN if t is None else t.kind


def kinds_compatible(a: BtfType | None, b: BtfType | None) -> bool:
    """libbpf's ``btf_kind_core_compat``: same kind, except that ENUM and ENUM64 mix."""
    ka, kb = kind_of(a), kind_of(b)
    if ka == kb:
        return True
    enums = (BtfKind.ENUM, BtfKind.ENUM64)
    return ka in enums and kb in enums


def resolve_size(btf: Btf, type_id: int) -> int:
    """``sizeof`` of ``type_id``; a :class:`SpecError` for types without a size (void, funcs)."""
    try:
        return btf.size_of(type_id)
    except BtfError as exc:
        raise SpecError(f"cannot size type [{type_id}]: {exc.reason}") from None


def element_size(btf: Btf, type_id: int) -> int:
    """Size of the innermost element of a (possibly nested) array, else of the type itself.

    A load or store touches one element, so that is the size load/store patching compares.
    """
    elem_id, t = skip_mods_and_typedefs(btf, type_id)
    while isinstance(t, BtfArray):
        elem_id, t = skip_mods_and_typedefs(btf, t.type)
    return resolve_size(btf, elem_id)


describe = describe_with_id
"""``[id] kind name`` for CO-RE messages (one spelling, in :mod:`pybpf.btf.naming`)."""
