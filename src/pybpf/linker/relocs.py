"""Carrying relocations over: new offsets, new symbols, and section-relative addends.

Most relocations name a symbol and only need that symbol's output counterpart and an
offset shifted by the placement of the section they patch.  Relocations against a *section*
symbol are different: the output keeps one symbol per section, at offset 0, so the addend
(held in the instruction or data itself, these are ``SHT_REL``) must grow by the placement of
the referenced input section - in instructions for calls (``imm`` counts instructions), in
bytes for ``ld_imm64`` (the address of a static variable or a callback) and for data
(``R_BPF_64_ABS64``/``ABS32`` in ``.maps`` and other data).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pybpf.abi.insn import CALL, INSN_SIZE
from pybpf.elf.constants import BpfReloc, SymbolType
from pybpf.errors import LinkError
from pybpf.linker.inputs import InputObject
from pybpf.linker.section_layout import OutSection, SectionLayout
from pybpf.linker.symbols import OutSymbol, SymbolTable


@dataclass(frozen=True, slots=True)
class OutRelocation:
    offset: int
    type: int
    symbol: OutSymbol


def relocate(
    inputs: list[InputObject], layout: SectionLayout, table: SymbolTable
) -> dict[str, list[OutRelocation]]:
    """Every kept relocation, by output section name (in input order)."""
    out: dict[str, list[OutRelocation]] = {}
    for obj in inputs:
        for rel in obj.elf.relocation_sections:
            placement = layout.placement(obj, rel.target)
            if placement is None or placement.skipped:
                continue  # DWARF, .BTF, .BTF.ext: rebuilt or dropped
            target = placement.section
            relocs = out.setdefault(target.name, [])
            for r in rel.relocations:
                src = obj.elf.symbols[r.symbol]
                sym = table.by_input.get((obj.index, r.symbol))
                is_section = src.type == SymbolType.STT_SECTION
                ref = layout.placement(obj, src.shndx) if is_section else None
                if sym is None or (is_section and ref is None):
                    raise LinkError(
                        f"{obj.path}: {rel.section.name}: relocation at {r.offset:#x} refers "
                        f"to {src.name or 'a symbol'!r} in a section that is not linked"
                    )
                offset = placement.offset + r.offset
                if target.is_exec and target.data[offset] == CALL:
                    _check_call_target(obj, rel.section.name, r.offset, sym)
                if ref is not None:
                    where = f"{obj.path}: {rel.section.name}: relocation at {r.offset:#x}"
                    _add_to_addend(where, target, offset, r.type, ref.offset)
                relocs.append(OutRelocation(offset, r.type, sym))
    return out


def _check_call_target(obj: InputObject, rel_name: str, offset: int, sym: OutSymbol) -> None:
    """A call must land in code: a symbol defined outside an executable section (an extern
    declared as a variable and resolved to one, say) gives an output no loader accepts, so
    the input whose call it is gets the error."""
    if sym.section is not None and not sym.section.is_exec:
        raise LinkError(
            f"{obj.path}: {rel_name}: the call at {offset:#x} resolves to '{sym.name}', "
            f"which is data in {sym.section.name}, not a function"
        )


def _add_to_addend(where: str, sec: OutSection, offset: int, kind: int, delta: int) -> None:
    """Add ``delta`` to the addend held at ``offset`` of ``sec``; ``where`` names the input
    relocation for errors (an addend that no longer fits its field)."""
    if delta == 0:
        return
    data = sec.data
    if sec.is_nobits:
        raise LinkError(f"{where}: {sec.name} holds no bytes to patch")
    if sec.is_exec:
        opcode = data[offset]
        (imm,) = struct.unpack_from("<i", data, offset + 4)
        imm += delta // INSN_SIZE if opcode == CALL else delta
        if not -(2**31) <= imm < 2**31:
            raise LinkError(
                f"{where}: instruction immediate {imm} (after adding {delta} for the "
                "placement of its section) does not fit 32 bits"
            )
        struct.pack_into("<i", data, offset + 4, imm)
    elif kind == BpfReloc.R_BPF_64_ABS64:
        (value,) = struct.unpack_from("<Q", data, offset)
        struct.pack_into("<Q", data, offset, (value + delta) & 0xFFFFFFFFFFFFFFFF)
    elif kind == BpfReloc.R_BPF_64_ABS32:
        (value,) = struct.unpack_from("<I", data, offset)
        struct.pack_into("<I", data, offset, (value + delta) & 0xFFFFFFFF)
    else:
        raise LinkError(
            f"{where}: relocation type {kind} against a section symbol in data section "
            f"{sec.name} is not supported"
        )
