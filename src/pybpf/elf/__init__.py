"""ELF reading and writing for BPF relocatable objects."""

from pybpf.elf.constants import BpfReloc, SectionFlags, SectionType, SymbolBinding, SymbolType
from pybpf.elf.reader import ElfFile, Relocation, RelocationSection, Section, Symbol

__all__ = [
    "BpfReloc",
    "ElfFile",
    "Relocation",
    "RelocationSection",
    "Section",
    "SectionFlags",
    "SectionType",
    "Symbol",
    "SymbolBinding",
    "SymbolType",
]
