"""Programs: the functions of code sections, their types and their relocations.

Every ``STT_FUNC`` symbol of an executable section is one function.  Functions of ``.text``
are subprograms (unless ``.text`` holds the object's only function, libbpf 1.1's rule);
functions of any other section are entry points typed by the section name.  libbpf 1.x
refuses a *static* function outside ``.text`` ("program is static and not supported"), and so
does pybpf: the verifier would see it as a separate program with no way to reach it.

Relocations are classified like ``bpf_program__record_reloc()``: a ``call`` is a subprogram
call or a kfunc call; an ``ld_imm64`` loads a map, a global variable, an extern or a
function's address.  Anything else is an error naming the file, section and offset.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

from pybpf.abi.bpf import ProgType
from pybpf.abi.insn import BPF_PSEUDO_CALL, CALL, INSN_SIZE, LD_IMM64
from pybpf.btf.ext import CoreRelo, FuncInfo, LineInfo
from pybpf.elf import Relocation, Section, Symbol, SymbolBinding, SymbolType
from pybpf.elf.constants import SHN_LORESERVE
from pybpf.obj.context import ParseContext
from pybpf.obj.section_defs import find_section_def
from pybpf.obj.specs import ExternSpec, MapKind, MapSpec, ProgramSpec, RelocKind, RelocSpec

_R = TypeVar("_R", FuncInfo, LineInfo, CoreRelo)


def _functions(ctx: ParseContext, section: Section) -> list[tuple[Symbol, bytes]]:
    """The function symbols of a code section and their instructions."""
    found: list[tuple[Symbol, bytes]] = []
    for sym in ctx.elf.symbols_in(section.index):
        if sym.type != SymbolType.STT_FUNC:
            continue
        start, size = sym.value, sym.size
        if start + size > section.size:
            raise ctx.error(f"program '{sym.name}' at offset {start} crosses the section end",
                            section=section.name, offset=start)
        if section.index != ctx.text_index and sym.binding == SymbolBinding.STB_LOCAL:
            raise ctx.error(f"program '{sym.name}' is static and not supported",
                            section=section.name, offset=start)
        if size == 0 or size % INSN_SIZE or start % INSN_SIZE:
            raise ctx.error(f"corrupted program '{sym.name}': offset {start}, size {size}",
                            section=section.name, offset=start)
        found.append((sym, section.data[start : start + size]))
    return found


def _ext_records(
    table: dict[str, tuple[_R, ...]] | None, section: str, start: int, end: int
) -> tuple[_R, ...]:
    """A function's ``.BTF.ext`` records, with ``insn_off`` relative to the function."""
    if not table:
        return ()
    return tuple(
        replace(r, insn_off=r.insn_off - start)
        for r in table.get(section, ())
        if start <= r.insn_off < end
    )


def collect_programs(ctx: ParseContext) -> list[ProgramSpec]:
    """Every function of every code section, sorted by section and offset, no relocations."""
    raw: list[tuple[Section, Symbol, bytes]] = []
    for section in ctx.code_sections:
        raw.extend((section, sym, insns) for sym, insns in _functions(ctx, section))
    raw.sort(key=lambda r: (r[0].index, r[1].value))
    for (sa, a, ia), (sb, b, _) in itertools.pairwise(raw):
        if sa.index == sb.index and a.value + len(ia) > b.value:
            raise ctx.error(f"functions '{a.name}' and '{b.name}' overlap",
                            section=sa.name, offset=b.value)
    ext = ctx.btf_ext
    programs: list[ProgramSpec] = []
    for section, sym, insns in raw:
        is_subprog = section.index == ctx.text_index and len(raw) > 1
        autoload = not section.name.startswith("?")
        sec_name = section.name.removeprefix("?")
        sec_def = None if is_subprog else find_section_def(sec_name)
        start = sym.value
        end = start + len(insns)
        programs.append(
            ProgramSpec(
                name=sym.name,
                section_name=sec_name,
                section_index=section.index,
                offset=start,
                insns=insns,
                prog_type=sec_def.prog_type if sec_def else ProgType.UNSPEC,
                expected_attach_type=sec_def.expected_attach_type if sec_def else None,
                attach_target=sec_def.attach_target(sec_name) if sec_def else "",
                sec_def=sec_def,
                is_global=sym.is_global,
                is_subprog=is_subprog,
                autoload=autoload,
                is_hidden=sym.is_global and sym.is_hidden,
                func_info=_ext_records(ext.func_info if ext else None, section.name, start, end),
                line_info=_ext_records(ext.line_info if ext else None, section.name, start, end),
                core_relos=_ext_records(ext.core_relos if ext else None, section.name, start, end),
            )
        )
    return programs


