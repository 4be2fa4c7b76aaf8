"""Type-level compatibility for type relocations (``bpf_core_type_exists``/``_size``/``_matches``).

Two relations, both from libbpf's ``relo_core.c``, both applied *after* the root names were
matched by candidate search:

* :func:`types_are_compat` (TYPE_EXISTS, TYPE_SIZE, TYPE_ID_TARGET) is shallow: the same kind
  (enum and enum64 mix), integers without bit offsets, pointers/arrays/function prototypes
  compared through what they refer to; struct members are not looked at.
* :func:`types_match` (TYPE_MATCHES) is deep: every local member must exist by name in the
  target with a matching type (only names and kinds behind a pointer), integer size and
  signedness must agree, array lengths must agree, every local enumerator must exist.
"""

from __future__ import annotations

from pybpf.btf.btf import Btf
from pybpf.btf.types import (
    BtfArray,
    BtfEnum,
    BtfEnum64,
    BtfFuncProto,
    BtfFwd,
    BtfInt,
    BtfKind,
    BtfPtr,
    IntEncoding,
)
from pybpf.core.btfutil import (
    AnyEnum,
    Composite,
    SpecError,
    kind_of,
    kinds_compatible,
    skip_mods_and_typedefs,
    type_or_none,
)
from pybpf.core.names import names_match

MAX_DEPTH = 32
"""libbpf's recursion limits: deeper type graphs are refused as probably cyclic."""

_SHALLOW_OK = frozenset({
    BtfKind.UNKN,
    BtfKind.STRUCT,
    BtfKind.UNION,
    BtfKind.ENUM,
    BtfKind.ENUM64,
    BtfKind.FWD,
})


def types_are_compat(
    local_btf: Btf, local_id: int, targ_btf: Btf, targ_id: int, level: int = MAX_DEPTH
) -> bool:
    """libbpf's ``bpf_core_types_are_compat``."""
    if not kinds_compatible(type_or_none(local_btf, local_id), type_or_none(targ_btf, targ_id)):
        return False
    for _ in range(MAX_DEPTH):
        local_id, lt = skip_mods_and_typedefs(local_btf, local_id)
        targ_id, tt = skip_mods_and_typedefs(targ_btf, targ_id)
        if not kinds_compatible(lt, tt):
            return False
        kind = kind_of(lt)
        if kind in _SHALLOW_OK:
            return True
        if isinstance(lt, BtfInt):
            assert isinstance(tt, BtfInt)
            return lt.bits_offset == 0 and tt.bits_offset == 0
        if isinstance(lt, BtfPtr):
            assert isinstance(tt, BtfPtr)
            local_id, targ_id = lt.type, tt.type
            continue
        if isinstance(lt, BtfArray):
            assert isinstance(tt, BtfArray)
            local_id, targ_id = lt.type, tt.type
            continue
        if isinstance(lt, BtfFuncProto):
            assert isinstance(tt, BtfFuncProto)
            if len(lt.params) != len(tt.params):
                return False
            for lp, tp in zip(lt.params, tt.params, strict=True):
                if level <= 0:
                    raise SpecError("function prototypes nested too deeply")
                lp_id, _ = skip_mods_and_typedefs(local_btf, lp.type)
                tp_id, _ = skip_mods_and_typedefs(targ_btf, tp.type)
                if not types_are_compat(local_btf, lp_id, targ_btf, tp_id, level - 1):
                    return False
            local_id, _ = skip_mods_and_typedefs(local_btf, lt.return_type)
            targ_id, _ = skip_mods_and_typedefs(targ_btf, tt.return_type)
            continue
        return False
    raise SpecError("type chain too deep while checking compatibility")


def _enums_match(lt: AnyEnum, tt: AnyEnum) -> bool:
    if lt.size != tt.size or len(lt.values) > len(tt.values):
        return False
    return all(any(names_match(lv.name, tv.name) for tv in tt.values) for lv in lt.values)


def _composites_match(
    local_btf: Btf, lt: Composite, targ_btf: Btf, tt: Composite, behind_ptr: bool, level: int
) -> bool:
    if len(lt.members) > len(tt.members):
        return False
    for lm in lt.members:
        for tm in tt.members:
            if not names_match(lm.name, tm.name):
                continue
            if types_match(local_btf, lm.type, targ_btf, tm.type, behind_ptr, level - 1):
                break
        else:
            return False
    return True


def types_match(
    local_btf: Btf,
    local_id: int,
    targ_btf: Btf,
    targ_id: int,
    behind_ptr: bool = False,
    level: int = MAX_DEPTH,
) -> bool:
    """libbpf's ``__bpf_core_types_match``."""
    if level <= 0:
        raise SpecError("types nested too deeply while matching")
    for _ in range(MAX_DEPTH):
        local_id, lt = skip_mods_and_typedefs(local_btf, local_id)
        targ_id, tt = skip_mods_and_typedefs(targ_btf, targ_id)
        if not names_match(lt.name if lt is not None else "", tt.name if tt is not None else ""):
            return False
        lk, tk = kind_of(lt), kind_of(tt)
        if lt is None:
            return lk == tk
        if isinstance(lt, BtfFwd):
            if behind_ptr:
                if isinstance(tt, BtfFwd):
                    return lt.is_union == tt.is_union
                return (tk == BtfKind.STRUCT and not lt.is_union) or (
                    tk == BtfKind.UNION and lt.is_union
                )
            return isinstance(tt, BtfFwd) and lt.is_union == tt.is_union
        if isinstance(lt, BtfEnum | BtfEnum64):
            return isinstance(tt, BtfEnum | BtfEnum64) and _enums_match(lt, tt)
        if isinstance(lt, Composite):
            if behind_ptr:
                if lk == tk:
                    return True
                if not isinstance(tt, BtfFwd):
                    return False
                return (lk == BtfKind.UNION) == tt.is_union
            if lk != tk:
                return False
            assert isinstance(tt, Composite)
            return _composites_match(local_btf, lt, targ_btf, tt, behind_ptr, level)
        if isinstance(lt, BtfInt):
            if not isinstance(tt, BtfInt):
                return False
            signed = IntEncoding.SIGNED
            return lt.size == tt.size and (lt.encoding & signed) == (tt.encoding & signed)
        if isinstance(lt, BtfPtr):
            if not isinstance(tt, BtfPtr):
                return False
            behind_ptr = True
            local_id, targ_id = lt.type, tt.type
            continue
        if isinstance(lt, BtfArray):
            if not isinstance(tt, BtfArray) or lt.nelems != tt.nelems:
                return False
            local_id, targ_id = lt.type, tt.type
            continue
        if isinstance(lt, BtfFuncProto):
            if not isinstance(tt, BtfFuncProto) or len(lt.params) != len(tt.params):
                return False
            for lp, tp in zip(lt.params, tt.params, strict=True):
                if not types_match(local_btf, lp.type, targ_btf, tp.type, behind_ptr, level - 1):
                    return False
            local_id, targ_id = lt.return_type, tt.return_type
            continue
        return False
    raise SpecError("type chain too deep while matching")
