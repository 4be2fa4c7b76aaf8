"""Shared state of one object parse: the ELF, its BTF and how its sections are classified.

The parse runs in libbpf's order (sections, externs, maps, programs, relocations) and each
step needs the same few facts: which sections hold code or global data, which BTF DATASEC
describes a section, and a way to report an error naming the file, section and offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pybpf.abi.sections import BTF
from pybpf.btf import Btf
from pybpf.btf.ext import BtfExt
from pybpf.btf.types import BtfDatasec, BtfKind
from pybpf.elf import ElfFile, Section, SectionType, Symbol, SymbolType
from pybpf.errors import ObjectError
from pybpf.obj.specs import MapKind


def data_section_kind(section: Section) -> MapKind | None:
    """The global-data family of ``section`` (libbpf's ``SEC_DATA``/``RODATA``/``BSS``)."""
    name = section.name
    if section.type == SectionType.SHT_PROGBITS and not section.is_exec:
        if name == ".data" or name.startswith(".data."):
            return MapKind.DATA
        if name == ".rodata" or name.startswith(".rodata."):
            return MapKind.RODATA
    if section.type == SectionType.SHT_NOBITS and (name == ".bss" or name.startswith(".bss.")):
        return MapKind.BSS
    return None


@dataclass
class ParseContext:
    """One object being parsed."""

    elf: ElfFile
    name: str
    btf: Btf | None
    btf_ext: BtfExt | None
    text_index: int = 0
    maps_index: int = -1
    data_sections: dict[int, MapKind] = field(default_factory=dict)
    data_bytes: int = 0
    """The size of all global data so far (what opening the object will hold in memory)."""
    code_sections: list[Section] = field(default_factory=list)

    @property
    def file(self) -> str:
        return self.elf.path or "<bytes>"

    def error(
        self, message: str, *, section: str | None = None, offset: int | None = None
    ) -> ObjectError:
        return ObjectError(message, file=self.file, section=section, offset=offset)

    def need_btf(self, what: str, section: str | None = None) -> Btf:
        if self.btf is None:
            raise self.error(f"{what} needs BTF, but the object has no BTF (no .BTF section)",
                             section=section)
        return self.btf

    def section_name(self, index: int) -> str:
        if 0 <= index < len(self.elf.sections):
            return self.elf.sections[index].name
        return f"#{index}"

    def symbol_name(self, sym: Symbol) -> str:
        """A symbol's name; section symbols are named after their section (as libbpf does)."""
        if sym.type == SymbolType.STT_SECTION and sym.name == "":
            return self.section_name(sym.shndx)
        return sym.name

    def datasec(self, name: str) -> tuple[int, BtfDatasec] | None:
        """The BTF DATASEC describing section ``name``, if the object has one."""
        if self.btf is None:
            return None
        for type_id in self.btf.find(name, BtfKind.DATASEC):
            return type_id, self.datasec_at(type_id)
        return None

    def datasec_at(self, type_id: int) -> BtfDatasec:
        """BTF type ``type_id``, which the BTF's kind index says is a DATASEC."""
        t = self.need_btf(f"DATASEC #{type_id}")[type_id]
        if not isinstance(t, BtfDatasec):
            raise self.error(f"BTF type #{type_id} is a {t.kind.name}, expected DATASEC",
                             section=BTF)
        return t

    def first_type_named(self, name: str) -> int:
        """libbpf's ``btf__find_by_name``: the first type of any kind called ``name``, or 0."""
        if self.btf is None:
            return 0
        found = self.btf.find(name)
        return found[0] if found else 0

