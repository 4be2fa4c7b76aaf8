"""Global variables: where each DATASEC VAR really lives in its section.

Clang writes a DATASEC per global-data section; the linker (ours or libbpf's) writes the VAR
offsets.  Two sources can disagree: bpftool 7.1's linker leaves a weak variable's DATASEC
entry at the weak copy's offset after a strong definition wins, while the ELF symbol moves.
The symbol table is what instructions are relocated against, so it is the truth here, as in
libbpf's ``btf_fixup_datasec()`` for objects whose DATASEC was never filled in.

Like libbpf, a global with hidden visibility counts as static: it is not part of the
object's interface, so skeletons must not expose it and it does not make its map mmapable.
"""

from __future__ import annotations

from collections.abc import Mapping

from pybpf.btf.types import BtfDatasec, BtfKind, BtfVar, BtfVarSecInfo, VarLinkage
from pybpf.elf import Symbol, SymbolType
from pybpf.obj.context import ParseContext
from pybpf.obj.specs import VarSpec


def _var_symbol(ctx: ParseContext, name: str, section_index: int) -> Symbol | None:
    """The ELF symbol of a global variable: in its own section if possible (libbpf matches by
    name alone, which picks the wrong one when a section symbol shares the name)."""
    fallback: Symbol | None = None
    for sym in ctx.elf.symbols:
        if sym.type != SymbolType.STT_OBJECT or not sym.is_global or sym.name != name:
            continue
        if sym.shndx == section_index:
            return sym
        fallback = fallback or sym
    return fallback


def placed(ctx: ParseContext, datasec: BtfDatasec, section_index: int) -> list[BtfVarSecInfo]:
    """The DATASEC's entries with offsets taken from the ELF symbols of global VARs.

    Clang leaves DATASEC offsets zero in object files, and a buggy linker may leave them
    stale; libbpf fills them from the symbol table, and so do we (always, not only when the
    DATASEC size is zero, since the symbol is what relocations use).
    """
    if ctx.btf is None:
        return list(datasec.vars)
    result: list[BtfVarSecInfo] = []
    for info in datasec.vars:
        var = ctx.btf[info.type]
        if isinstance(var, BtfVar) and var.linkage is VarLinkage.GLOBAL_ALLOCATED:
            sym = _var_symbol(ctx, var.name, section_index)
            if sym is None:
                # Nothing in the object refers to a VAR without its symbol, and a linker
                # places the VAR by that symbol: libbpf refuses it too ("failed to find
                # symbol for variable").
                raise ctx.error(
                    f"DATASEC '{datasec.name}': variable '{var.name}' has no ELF symbol",
                    section=".BTF",
                )
            info = BtfVarSecInfo(info.type, sym.value, info.size or sym.size)
        result.append(info)
    return result


def _static_symbol(ctx: ParseContext, name: str, section_index: int) -> Symbol | None:
    found = [
        s
        for s in ctx.elf.symbols
        if s.name == name and s.shndx == section_index and s.type == SymbolType.STT_OBJECT
        and not s.is_global
    ]
    return found[0] if len(found) == 1 else None


def section_variables(
    ctx: ParseContext,
    section_name: str,
    section_index: int,
    section_size: int,
    datasec: BtfDatasec,
) -> list[VarSpec]:
    """The VARs of one data section's DATASEC, placed by the symbol table, sorted by offset."""
    btf = ctx.need_btf(f"DATASEC {section_name}", section_name)
    result: list[VarSpec] = []
    for info in datasec.vars:
        var = btf[info.type]
        if not isinstance(var, BtfVar):
            raise ctx.error(
                f"DATASEC entry type #{info.type} is a {var.kind.name}, expected VAR",
                section=section_name,
            )
        linkage = var.linkage
        offset = info.offset
        size = info.size
        weak = False
        if linkage in (VarLinkage.GLOBAL_ALLOCATED, VarLinkage.GLOBAL_EXTERN):
            sym = _var_symbol(ctx, var.name, section_index)
            if sym is not None and linkage is VarLinkage.GLOBAL_ALLOCATED:
                offset = sym.value
                size = sym.size or size
                weak = sym.is_weak
                if sym.is_hidden:
                    linkage = VarLinkage.STATIC
        elif datasec.size == 0:
            sym = _static_symbol(ctx, var.name, section_index)
            if sym is not None:
                offset, size = sym.value, sym.size or size
        if size == 0:
            size = btf.size_of(var.type)
        if offset < 0 or offset + size > section_size:
            raise ctx.error(
                f"variable '{var.name}' ({size} bytes at {offset}) lies outside the section "
                f"({section_size} bytes)",
                section=section_name,
                offset=offset,
            )
        result.append(
            VarSpec(var.name, section_name, offset, size, var.type, linkage, weak, info.type)
        )
    result.sort(key=lambda v: (v.offset, v.name))
    return result


def datasec_placements(
    ctx: ParseContext, placed_offsets: Mapping[int, int]
) -> dict[int, tuple[BtfVarSecInfo, ...]]:
    """Every DATASEC's entries, in DATASEC order, at the offsets the object really uses.

    ``placed_offsets`` maps a VAR's type id to the offset the rest of the parse settled on:
    global-data variables and ``.maps`` definitions at their ELF symbols, kconfig externs at
    their slot in the ``.kconfig`` map.  Any other global VAR (those of ``.struct_ops`` or of
    a section pybpf has no map for) sits at its ELF symbol when that symbol is in the section
    the DATASEC names, else where the DATASEC says.  Sizes stay the DATASEC's.  Skeleton
    generators and the kernel-BTF fix-up both read this one answer.
    """
    btf = ctx.btf
    result: dict[int, tuple[BtfVarSecInfo, ...]] = {}
    if btf is None:
        return result
    for type_id in btf.type_ids():
        if btf.kind_of(type_id) != BtfKind.DATASEC:
            continue
        datasec = ctx.datasec_at(type_id)
        section = ctx.elf.section(datasec.name)
        entries: list[BtfVarSecInfo] = []
        for info in datasec.vars:
            offset = placed_offsets.get(info.type)
            var = btf[info.type]
            if (
                offset is None
                and section is not None
                and isinstance(var, BtfVar)
                and var.linkage is VarLinkage.GLOBAL_ALLOCATED
            ):
                sym = _var_symbol(ctx, var.name, section.index)
                if sym is not None and sym.shndx == section.index:
                    offset = sym.value
            entries.append(info if offset is None else BtfVarSecInfo(info.type, offset, info.size))
        result[type_id] = tuple(entries)
    return result
