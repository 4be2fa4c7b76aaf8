"""Do two objects' BTF types for one global symbol describe the same thing?

The rules are libbpf's (``glob_sym_btf_matches`` in ``src/linker.c``), so an object set that
libbpf's linker accepts links here too and vice versa: modifiers and typedefs are looked
through; names must agree for named kinds; ints, floats and enums only need equal sizes;
array lengths and index types are ignored; behind a pointer only the *shape* of the pointee
counts (a forward declaration matches a struct of its name); FUNC and VAR linkages may differ
as long as neither side is static; struct members must agree in name, offset and type.

Returns ``None`` when the types match, otherwise a reason to put in the error message.
"""

from __future__ import annotations

from pybpf.btf.btf import Btf
from pybpf.btf.types import (
    VOID,
    BtfArray,
    BtfEnum,
    BtfEnum64,
    BtfFloat,
    BtfFunc,
    BtfFuncProto,
    BtfFwd,
    BtfInt,
    BtfKind,
    BtfPtr,
    BtfStruct,
    BtfType,
    BtfUnion,
    BtfVar,
    FuncLinkage,
    VarLinkage,
)

_NAMED = frozenset(
    {
        BtfKind.STRUCT,
        BtfKind.UNION,
        BtfKind.ENUM,
        BtfKind.ENUM64,
        BtfKind.FWD,
        BtfKind.FUNC,
        BtfKind.VAR,
    }
)
_MAX_DEPTH = 64


def _kind_name(t: BtfType | None) -> str:
    return "void" if t is None else t.kind.name.lower()


def _get(btf: Btf, type_id: int) -> BtfType | None:
    return None if type_id == VOID else btf[btf.resolve(type_id)]


def btf_types_match(btf1: Btf, id1: int, btf2: Btf, id2: int, *, exact: bool = True) -> str | None:
    """``None`` if ``id1`` in ``btf1`` and ``id2`` in ``btf2`` are compatible, else why not."""
    return _match(btf1, id1, btf2, id2, exact, 0)


def _match(btf1: Btf, id1: int, btf2: Btf, id2: int, exact: bool, depth: int) -> str | None:
    while True:
        if depth > _MAX_DEPTH:
            return "types nest too deeply to compare"
        depth += 1
        t1 = _get(btf1, id1)
        t2 = _get(btf2, id2)
        if not exact and isinstance(t1, BtfFwd) != isinstance(t2, BtfFwd):
            return _fwd_vs_concrete(t1, t2)
        if (t1 is None) != (t2 is None):
            return f"incompatible BTF kinds {_kind_name(t1)} and {_kind_name(t2)}"
        if t1 is None or t2 is None:
            return None  # both void
        if t1.kind != t2.kind:
            return f"incompatible BTF kinds {_kind_name(t1)} and {_kind_name(t2)}"
        if t1.kind in _NAMED and t1.name != t2.name:
            return f"incompatible {_kind_name(t1)} names {t1.name!r} and {t2.name!r}"
        if isinstance(t1, BtfFwd):
            return None
        if isinstance(t1, BtfInt | BtfFloat | BtfEnum | BtfEnum64):
            assert isinstance(t2, BtfInt | BtfFloat | BtfEnum | BtfEnum64)
            if t1.size != t2.size:
                return f"{_kind_name(t1)} {t1.name!r} has size {t1.size} vs {t2.size}"
            return None
        if isinstance(t1, BtfPtr):
            assert isinstance(t2, BtfPtr)
            exact, id1, id2 = False, t1.type, t2.type
            continue
        if isinstance(t1, BtfArray):
            assert isinstance(t2, BtfArray)
            id1, id2 = t1.type, t2.type
            continue
        if isinstance(t1, BtfFunc):
            assert isinstance(t2, BtfFunc)
            if (t1.linkage == FuncLinkage.STATIC) != (t2.linkage == FuncLinkage.STATIC):
                return f"func {t1.name!r} is static in one file only"
            id1, id2 = t1.type, t2.type
            continue
        if isinstance(t1, BtfVar):
            assert isinstance(t2, BtfVar)
            if (t1.linkage == VarLinkage.STATIC) != (t2.linkage == VarLinkage.STATIC):
                return f"var {t1.name!r} is static in one file only"
            id1, id2 = t1.type, t2.type
            continue
        if isinstance(t1, BtfStruct | BtfUnion):
            assert isinstance(t2, BtfStruct | BtfUnion)
            return _match_members(btf1, t1, btf2, t2, exact, depth)
        if isinstance(t1, BtfFuncProto):
            assert isinstance(t2, BtfFuncProto)
            if len(t1.params) != len(t2.params):
                return f"functions take {len(t1.params)} vs {len(t2.params)} parameters"
            for p1, p2 in zip(t1.params, t2.params, strict=True):
                reason = _match(btf1, p1.type, btf2, p2.type, exact, depth)
                if reason:
                    return reason
            id1, id2 = t1.return_type, t2.return_type
            continue
        return f"unsupported BTF kind {_kind_name(t1)}"


def _fwd_vs_concrete(t1: BtfType | None, t2: BtfType | None) -> str | None:
    fwd, other = (t1, t2) if isinstance(t1, BtfFwd) else (t2, t1)
    assert isinstance(fwd, BtfFwd)
    if other is None or fwd.name != other.name:
        other_name = "void" if other is None else repr(other.name)
        return f"forward declaration {fwd.name!r} vs {other_name}"
    if isinstance(other, BtfUnion if fwd.is_union else BtfStruct):
        return None
    kind = "union" if fwd.is_union else "struct"
    return f"{kind} forward declaration {fwd.name!r} vs {_kind_name(other)}"


def _match_members(
    btf1: Btf,
    t1: BtfStruct | BtfUnion,
    btf2: Btf,
    t2: BtfStruct | BtfUnion,
    exact: bool,
    depth: int,
) -> str | None:
    if not exact:
        return None
    if len(t1.members) != len(t2.members):
        return f"{_kind_name(t1)} {t1.name!r} has {len(t1.members)} vs {len(t2.members)} members"
    for i, (m1, m2) in enumerate(zip(t1.members, t2.members, strict=True)):
        if m1.name != m2.name:
            return f"member #{i} is named {m1.name!r} vs {m2.name!r}"
        if m1.offset != m2.offset or m1.bitfield_size != m2.bitfield_size:
            return f"member {m1.name!r} is at different offsets"
        reason = _match(btf1, m1.type, btf2, m2.type, exact, depth)
        if reason:
            return f"member {m1.name!r}: {reason}"
    return None
