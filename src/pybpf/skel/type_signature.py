"""Structural type signatures, to tell whether two BTFs mean the same type.

A subskeleton is generated from (or opened with) the *library's* object but binds to someone
else's final object, whose BTF numbers types differently and may have been deduplicated.  Type
ids cannot be compared across the two; a signature can: it spells a type out by kind, name,
size and, for aggregates, every member's name, offset and signature.  Each struct or union is
spelled out once per signature, where the depth-first walk first meets it, and later referred
to by name (an anonymous one by the order in which it was first met).  That keeps recursive
types finite and the work linear in the number of types: expanding an aggregate again at every
path that reaches it would grow exponentially on types shared by many members (hostile BTF can
make that ``members ** depth``).  Two BTFs that describe the same types are walked in the same
order, so they still give the same string.
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
"""How many references (pointers, arrays, typedefs) one path may follow; deeper is ``...``."""


def type_signature(btf: Btf, type_id: int) -> str:
    """A string equal for structurally identical types in any two BTFs."""
    return _Signer(btf).sign(type_id, 0)


def signature_digest(btf: Btf, type_id: int) -> str:
    """A short fixed-size form of :func:`type_signature`, to embed in generated code.

    BTF names that are not UTF-8 are decoded with ``surrogateescape``; encoding the same way
    hashes the names' own bytes (strict UTF-8 would raise on them).
    """
    signature = type_signature(btf, type_id).encode("utf-8", "surrogateescape")
    return hashlib.sha256(signature).hexdigest()[:32]


class _Signer:
    """One signature's walk: remembers which aggregates it has already spelled out."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self.spelled: dict[int, str] = {}
        """Type id of each struct/union already spelled -> how later mentions refer to it."""

    def sign(self, type_id: int, depth: int) -> str:
        if type_id == 0:
            return "void"
        if depth > _MAX_DEPTH:
            return "..."
        btf = self.btf
        type_id = btf.skip_modifiers(type_id)
        t = btf[type_id]
        nxt = depth + 1
        if isinstance(t, BtfInt):
            return f"int:{t.name}:{t.size}:{int(t.encoding)}:{t.bits_offset}:{t.nr_bits}"
        if isinstance(t, BtfFloat):
            return f"float:{t.name}:{t.size}"
        if isinstance(t, BtfPtr):
            return "*" + self.sign(t.type, nxt)
        if isinstance(t, BtfArray):
            return f"[{t.nelems}]" + self.sign(t.type, nxt)
        if isinstance(t, BtfTypedef):
            return f"typedef:{t.name}=" + self.sign(t.type, nxt)
        if isinstance(t, BtfStruct | BtfUnion):
            return self._aggregate(type_id, t, nxt)
        if isinstance(t, BtfEnum | BtfEnum64):
            values = ",".join(f"{v.name}={v.value}" for v in t.values)
            return f"enum:{t.name}:{t.size}:{int(t.signed)}{{{values}}}"
        if isinstance(t, BtfFwd):
            return f"{'union' if t.is_union else 'struct'}:{t.name}"
        if isinstance(t, BtfFuncProto):
            params = ",".join(self.sign(p.type, nxt) for p in t.params)
            return f"fn({params})->" + self.sign(t.return_type, nxt)
        if isinstance(t, BtfFunc | BtfVar | BtfDeclTag):
            return f"{t.kind.name.lower()}:{t.name}:" + self.sign(t.type, nxt)
        if isinstance(t, BtfDatasec):
            return f"datasec:{t.name}"
        return f"{t.kind.name.lower()}:{t.name}"  # pragma: no cover - every kind handled above

    def _aggregate(self, type_id: int, t: BtfStruct | BtfUnion, depth: int) -> str:
        known = self.spelled.get(type_id)
        if known is not None:
            return known
        tag = "struct" if isinstance(t, BtfStruct) else "union"
        key = f"{tag}:{t.name}" if t.name else f"{tag}:#{len(self.spelled)}"
        self.spelled[type_id] = key
        members = ",".join(
            f"{m.name}@{m.offset}/{m.bitfield_size}:{self.sign(m.type, depth)}"
            for m in t.members
        )
        return f"{key}:{t.size}{{{members}}}"
