"""Access specs: what a relocation reaches, in the object's BTF and in a candidate's.

clang records a field access such as ``&p->a.b[3]`` as a root type and a raw access string
(``"0:1:0:3"``): one index per step, member indices through structs (anonymous ones too) and
element indices through arrays.  The *high-level* spec keeps only the steps that mean
something across kernels: the initial pointer index, each *named* member and each array
index.  Matching a local spec against a candidate walks the candidate by member *name*, so
a field may move, or gain an anonymous wrapper, and still be found.  The result carries the
target's raw path (``bpftool gen min_core_btf`` needs it) and bit offset.

This module follows the semantics of libbpf's ``bpf_core_parse_spec`` /
``bpf_core_spec_match``; on every input where libbpf succeeds it must find the same target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pybpf.btf.btf import Btf
from pybpf.btf.ext import CoreRelo, CoreReloKind
from pybpf.btf.types import BtfArray, BtfEnum, BtfEnum64, BtfFloat, BtfFwd, BtfInt, BtfPtr
from pybpf.core.btfutil import (
    AnyEnum,
    Composite,
    SpecError,
    kinds_compatible,
    resolve_size,
    skip_mods_and_typedefs,
)
from pybpf.core.compat import types_are_compat, types_match
from pybpf.core.names import essential_name, essential_name_len

SPEC_MAX_LEN = 64
"""libbpf's ``BPF_CORE_SPEC_MAX_LEN``: deeper nesting is refused rather than walked."""

TYPE_BASED = frozenset({
    CoreReloKind.TYPE_ID_LOCAL,
    CoreReloKind.TYPE_ID_TARGET,
    CoreReloKind.TYPE_EXISTS,
    CoreReloKind.TYPE_MATCHES,
    CoreReloKind.TYPE_SIZE,
})


@dataclass(slots=True)
class Accessor:
    """One high-level step: member ``idx`` of composite ``type_id`` (named), or element ``idx``
    of an array whose element type is ``type_id`` (``name`` is ``None``)."""

    type_id: int
    idx: int
    name: str | None = None


@dataclass(slots=True)
class Spec:
    """A relocation's path through one BTF: high-level accessors, raw indices, bit offset."""

    btf: Btf
    root_type_id: int
    kind: CoreReloKind
    accessors: list[Accessor] = field(default_factory=list)
    raw: list[int] = field(default_factory=list)
    bit_offset: int = 0


def _is_flex_array(btf: Btf, last: Accessor, array: BtfArray) -> bool:
    """A zero-length array that is the last member of its struct may be indexed past its end."""
    if last.name is None or array.nelems > 0:
        return False
    owner = btf[last.type_id]
    assert isinstance(owner, Composite)
    return last.idx == len(owner.members) - 1


def parse_spec(btf: Btf, relo: CoreRelo) -> Spec:
    """The local spec of ``relo``: validate its access string against the object's BTF."""
    spec = Spec(btf, relo.type_id, relo.kind)
    access = relo.access_str
    if not access or access.startswith(":"):
        raise SpecError(f"empty or malformed access string {access!r}")
    if relo.kind in TYPE_BASED:
        if access != "0":
            raise SpecError(f"type relocation with access string {access!r}, expected '0'")
        return spec
    try:
        raw = [int(part) for part in access.split(":")]
    except ValueError:
        raise SpecError(f"malformed access string {access!r}") from None
    if len(raw) > SPEC_MAX_LEN:
        raise SpecError(f"access string {access!r} deeper than {SPEC_MAX_LEN} levels")
    spec.raw = raw
    type_id, t = skip_mods_and_typedefs(btf, relo.type_id)
    first = Accessor(type_id, raw[0])
    spec.accessors.append(first)

    if relo.kind.is_enumval_based:
        if not isinstance(t, AnyEnum) or len(raw) > 1 or raw[0] >= len(t.values):
            raise SpecError(f"enum value access {access!r} does not name an enumerator")
        first.name = t.values[raw[0]].name
        return spec

    spec.bit_offset = raw[0] * resolve_size(btf, type_id) * 8
    for i, idx in enumerate(raw[1:], 1):
        type_id, t = skip_mods_and_typedefs(btf, type_id)
        if isinstance(t, Composite):
            if idx >= len(t.members):
                raise SpecError(f"member index {idx} out of range for [{type_id}] '{t.name}'")
            member = t.members[idx]
            spec.bit_offset += member.offset
            if member.name:
                spec.accessors.append(Accessor(type_id, idx, member.name))
            type_id = member.type
        elif isinstance(t, BtfArray):
            elem_id, _ = skip_mods_and_typedefs(btf, t.type)
            flex = _is_flex_array(btf, spec.accessors[-1], t)
            if not flex and idx >= t.nelems:
                raise SpecError(f"array index {idx} out of range ({t.nelems} elements)")
            spec.accessors.append(Accessor(elem_id, idx))
            spec.bit_offset += idx * resolve_size(btf, elem_id) * 8
            type_id = elem_id
        else:
            kind = t.kind.name if t is not None else "void"
            raise SpecError(
                f"access {access!r} (at index {i}) captures type [{type_id}] of unexpected "
                f"kind {kind}"
            )
    return spec


