"""Writing the linked object: the assembled sections, symbols, relocations, .BTF and .BTF.ext.

Section order follows libbpf's output (string table, symbol table, code and data in order of
first appearance, relocations, then ``.BTF`` and ``.BTF.ext``) so that tools comparing our
objects with bpftool's see the same shape.
"""

from __future__ import annotations

from pybpf.abi.sections import BTF, BTF_EXT
from pybpf.btf.ext import BtfExt
from pybpf.elf.constants import SectionType
from pybpf.elf.reader import Relocation
from pybpf.elf.writer import ElfWriter, WSymbol
from pybpf.linker.btf_merge import MergedBtf
from pybpf.linker.relocs import OutRelocation
from pybpf.linker.section_layout import SectionLayout
from pybpf.linker.symbols import OutSymbol, SymbolTable


def emit(
    layout: SectionLayout,
    table: SymbolTable,
    relocations: dict[str, list[OutRelocation]],
    btf: MergedBtf | None,
    ext: BtfExt | None,
) -> bytes:
    w = ElfWriter()
    w.add_strtab()
    w.add_symtab()
    index: dict[str, int] = {}
    for name, sec in layout.sections.items():
        index[name] = w.add_section(
            name,
            sec.type,
            sec.flags,
            bytes(sec.data),
            addralign=sec.addralign,
            entsize=sec.entsize,
            size=sec.size if sec.is_nobits else None,
        )
    symbols = table.output_symbols()
    number: dict[int, int] = {}
    for i, sym in enumerate(symbols, start=1):
        number[id(sym)] = i
        w.symbols.append(_wsymbol(sym, index))
    for name in layout.sections:
        relocs = relocations.get(name)
        if relocs:
            w.add_relocations(
                index[name],
                [Relocation(r.offset, r.type, number[id(r.symbol)]) for r in relocs],
            )
    if btf is not None:
        ext_bytes = b"" if ext is None else ext.to_bytes(btf.builder.add_string)
        w.add_section(BTF, SectionType.SHT_PROGBITS, 0, btf.builder.encode(), addralign=8)
        if ext_bytes:
            w.add_section(BTF_EXT, SectionType.SHT_PROGBITS, 0, ext_bytes, addralign=8)
    return w.to_bytes()


def _wsymbol(sym: OutSymbol, index: dict[str, int]) -> WSymbol:
    shndx = index[sym.section.name] if sym.section is not None else sym.shndx
    return WSymbol(sym.name, sym.value, sym.size, sym.binding, sym.type, sym.visibility, shndx)
