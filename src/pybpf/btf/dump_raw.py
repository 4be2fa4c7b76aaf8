"""The raw text dump of BTF, identical byte for byte to ``bpftool btf dump file F`` (bpftool 7.1).

Why byte-identical: the raw dump is the lingua franca of BTF debugging.  People diff it against
bpftool's output, paste it into bug reports and keep it as golden files; any difference in
spacing or quoting would make our dump useless for that.  The formats below follow
``dump_btf_type()`` in bpftool 7.1's ``src/btf.c``, quirks included (the comma after a VAR's
``type_id``, ``ULL``/``LL`` suffixes on ENUM64 values, ``(anon)`` for every empty name).

Split BTF (kernel modules) dumps only its own types, numbered from its ``start_id``, just as
bpftool does with ``-B base``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pybpf.btf.btf import Btf
from pybpf.btf.types import (
    BtfArray,
    BtfConst,
    BtfDatasec,
    BtfDeclTag,
    BtfEnum,
    BtfEnum64,
    BtfFloat,
    BtfFunc,
    BtfFuncProto,
    BtfFwd,
    BtfInt,
    BtfKind,
    BtfPtr,
    BtfRestrict,
    BtfStruct,
    BtfTypedef,
    BtfTypeTag,
    BtfUnion,
    BtfVar,
    BtfVolatile,
    FuncLinkage,
    IntEncoding,
    Modifier,
    VarLinkage,
)

_INT_ENCODING: dict[int, str] = {
    IntEncoding.NONE: "(none)",
    IntEncoding.SIGNED: "SIGNED",
    IntEncoding.CHAR: "CHAR",
    IntEncoding.BOOL: "BOOL",
}
"""bpftool names a single encoding bit; any combination of bits prints as ``UNKN``."""

_FUNC_LINKAGE = {
    FuncLinkage.STATIC: "static",
    FuncLinkage.GLOBAL: "global",
    FuncLinkage.EXTERN: "extern",
}
_VAR_LINKAGE = {
    VarLinkage.STATIC: "static",
    VarLinkage.GLOBAL_ALLOCATED: "global",
    VarLinkage.GLOBAL_EXTERN: "extern",
}
_KIND_NAME = {kind: ("UNKNOWN" if kind == BtfKind.UNKN else kind.name) for kind in BtfKind}


def _name(name: str) -> str:
    """bpftool prints ``(anon)`` for a zero name offset, which is how every empty name is stored."""
    return name or "(anon)"


def _struct(btf: Btf, t: BtfStruct | BtfUnion) -> str:
    lines = [f" size={t.size} vlen={len(t.members)}"]
    append = lines.append
    for m in t.members:
        if m.bitfield_size:
            append(
                f"\t'{m.name or '(anon)'}' type_id={m.type} bits_offset={m.offset}"
                f" bitfield_size={m.bitfield_size}"
            )
        else:
            append(f"\t'{m.name or '(anon)'}' type_id={m.type} bits_offset={m.offset}")
    return "\n".join(lines)


def _func_proto(btf: Btf, t: BtfFuncProto) -> str:
    lines = [f" ret_type_id={t.return_type} vlen={len(t.params)}"]
    lines.extend([f"\t'{p.name or '(anon)'}' type_id={p.type}" for p in t.params])
    return "\n".join(lines)


def _func(btf: Btf, t: BtfFunc) -> str:
    return f" type_id={t.type} linkage={_FUNC_LINKAGE[t.linkage]}"


def _int(btf: Btf, t: BtfInt) -> str:
    encoding = _INT_ENCODING.get(t.encoding, "UNKN")
    return f" size={t.size} bits_offset={t.bits_offset} nr_bits={t.nr_bits} encoding={encoding}"


def _array(btf: Btf, t: BtfArray) -> str:
    return f" type_id={t.type} index_type_id={t.index_type} nr_elems={t.nelems}"


def _enum(btf: Btf, t: BtfEnum | BtfEnum64) -> str:
    suffix = "" if isinstance(t, BtfEnum) else ("LL" if t.signed else "ULL")
    lines = [f" encoding={'SIGNED' if t.signed else 'UNSIGNED'} size={t.size} vlen={len(t.values)}"]
    lines.extend([f"\t'{v.name or '(anon)'}' val={v.value}{suffix}" for v in t.values])
    return "\n".join(lines)


def _fwd(btf: Btf, t: BtfFwd) -> str:
    return f" fwd_kind={'union' if t.is_union else 'struct'}"


def _var(btf: Btf, t: BtfVar) -> str:
    return f" type_id={t.type}, linkage={_VAR_LINKAGE[t.linkage]}"


def _datasec(btf: Btf, t: BtfDatasec) -> str:
    lines = [f" size={t.size} vlen={len(t.vars)}"]
    for v in t.vars:
        # Type ids are range-checked when the DATASEC is decoded, so bpftool's
        # "print the target only if the id is valid" condition always holds here.
        target = f"{_KIND_NAME[btf.kind_of(v.type)]} '{_name(btf.name_of(v.type))}'"
        lines.append(f"\ttype_id={v.type} offset={v.offset} size={v.size} ({target})")
    return "\n".join(lines)


def _float(btf: Btf, t: BtfFloat) -> str:
    return f" size={t.size}"


def _decl_tag(btf: Btf, t: BtfDeclTag) -> str:
    return f" type_id={t.type} component_idx={t.component_idx}"


def _reference(btf: Btf, t: BtfPtr | BtfTypedef | Modifier) -> str:
    """PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG: a reference and nothing else."""
    return f" type_id={t.type}"


_BODY: dict[type, Callable[[Btf, Any], str]] = {
    BtfStruct: _struct,
    BtfUnion: _struct,
    BtfFuncProto: _func_proto,
    BtfFunc: _func,
    BtfInt: _int,
    BtfArray: _array,
    BtfEnum: _enum,
    BtfEnum64: _enum,
    BtfFwd: _fwd,
    BtfVar: _var,
    BtfDatasec: _datasec,
    BtfFloat: _float,
    BtfDeclTag: _decl_tag,
    BtfPtr: _reference,
    BtfTypedef: _reference,
    BtfVolatile: _reference,
    BtfConst: _reference,
    BtfRestrict: _reference,
    BtfTypeTag: _reference,
}
"""The formatter of each kind's tail, found by the type's class: one dict lookup per record
instead of a chain of ``isinstance`` tests (this runs 127,000 times for vmlinux)."""


def dump_raw_records(btf: Btf) -> list[str]:
    """One string per type, each exactly one bpftool record without its final newline."""
    btf.validate()  # decodes in id order, as this loop would, with strings converted in bulk
    types = btf.types_by_id
    body = _BODY.__getitem__
    kind_name = _KIND_NAME
    lines: list[str] = []
    append = lines.append
    for type_id in btf.type_ids():
        t = types[type_id]
        tail = body(type(t))(btf, t)
        append(f"[{type_id}] {kind_name[t.kind]} '{t.name or '(anon)'}'{tail}")
    return lines


def dump_raw(btf: Btf) -> str:
    """The text ``bpftool btf dump file F`` prints for ``btf`` (format raw)."""
    lines = dump_raw_records(btf)
    if not lines:
        return ""
    return "\n".join(lines) + "\n"
