"""Structural type signatures, to tell whether two BTFs mean the same type.

A subskeleton is generated from (or opened with) the *library's* object but binds to someone
else's final object, whose BTF numbers types differently and may have been deduplicated.  Type
ids cannot be compared across the two; a signature can: it spells a type out by kind, name,
size and, for aggregates, every member's name, offset and signature.  Named structs/unions/
enums are expanded once and then referred to by name, which keeps recursive types finite.
"""

from __future__ import annotations

import hashlib

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
    BtfPtr,
    BtfStruct,
    BtfTypedef,
    BtfUnion,
    BtfVar,
)

_MAX_DEPTH = 64


def type_signature(btf: Btf, type_id: int) -> str:
    """A string equal for structurally identical types in any two BTFs."""
    return _signature(btf, type_id, set(), 0)


def signature_digest(btf: Btf, type_id: int) -> str:
    """A short fixed-size form of :func:`type_signature`, to embed in generated code."""
    return hashlib.sha256(type_signature(btf, type_id).encode()).hexdigest()[:32]


def _signature(btf: Btf, type_id: int, expanded: set[str], depth: int) -> str:
    if type_id == 0:
        return "void"
    if depth > _MAX_DEPTH:
        return "..."
    type_id = btf.skip_modifiers(type_id)
    t = btf[type_id]
    nxt = depth + 1
    if isinstance(t, BtfInt):
        return f"int:{t.name}:{t.size}:{int(t.encoding)}:{t.bits_offset}:{t.nr_bits}"
    if isinstance(t, BtfFloat):
        return f"float:{t.name}:{t.size}"
    if isinstance(t, BtfPtr):
        return "*" + _signature(btf, t.type, expanded, nxt)
    if isinstance(t, BtfArray):
        return f"[{t.nelems}]" + _signature(btf, t.type, expanded, nxt)
    if isinstance(t, BtfTypedef):
        return f"typedef:{t.name}=" + _signature(btf, t.type, expanded, nxt)
    if isinstance(t, BtfStruct | BtfUnion):
        tag = "struct" if isinstance(t, BtfStruct) else "union"
        key = f"{tag}:{t.name}"
        if t.name and key in expanded:
            return key
        if t.name:
            expanded = expanded | {key}
        members = ",".join(
            f"{m.name}@{m.offset}/{m.bitfield_size}:{_signature(btf, m.type, expanded, nxt)}"
            for m in t.members
        )
        return f"{key}:{t.size}{{{members}}}"
    if isinstance(t, BtfEnum | BtfEnum64):
        values = ",".join(f"{v.name}={v.value}" for v in t.values)
        return f"enum:{t.name}:{t.size}:{int(t.signed)}{{{values}}}"
    if isinstance(t, BtfFwd):
        return f"{'union' if t.is_union else 'struct'}:{t.name}"
    if isinstance(t, BtfFuncProto):
        params = ",".join(_signature(btf, p.type, expanded, nxt) for p in t.params)
        return f"fn({params})->" + _signature(btf, t.return_type, expanded, nxt)
    if isinstance(t, BtfFunc | BtfVar | BtfDeclTag):
        return f"{t.kind.name.lower()}:{t.name}:" + _signature(btf, t.type, expanded, nxt)
    if isinstance(t, BtfDatasec):
        return f"datasec:{t.name}"
    return f"{t.kind.name.lower()}:{t.name}"  # pragma: no cover - every kind handled above