class _Relocator:
    """Classifies the relocations of code sections (libbpf's ``bpf_program__record_reloc``)."""

    def __init__(
        self,
        ctx: ParseContext,
        programs: Sequence[ProgramSpec],
        maps: Sequence[MapSpec],
        externs: Sequence[ExternSpec],
    ) -> None:
        self.ctx = ctx
        self.programs = programs
        self.maps = maps
        self.externs = {e.symbol_index: e for e in externs}
        self.starts = {(p.section_index, p.offset): p.name for p in programs}
        e = ctx.elf.endian
        self.imm = struct.Struct(e + "i")

    def owner(self, section_index: int, offset: int) -> int | None:
        for i, p in enumerate(self.programs):
            if p.section_index == section_index and p.offset <= offset < p.offset + p.size:
                return i
        return None

    def classify(self, section: Section, rel: Relocation, prog: ProgramSpec) -> RelocSpec:
        ctx = self.ctx
        sym = ctx.elf.symbols[rel.symbol]
        name = ctx.symbol_name(sym)
        local = rel.offset - prog.offset
        insn_index = local // INSN_SIZE
        code = prog.insns[local]
        regs = prog.insns[local + 1]
        src_reg = regs >> 4 if ctx.elf.endian == "<" else regs & 0xF
        (imm,) = self.imm.unpack_from(prog.insns, local + 4)

        def fail(message: str) -> Exception:
            return ctx.error(f"program '{prog.name}': {message}", section=section.name,
                             offset=rel.offset)

        if code not in (CALL, LD_IMM64):
            raise fail(f"relocation against '{name}' on instruction {insn_index} "
                       f"with opcode {code:#04x} (neither call nor ld_imm64)")
        if code == LD_IMM64 and local + 2 * INSN_SIZE > prog.size:
            raise fail(f"ld_imm64 at instruction {insn_index} is cut off by the function end")
        if sym.index in self.externs:
            ext = self.externs[sym.index]
            ext_kind = RelocKind.EXTERN_FUNC if code == CALL else RelocKind.EXTERN_VAR
            return RelocSpec(insn_index, ext_kind, name, extern_name=ext.name)
        if code == CALL:
            if src_reg != BPF_PSEUDO_CALL:
                raise fail(f"call to '{name}' is not a BPF-to-BPF call")
            if not sym.shndx or sym.shndx != ctx.text_index:
                raise fail(f"bad call relocation against '{name}' in section "
                           f"'{ctx.section_name(sym.shndx)}'")
            if sym.value % INSN_SIZE:
                raise fail(f"bad call relocation against '{name}' at offset {sym.value}")
            target = (sym.value // INSN_SIZE + imm + 1) * INSN_SIZE
            return RelocSpec(insn_index, RelocKind.CALL, name, target_offset=target,
                             section_index=sym.shndx,
                             target=self.starts.get((sym.shndx, target)))
        if not sym.shndx or sym.shndx >= SHN_LORESERVE:
            raise fail(f"relocation against '{name}' in special section {sym.shndx:#x} "
                       "(uninitialised global variable?)")
        if sym.shndx == ctx.text_index and (
            (sym.binding == SymbolBinding.STB_LOCAL and sym.type == SymbolType.STT_SECTION)
            or (sym.binding == SymbolBinding.STB_GLOBAL and sym.type == SymbolType.STT_FUNC)
        ):
            if sym.value % INSN_SIZE or imm % INSN_SIZE:
                raise fail(f"bad subprogram address relocation against '{name}' at "
                           f"offset {sym.value}+{imm}")
            target = sym.value + imm
            return RelocSpec(insn_index, RelocKind.SUBPROG_ADDR, name, target_offset=target,
                             section_index=sym.shndx,
                             target=self.starts.get((sym.shndx, target)))
        kind = ctx.data_sections.get(sym.shndx)
        if kind is None:
            if sym.shndx != ctx.maps_index:
                raise fail(f"bad map relocation against '{name}' in section "
                           f"'{ctx.section_name(sym.shndx)}'")
            for m in self.maps:
                if (m.kind is MapKind.USER and m.section_index == sym.shndx
                        and m.def_offset == sym.value):
                    return RelocSpec(insn_index, RelocKind.MAP, name, map_name=m.name,
                                     section_index=sym.shndx)
            raise fail(f"map relocation against '{name}' finds no map at offset {sym.value}")
        for m in self.maps:
            if m.is_internal and m.section_index == sym.shndx:
                return RelocSpec(insn_index, RelocKind.DATA, name, map_name=m.name,
                                 target_offset=sym.value + imm, section_index=sym.shndx)
        raise fail(f"data relocation against '{name}' finds no map for section "
                   f"'{ctx.section_name(sym.shndx)}'")


def attach_relocations(
    ctx: ParseContext,
    programs: list[ProgramSpec],
    maps: Sequence[MapSpec],
    externs: Sequence[ExternSpec],
) -> list[ProgramSpec]:
    """``programs`` with the relocations of their instructions filled in."""
    relocator = _Relocator(ctx, programs, maps, externs)
    found: list[list[RelocSpec]] = [[] for _ in programs]
    for section in ctx.code_sections:
        for rel in ctx.elf.relocations_for(section.index):
            if rel.offset % INSN_SIZE or rel.offset >= section.size:
                raise ctx.error(f"invalid relocation offset {rel.offset:#x}",
                                section=section.name, offset=rel.offset)
            owner = relocator.owner(section.index, rel.offset)
            if owner is None:
                continue  # not inside any function: an overridden weak function, as libbpf
            found[owner].append(relocator.classify(section, rel, programs[owner]))
    return [
        replace(p, relocations=tuple(sorted(r, key=lambda x: x.insn_index)))
        for p, r in zip(programs, found, strict=True)
    ]
