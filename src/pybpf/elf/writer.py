"""Writing ELF64 relocatable BPF objects (``ET_REL``, ``EM_BPF``, little endian).

The static linker produces objects and tests rewrite objects they have read, so the writer
speaks the reader's vocabulary (:class:`~pybpf.elf.reader.Symbol`-like fields, relocations as
:class:`~pybpf.elf.reader.Relocation`) and leaves all *meaning* to the caller: it lays out
sections, encodes the symbol table, one string table and ``SHT_REL`` sections, and nothing
else.

One string table serves both section names and symbol names, as clang and libbpf's linker
do; its contents are generated (names in order of first use), so callers never compute string
offsets.  The output is a pure function of the calls made: same calls, same bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pybpf.elf.constants import (
    EHDR_SIZE,
    ELF_MAGIC,
    ELFCLASS64,
    ELFDATA2LSB,
    EM_BPF,
    EV_CURRENT,
    MAX_SECTION_ALIGN,
    REL_SIZE,
    SHDR_SIZE,
    SHN_LORESERVE,
    SYM_SIZE,
    ElfType,
    SectionFlags,
    SectionType,
    SymbolBinding,
    SymbolType,
)
from pybpf.elf.reader import ElfFile, Relocation
from pybpf.errors import ElfError

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_REL = struct.Struct("<QQ")


@dataclass(frozen=True, slots=True)
class WSymbol:
    """A symbol to write.  ``shndx`` is a section index *of the output* (or an ``SHN_*``)."""

    name: str
    value: int
    size: int
    binding: int
    type: int
    visibility: int
    shndx: int


@dataclass(slots=True)
class _Sec:
    name: str
    type: int
    flags: int
    data: bytes
    size: int
    addralign: int
    entsize: int
    link: int
    info: int
    role: str = ""
    """"symtab", "strtab", "rel" for generated contents; "" for caller-supplied bytes."""
    relocations: tuple[Relocation, ...] = ()


class _Strings:
    """An ELF string table: offset 0 is the empty string; each distinct name stored once."""

    def __init__(self) -> None:
        self._data = bytearray(b"\0")
        self._offsets: dict[str, int] = {"": 0}

    def add(self, text: str) -> int:
        found = self._offsets.get(text)
        if found is None:
            found = len(self._data)
            self._data += text.encode("utf-8", "surrogateescape") + b"\0"
            self._offsets[text] = found
        return found

    @property
    def data(self) -> bytes:
        return bytes(self._data)


class ElfWriter:
    """Collects sections, symbols and relocations; :meth:`to_bytes` lays the object out.

    Section indices are handed out in call order starting at 1 (index 0 is the null section),
    so callers can refer to a section (symbol ``shndx``, ``sh_link``/``sh_info``) as soon as
    it is added.  Symbols are written in the order given; callers that care about ELF's
    "locals first" rule put locals first (``sh_info`` is computed from the list either way).
    """

    def __init__(self) -> None:
        self._sections: list[_Sec] = []
        self.symbols: list[WSymbol] = []
        self._symtab = 0
        self._strtab = 0

    # ----------------------------------------------------------------------------- sections

    def add_section(
        self,
        name: str,
        type: int,
        flags: int,
        data: bytes = b"",
        *,
        addralign: int = 1,
        entsize: int = 0,
        link: int = 0,
        info: int = 0,
        size: int | None = None,
    ) -> int:
        """Add a section with caller-supplied contents; return its index.

        ``size`` is only for ``SHT_NOBITS`` sections, which have a size but no bytes.
        ``addralign`` is bounded by :data:`~pybpf.elf.constants.MAX_SECTION_ALIGN`: the
        layout pads each section to it, so an absurd value would be an absurd file.
        """
        if addralign < 0 or addralign & (addralign - 1) or addralign > MAX_SECTION_ALIGN:
            raise ElfError(
                f"section {name}: alignment {addralign} is not a power of two up to "
                f"{MAX_SECTION_ALIGN}"
            )
        if type == SectionType.SHT_NOBITS:
            body, sh_size = b"", size if size is not None else 0
        else:
            if size is not None and size != len(data):
                raise ElfError(f"section {name}: size {size} differs from {len(data)} data bytes")
            body, sh_size = bytes(data), len(data)
        self._sections.append(
            _Sec(name, type, int(flags), body, sh_size, addralign, entsize, link, info)
        )
        return len(self._sections)

    def add_symtab(self, name: str = ".symtab") -> int:
        """Add the symbol table; its contents come from :attr:`symbols`."""
        if self._symtab:
            raise ElfError("only one symbol table is supported")
        self._symtab = self.add_section(
            name, SectionType.SHT_SYMTAB, 0, addralign=8, entsize=SYM_SIZE
        )
        self._sections[-1].role = "symtab"
        return self._symtab

    def add_strtab(self, name: str = ".strtab") -> int:
        """Add the one string table (section names and symbol names)."""
        if self._strtab:
            raise ElfError("only one string table is supported")
        self._strtab = self.add_section(name, SectionType.SHT_STRTAB, 0)
        self._sections[-1].role = "strtab"
        return self._strtab

    def add_relocations(
        self,
        target: int,
        relocations: tuple[Relocation, ...] | list[Relocation],
        *,
        name: str | None = None,
    ) -> int:
        """Add a ``SHT_REL`` section relocating section ``target`` (named ``.rel<target>``).

        ``target`` may be a section added later when ``name`` is given (objects may list a
        relocation section before the section it patches); it is checked when writing.
        """
        if name is None:
            if not 0 < target <= len(self._sections):
                raise ElfError(f"relocation target section {target} does not exist")
            name = ".rel" + self._sections[target - 1].name
        index = self.add_section(
            name,
            SectionType.SHT_REL,
            SectionFlags.SHF_INFO_LINK,
            addralign=8,
            entsize=REL_SIZE,
            info=target,
        )
        sec = self._sections[-1]
        sec.role = "rel"
        sec.relocations = tuple(relocations)
        return index

    def section_name(self, index: int) -> str:
        return self._sections[index - 1].name

    # ----------------------------------------------------------------------------- output

    def _encode_generated(self, strings: _Strings) -> None:
        nsym = len(self.symbols) + 1
        for sec in self._sections:
            if sec.role == "rel":
                if not 0 < sec.info <= len(self._sections):
                    raise ElfError(f"section {sec.name}: target section {sec.info} does not exist")
                sec.link = self._symtab
                out = bytearray()
                for r in sec.relocations:
                    if r.symbol >= nsym:
                        raise ElfError(
                            f"section {sec.name}: relocation at {r.offset:#x} refers to symbol "
                            f"{r.symbol}, but only {nsym} symbols exist"
                        )
                    out += _REL.pack(r.offset, (r.symbol << 32) | r.type)
                sec.data, sec.size = bytes(out), len(out)
        if self._symtab:
            sec = self._sections[self._symtab - 1]
            out = bytearray(SYM_SIZE)  # the null symbol
            last_local = 0
            for i, sym in enumerate(self.symbols, start=1):
                if sym.binding == SymbolBinding.STB_LOCAL:
                    last_local = i
                name_off = 0 if sym.type == SymbolType.STT_SECTION else strings.add(sym.name)
                if len(self._sections) < sym.shndx < SHN_LORESERVE:
                    raise ElfError(f"symbol {sym.name!r} refers to missing section {sym.shndx}")
                out += _SYM.pack(
                    name_off,
                    (sym.binding << 4) | (sym.type & 0xF),
                    sym.visibility & 0x3,
                    sym.shndx,
                    sym.value,
                    sym.size,
                )
            sec.data, sec.size = bytes(out), len(out)
            sec.link = self._strtab
            sec.info = last_local + 1  # ELF: one past the last local symbol

    def to_bytes(self) -> bytes:
        """The object file image."""
        if not self._strtab:
            raise ElfError("an ELF object needs a string table (call add_strtab)")
        if len(self._sections) + 1 >= SHN_LORESERVE:
            raise ElfError(f"too many sections ({len(self._sections) + 1})")
        strings = _Strings()
        name_offsets = [strings.add(sec.name) for sec in self._sections]
        self._encode_generated(strings)
        strtab = self._sections[self._strtab - 1]
        strtab.data, strtab.size = strings.data, len(strings.data)

        image = bytearray(EHDR_SIZE)
        offsets: list[int] = []
        for sec in self._sections:
            align = max(sec.addralign, 1)
            if sec.type == SectionType.SHT_NOBITS:
                offsets.append(len(image))
                continue
            image += bytes(-len(image) % align)
            offsets.append(len(image))
            image += sec.data
        image += bytes(-len(image) % 8)
        shoff = len(image)
        image += bytes(SHDR_SIZE)  # the null section header
        for sec, name_off, off in zip(self._sections, name_offsets, offsets, strict=True):
            image += _SHDR.pack(
                name_off,
                sec.type,
                sec.flags,
                0,
                off,
                sec.size,
                sec.link,
                sec.info,
                sec.addralign,
                sec.entsize,
            )
        ident = ELF_MAGIC + bytes([ELFCLASS64, ELFDATA2LSB, EV_CURRENT]) + bytes(9)
        _EHDR.pack_into(
            image,
            0,
            ident,
            ElfType.ET_REL,
            EM_BPF,
            EV_CURRENT,
            0,
            0,
            shoff,
            0,
            EHDR_SIZE,
            0,
            0,
            SHDR_SIZE,
            len(self._sections) + 1,
            self._strtab,
        )
        return bytes(image)


def rewrite(elf: ElfFile) -> bytes:
    """Write ``elf`` again from its parsed model: same sections, symbols and relocations.

    Symbol and string tables and relocation sections are re-encoded from the model; every
    other section's bytes are copied.  Section indices are kept when the input uses a single
    string table (as clang and libbpf do); extra string tables are dropped and the indices
    after them shift.  Proves that the model is complete, and gives tests a way to produce
    objects that went through our writer.
    """
    if elf.endian != "<":
        raise elf.error("only little-endian objects can be rewritten", offset=5)
    strtabs = [s.index for s in elf.sections if s.type == SectionType.SHT_STRTAB]
    kept = [
        s for s in elf.sections[1:] if s.type != SectionType.SHT_STRTAB or s.index == strtabs[0]
    ]
    new_index = {s.index: i for i, s in enumerate(kept, start=1)}
    for extra in strtabs[1:]:
        new_index[extra] = new_index[strtabs[0]]
    relocs = {r.section.index: r for r in elf.relocation_sections}
    w = ElfWriter()
    for sec in kept:
        if sec.type == SectionType.SHT_STRTAB:
            w.add_strtab(sec.name)
        elif sec.type == SectionType.SHT_SYMTAB:
            w.add_symtab(sec.name)
        elif sec.type == SectionType.SHT_RELA:
            raise elf.error(
                "RELA sections are not supported",
                section=sec.name,
                offset=elf.header_offset(sec.index, 4),
            )
        elif sec.type == SectionType.SHT_REL:
            rel = relocs[sec.index]
            w.add_relocations(new_index[rel.target], rel.relocations, name=sec.name)
        else:
            w.add_section(
                sec.name,
                sec.type,
                sec.flags,
                sec.data,
                addralign=sec.addralign,
                entsize=sec.entsize,
                link=new_index.get(sec.link, 0),
                info=sec.info,
                size=sec.size if sec.is_nobits else None,
            )
    if not strtabs:
        w.add_strtab()
    for sym in elf.symbols[1:]:
        shndx = new_index.get(sym.shndx, sym.shndx) if sym.shndx < SHN_LORESERVE else sym.shndx
        w.symbols.append(
            WSymbol(sym.name, sym.value, sym.size, sym.binding, sym.type, sym.visibility, shndx)
        )
    return w.to_bytes()
