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
    BtfKind,
    BtfStruct,
    BtfType,
    BtfUnion,
    BtfVar,
    FuncLinkage,
    IntEncoding,
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


def _struct(t: BtfStruct | BtfUnion) -> str:
    lines = [f" size={t.size} vlen={len(t.members)}"]
    for m in t.members:
        line = f"\t'{_name(m.name)}' type_id={m.type} bits_offset={m.offset}"
        if m.bitfield_size:
            line += f" bitfield_size={m.bitfield_size}"
        lines.append(line)
    return "\n".join(lines)


def _body(btf: Btf, t: BtfType) -> str:
    """Everything bpftool prints after ``[id] KIND 'name'`` (no trailing newline)."""
    if isinstance(t, BtfStruct | BtfUnion):
        return _struct(t)
    if isinstance(t, BtfFuncProto):
        parts = [f" ret_type_id={t.return_type} vlen={len(t.params)}"]
        parts.extend(f"\t'{_name(p.name)}' type_id={p.type}" for p in t.params)
        return "\n".join(parts)
    if isinstance(t, BtfFunc):
        return f" type_id={t.type} linkage={_FUNC_LINKAGE[t.linkage]}"
    if isinstance(t, BtfInt):
        encoding = _INT_ENCODING.get(t.encoding, "UNKN")
        return f" size={t.size} bits_offset={t.bits_offset} nr_bits={t.nr_bits} encoding={encoding}"
    if isinstance(t, BtfArray):
        return f" type_id={t.type} index_type_id={t.index_type} nr_elems={t.nelems}"
    if isinstance(t, BtfEnum | BtfEnum64):
        suffix = "" if isinstance(t, BtfEnum) else ("LL" if t.signed else "ULL")
        parts = [
            f" encoding={'SIGNED' if t.signed else 'UNSIGNED'} size={t.size} vlen={len(t.values)}"
        ]
        parts.extend(f"\t'{_name(v.name)}' val={v.value}{suffix}" for v in t.values)
        return "\n".join(parts)
    if isinstance(t, BtfFwd):
        return f" fwd_kind={'union' if t.is_union else 'struct'}"
    if isinstance(t, BtfVar):
        return f" type_id={t.type}, linkage={_VAR_LINKAGE[t.linkage]}"
    if isinstance(t, BtfDatasec):
        parts = [f" size={t.size} vlen={len(t.vars)}"]
        for v in t.vars:
            # Type ids are range-checked when the DATASEC is decoded, so bpftool's
            # "print the target only if the id is valid" condition always holds here.
            target = f"{_KIND_NAME[btf.kind_of(v.type)]} '{_name(btf.name_of(v.type))}'"
            parts.append(f"\ttype_id={v.type} offset={v.offset} size={v.size} ({target})")
        return "\n".join(parts)
    if isinstance(t, BtfFloat):
        return f" size={t.size}"
    if isinstance(t, BtfDeclTag):
        return f" type_id={t.type} component_idx={t.component_idx}"
    # PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG: a reference and nothing else.
    return f" type_id={t.type}"


def dump_raw_records(btf: Btf) -> list[str]:
    """One string per type, each exactly one bpftool record without its final newline."""
    lines: list[str] = []
    append = lines.append
    kind_name: Callable[[BtfKind], str] = _KIND_NAME.__getitem__
    for type_id in btf.type_ids():
        t = btf[type_id]
        append(f"[{type_id}] {kind_name(t.kind)} '{_name(t.name)}'{_body(btf, t)}")
    return lines


def dump_raw(btf: Btf) -> str:
    """The text ``bpftool btf dump file F`` prints for ``btf`` (format raw)."""
    lines = dump_raw_records(btf)
    if not lines:
        return ""
    return "\n".join(lines) + "\n"
