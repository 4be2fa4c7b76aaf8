"""What a relocated instruction should hold: the value the compiler assumed and the kernel's.

For each relocation two values are computed from the same recipe: ``orig`` from the local
spec (what clang put into the instruction, checked before patching so that a mismatch between
our reading of the object and clang's is caught instead of silently mis-patched) and ``new``
from the target spec.  A missing target gives ``0`` for existence/type questions and
*poison* for everything else (libbpf's ``-EUCLEAN``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pybpf.btf.ext import CoreReloKind
from pybpf.btf.types import BtfEnum, BtfEnum64, BtfInt, BtfPtr, IntEncoding
from pybpf.core.access_spec import Spec
from pybpf.core.btfutil import (
    AnyEnum,
    Composite,
    SpecError,
    element_size,
    resolve_size,
    skip_mods_and_typedefs,
    type_or_none,
)

U64 = (1 << 64) - 1


class _Poison(Exception):
    """The relocation cannot be satisfied: poison the instruction."""


@dataclass(slots=True)
class ReloResult:
    """libbpf's ``bpf_core_relo_res``: values to check and write, and how."""

    orig_val: int = 0
    new_val: int = 0
    poison: bool = False
    validate: bool = True
    fail_memsz_adjust: bool = False
    orig_sz: int = 0
    new_sz: int = 0
    orig_type_id: int = 0
    new_type_id: int = 0


@dataclass(slots=True)
class _Field:
    value: int
    size: int = 0
    type_id: int = 0
    validate: bool = True


def _field_value(kind: CoreReloKind, spec: Spec | None) -> _Field:
    if kind == CoreReloKind.FIELD_EXISTS:
        return _Field(1 if spec is not None else 0)
    if spec is None:
        raise _Poison
    acc = spec.accessors[-1]
    btf = spec.btf
    if acc.name is None:  # the last step is an array element
        if kind == CoreReloKind.FIELD_BYTE_OFFSET:
            return _Field(spec.bit_offset // 8, element_size(btf, acc.type_id), acc.type_id)
        if kind == CoreReloKind.FIELD_BYTE_SIZE:
            return _Field(resolve_size(btf, acc.type_id))
        raise SpecError(f"{kind.name} cannot be applied to an array element access")

    owner = btf[acc.type_id]
    assert isinstance(owner, Composite)
    member = owner.members[acc.idx]
    field_type_id, mt = skip_mods_and_typedefs(btf, member.type)
    bit_off = spec.bit_offset
    bit_sz = member.bitfield_size
    bitfield = bit_sz > 0
    if bitfield:
        byte_sz = getattr(mt, "size", 0)
        if byte_sz <= 0:
            raise SpecError(f"bitfield of unsized type [{field_type_id}]")
        byte_off = bit_off // 8 // byte_sz * byte_sz
        # the smallest aligned load holding every bit of the field
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                raise SpecError("bitfield cannot be read with a single 64-bit load")
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        byte_sz = resolve_size(btf, field_type_id)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8

    # clang and we may disagree on how to load a bitfield: only check what is unambiguous
    validate = not bitfield
    if kind == CoreReloKind.FIELD_BYTE_OFFSET:
        if bitfield:
            return _Field(byte_off, validate=validate)
        return _Field(byte_off, element_size(btf, field_type_id), field_type_id, validate)
    if kind == CoreReloKind.FIELD_BYTE_SIZE:
        return _Field(byte_sz, validate=validate)
    if kind == CoreReloKind.FIELD_SIGNED:
        signed = (isinstance(mt, AnyEnum) and mt.signed) or (
            isinstance(mt, BtfInt) and bool(mt.encoding & IntEncoding.SIGNED)
        )
        return _Field(int(signed), validate=True)
    if kind == CoreReloKind.FIELD_LSHIFT_U64:
        return _Field(64 - (bit_off + bit_sz - byte_off * 8), validate=validate)
    if kind == CoreReloKind.FIELD_RSHIFT_U64:
        return _Field(64 - bit_sz, validate=True)
    raise SpecError(f"unsupported field relocation {kind.name}")  # pragma: no cover


def _type_value(kind: CoreReloKind, spec: Spec | None) -> tuple[int, bool]:
    if spec is None:
        return 0, True
    if kind == CoreReloKind.TYPE_ID_TARGET:
        # ids change with every link: checking clang's value would be meaningless
        return spec.root_type_id, False
    if kind in (CoreReloKind.TYPE_EXISTS, CoreReloKind.TYPE_MATCHES):
        return 1, True
    if kind == CoreReloKind.TYPE_SIZE:
        return resolve_size(spec.btf, spec.root_type_id), True
    raise SpecError(f"unsupported type relocation {kind.name}")


def _enum_value(kind: CoreReloKind, spec: Spec | None) -> int:
    if kind == CoreReloKind.ENUMVAL_EXISTS:
        return 1 if spec is not None else 0
    if spec is None:
        raise _Poison
    acc = spec.accessors[0]
    t = type_or_none(spec.btf, acc.type_id)
    assert isinstance(t, BtfEnum | BtfEnum64)
    value = t.values[acc.idx].value
    if isinstance(t, BtfEnum):
        # a 32-bit enumerator is a signed 32-bit field in BTF; libbpf widens it signed
        value &= 0xFFFFFFFF
        if value & 0x80000000:
            value -= 1 << 32
    return value & U64


def calc_relo(kind: CoreReloKind, local: Spec, targ: Spec | None) -> ReloResult:
    """The result of relocating ``local`` against ``targ`` (``None``: nothing matched)."""
    res = ReloResult()
    try:
        if kind.is_field_based:
            orig = _field_value(kind, local)
            res.orig_val, res.orig_sz, res.orig_type_id = orig.value, orig.size, orig.type_id
            res.validate = orig.validate
            new = _field_value(kind, targ)
            res.new_val, res.new_sz, res.new_type_id = new.value, new.size, new.type_id
            if res.orig_sz != res.new_sz:
                assert targ is not None
                orig_t = type_or_none(local.btf, res.orig_type_id)
                new_t = type_or_none(targ.btf, res.new_type_id)
                # Only a pointer (32-bit kernels) or an unsigned integer survives a change
                # of load size; anything else would read a wrong value.
                safe = (isinstance(orig_t, BtfPtr) and isinstance(new_t, BtfPtr)) or (
                    isinstance(orig_t, BtfInt)
                    and isinstance(new_t, BtfInt)
                    and orig_t.encoding != IntEncoding.SIGNED
                    and new_t.encoding != IntEncoding.SIGNED
                )
                res.fail_memsz_adjust = not safe
        elif kind.is_enumval_based:
            res.orig_val = _enum_value(kind, local)
            res.new_val = _enum_value(kind, targ)
        else:
            res.orig_val, res.validate = _type_value(kind, local)
            res.new_val, _ = _type_value(kind, targ)
    except _Poison:
        res.poison = True
    return res