def fields_are_compat(local_btf: Btf, local_id: int, targ_btf: Btf, targ_id: int) -> bool:
    """Whether a field of type ``local_id`` may be read as a kernel field of type ``targ_id``.

    Loose on purpose (libbpf's ``bpf_core_fields_are_compat``): integer sizes and signedness
    may differ (load sizes are adjusted later), any pointers match, structs and unions mix,
    enums and forward declarations need the same essential name unless one is anonymous.
    """
    while True:
        local_id, lt = skip_mods_and_typedefs(local_btf, local_id)
        targ_id, tt = skip_mods_and_typedefs(targ_btf, targ_id)
        if isinstance(lt, Composite) and isinstance(tt, Composite):
            return True
        if not kinds_compatible(lt, tt):
            return False
        if isinstance(lt, BtfPtr | BtfFloat):
            return True
        if isinstance(lt, BtfFwd | BtfEnum | BtfEnum64):
            assert tt is not None
            local_len = essential_name_len(lt.name)
            targ_len = essential_name_len(tt.name)
            return (
                local_len == 0
                or targ_len == 0
                or (local_len == targ_len and lt.name[:local_len] == tt.name[:targ_len])
            )
        if isinstance(lt, BtfInt):
            assert isinstance(tt, BtfInt)
            return lt.bits_offset == 0 and tt.bits_offset == 0
        if isinstance(lt, BtfArray):
            assert isinstance(tt, BtfArray)
            local_id, targ_id = lt.type, tt.type
            continue
        return False


def _match_member(
    local_btf: Btf, local_acc: Accessor, targ_btf: Btf, targ_id: int, spec: Spec
) -> tuple[bool, int]:
    """Find the member named like ``local_acc`` in composite ``targ_id``, looking inside
    anonymous members; extend ``spec`` with the path.  Returns (found, member type id)."""
    targ_id, tt = skip_mods_and_typedefs(targ_btf, targ_id)
    if not isinstance(tt, Composite):
        return False, 0
    local_t = local_btf[local_acc.type_id]
    assert isinstance(local_t, Composite)
    local_member = local_t.members[local_acc.idx]
    for i, member in enumerate(tt.members):
        if len(spec.raw) == SPEC_MAX_LEN:
            raise SpecError(f"target path deeper than {SPEC_MAX_LEN} levels")
        spec.bit_offset += member.offset
        spec.raw.append(i)
        if not member.name:
            found, next_id = _match_member(local_btf, local_acc, targ_btf, member.type, spec)
            if found:
                return True, next_id
        elif member.name == local_member.name:
            spec.accessors.append(Accessor(targ_id, i, member.name))
            if fields_are_compat(local_btf, local_member.type, targ_btf, member.type):
                return True, member.type
            spec.accessors.pop()
            return False, member.type
        spec.bit_offset -= member.offset
        spec.raw.pop()
    return False, 0


def match_spec(local: Spec, targ_btf: Btf, targ_id: int) -> Spec | None:
    """The target spec of ``local`` in candidate ``targ_id``, or ``None`` if it does not match."""
    targ = Spec(targ_btf, targ_id, local.kind)
    if local.kind in TYPE_BASED:
        if local.kind == CoreReloKind.TYPE_MATCHES:
            ok = types_match(local.btf, local.root_type_id, targ_btf, targ_id)
        else:
            ok = types_are_compat(local.btf, local.root_type_id, targ_btf, targ_id)
        return targ if ok else None

    if local.kind.is_enumval_based:
        targ_id, tt = skip_mods_and_typedefs(targ_btf, targ_id)
        if not isinstance(tt, AnyEnum):
            return None
        wanted = local.accessors[0].name
        assert wanted is not None
        essential = essential_name(wanted)
        for i, value in enumerate(tt.values):
            if essential_name(value.name) == essential:
                targ.accessors.append(Accessor(targ_id, i, value.name))
                targ.raw.append(i)
                return targ
        return None

    for i, local_acc in enumerate(local.accessors):
        targ_id, tt = skip_mods_and_typedefs(targ_btf, targ_id)
        if local_acc.name is not None:
            found, targ_id = _match_member(local.btf, local_acc, targ_btf, targ_id, targ)
            if not found:
                return None
            continue
        if i > 0:
            if not isinstance(tt, BtfArray):
                return None
            flex = _is_flex_array(targ_btf, targ.accessors[-1], tt)
            if not flex and local_acc.idx >= tt.nelems:
                return None
            targ_id, _ = skip_mods_and_typedefs(targ_btf, tt.type)
        if len(targ.raw) == SPEC_MAX_LEN:
            raise SpecError(f"target path deeper than {SPEC_MAX_LEN} levels")
        targ.accessors.append(Accessor(targ_id, local_acc.idx))
        targ.raw.append(local_acc.idx)
        targ.bit_offset += local_acc.idx * resolve_size(targ_btf, targ_id) * 8
    return targ
