"""Externs: undefined symbols, classified by the BTF DATASEC they were declared in.

``extern ... __kconfig`` lands in DATASEC ``.kconfig`` and gets a slot in the ``.kconfig``
map, laid out as libbpf lays it out (sorted by alignment, then size, then name, so that the
map has no needless padding); ``extern ... __ksym`` lands in ``.ksyms`` and is resolved
against kernel BTF at load.  libbpf refuses any other extern at open; pybpf records them as
``VAR``/``MAP``/``FUNC`` instead, because a library object legitimately has externs that a
static link resolves, and the linker and ``object show`` read such objects too.  The loader
must refuse them.
"""

from __future__ import annotations

from dataclasses import replace

from pybpf.abi.sections import BTF, KCONFIG, KSYMS, MAPS
from pybpf.btf import Btf
from pybpf.btf.types import (
    BtfArray,
    BtfEnum,
    BtfEnum64,
    BtfFunc,
    BtfInt,
    BtfKind,
    BtfVar,
    FuncLinkage,
    IntEncoding,
    VarLinkage,
)
from pybpf.elf import SymbolBinding, SymbolType
from pybpf.obj.context import ParseContext
from pybpf.obj.specs import ExternKind, ExternSpec, KcfgType

SHN_UNDEF = 0


def _kcfg_type(btf: Btf, type_id: int) -> tuple[KcfgType | None, bool]:
    """libbpf's ``find_kcfg_type()``: which kernel-config value types the C type can hold."""
    t = btf[btf.resolve(type_id)] if type_id else None
    if isinstance(t, BtfInt):
        if t.encoding & IntEncoding.BOOL:
            return (KcfgType.BOOL if t.size == 1 else None), False
        signed = bool(t.encoding & IntEncoding.SIGNED)
        if t.size == 1:
            return KcfgType.CHAR, signed
        if t.size not in (2, 4, 8):
            return None, signed
        return KcfgType.INT, signed
    if isinstance(t, BtfEnum | BtfEnum64):
        if t.name != "libbpf_tristate" or (isinstance(t, BtfEnum) and t.size != 4):
            return None, False
        return KcfgType.TRISTATE, False
    if isinstance(t, BtfArray):
        if t.nelems == 0 or _kcfg_type(btf, t.type)[0] is not KcfgType.CHAR:
            return None, False
        return KcfgType.CHAR_ARR, False
    return None, False


def _btf_of_extern(ctx: ParseContext, name: str) -> tuple[int, BtfVar | BtfFunc]:
    """libbpf's ``find_extern_btf_id()``: the first VAR or FUNC called ``name``."""
    btf = ctx.need_btf(f"extern '{name}'", ".symtab")
    for type_id in btf.find(name):
        t = btf[type_id]
        if isinstance(t, BtfVar):
            if t.linkage is not VarLinkage.GLOBAL_EXTERN:
                raise ctx.error(f"extern '{name}': BTF VAR #{type_id} is not extern",
                                section=BTF)
            return type_id, t
        if isinstance(t, BtfFunc):
            if t.linkage is not FuncLinkage.EXTERN:
                raise ctx.error(f"extern '{name}': BTF FUNC #{type_id} is not extern",
                                section=BTF)
            return type_id, t
    raise ctx.error(f"extern '{name}' has no BTF VAR or FUNC", section=BTF)


def _datasec_index(ctx: ParseContext, btf: Btf) -> dict[int, str]:
    """Which DATASEC each VAR/FUNC id is listed in (the first one, as libbpf searches)."""
    index: dict[int, str] = {}
    for sec_id in btf.type_ids():
        if btf.kind_of(sec_id) != BtfKind.DATASEC:
            continue
        t = ctx.datasec_at(sec_id)
        for v in t.vars:
            index.setdefault(v.type, t.name)
    return index


def _kind_order(e: ExternSpec) -> tuple[int, int, int, str]:
    """libbpf's ``cmp_externs()``: kconfig first (by alignment down, size up), then the rest."""
    if e.kind is ExternKind.KCONFIG:
        return (0, -e.align, e.size, e.name)
    return (1, 0, 0, e.name)


def collect_externs(ctx: ParseContext) -> list[ExternSpec]:
    """Every extern of the object, kconfig ones placed in the ``.kconfig`` map."""
    found: list[ExternSpec] = []
    sections: dict[int, str] | None = None
    for sym in ctx.elf.symbols:
        if (
            sym.shndx != SHN_UNDEF
            or sym.binding not in (SymbolBinding.STB_GLOBAL, SymbolBinding.STB_WEAK)
            or sym.type != SymbolType.STT_NOTYPE
            or not sym.name
        ):
            continue
        type_id, t = _btf_of_extern(ctx, sym.name)
        btf = ctx.need_btf("externs", ".symtab")
        if sections is None:
            sections = _datasec_index(ctx, btf)
        section = sections.get(type_id, "")
        weak = sym.is_weak
        if section == KCONFIG:
            if isinstance(t, BtfFunc):
                raise ctx.error(f"extern function '{t.name}' cannot be in {KCONFIG}",
                                section=KCONFIG)
            size = btf.size_of(t.type)
            align = btf.align_of(t.type)
            kcfg, signed = _kcfg_type(btf, t.type)
            if kcfg is None:
                raise ctx.error(f"extern (kconfig) '{t.name}': type is unsupported",
                                section=KCONFIG)
            found.append(
                ExternSpec(t.name, ExternKind.KCONFIG, type_id, weak, section, sym.index,
                           t.type, 0, size, align, kcfg, signed)
            )
        elif section == KSYMS:
            kind = ExternKind.FUNC if isinstance(t, BtfFunc) else ExternKind.KSYM
            target = t.type if kind is ExternKind.FUNC else btf.resolve(t.type)
            found.append(ExternSpec(t.name, kind, type_id, weak, section, sym.index, target))
        elif section == MAPS:
            found.append(
                ExternSpec(t.name, ExternKind.MAP, type_id, weak, section, sym.index, t.type)
            )
        else:
            kind = ExternKind.FUNC if isinstance(t, BtfFunc) else ExternKind.VAR
            found.append(ExternSpec(t.name, kind, type_id, weak, section, sym.index, t.type))
    found.sort(key=_kind_order)
    return _place_kconfig(found)


def _place_kconfig(externs: list[ExternSpec]) -> list[ExternSpec]:
    """Give each kconfig extern its offset in the ``.kconfig`` map."""
    placed: list[ExternSpec] = []
    offset = 0
    for e in externs:
        if e.kind is ExternKind.KCONFIG:
            start = -(-offset // e.align) * e.align
            offset = start + e.size
            e = replace(e, offset=start)
        placed.append(e)
    return placed


def kconfig_size(externs: list[ExternSpec]) -> int:
    """Size of the ``.kconfig`` map's value: the end of the last kconfig extern."""
    ends = [e.offset + e.size for e in externs if e.kind is ExternKind.KCONFIG]
    return max(ends, default=0)
