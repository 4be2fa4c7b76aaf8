"""Reading BPF ELF objects (relocatable ``.bpf.o`` files and linked ones).

pybpf reads ELF itself rather than through pyelftools: the linker must also *write* ELF, and one
small model serves both directions.  Parsing is eager for headers, symbols and relocations (a
BPF object has at most a few thousand of each).  Section contents are ``bytes`` copied out of
the file image, and no two sections' contents may overlap: that keeps what a parse materialises
bounded by the size of the file, however many section headers a hostile file points at the same
bytes (each would otherwise cost a full copy).

Every malformation raises :class:`pybpf.ElfError` naming the file, the section and the offset
of the faulty field.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from operator import itemgetter
from pathlib import Path

from pybpf.abi.sections import LICENSE
from pybpf.elf.constants import (
    EHDR_SIZE,
    ELF_MAGIC,
    ELFCLASS64,
    ELFDATA2LSB,
    ELFDATA2MSB,
    EM_BPF,
    REL_SIZE,
    RELA_SIZE,
    SHDR_SIZE,
    SHN_LORESERVE,
    SHN_UNDEF,
    SHN_XINDEX,
    SYM_SIZE,
    ElfType,
    SectionFlags,
    SectionType,
    SymbolBinding,
    SymbolType,
    SymbolVisibility,
)
from pybpf.errors import ElfError


@dataclass(frozen=True, slots=True)
class Section:
    """One section header plus its contents (empty for ``SHT_NOBITS``)."""

    index: int
    name: str
    type: int
    flags: SectionFlags
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int
    data: bytes = field(repr=False)

    @property
    def is_nobits(self) -> bool:
        return self.type == SectionType.SHT_NOBITS

    @property
    def is_exec(self) -> bool:
        return self.type == SectionType.SHT_PROGBITS and bool(
            self.flags & SectionFlags.SHF_EXECINSTR
        )


@dataclass(frozen=True, slots=True)
class Symbol:
    """A symbol table entry.  ``shndx`` is the resolved section index (``SHN_*`` kept as is)."""

    index: int
    name: str
    value: int
    size: int
    binding: int
    type: int
    visibility: int
    shndx: int

    @property
    def is_extern(self) -> bool:
        """Undefined global: an ``extern`` the linker or loader must resolve."""
        return self.shndx == SHN_UNDEF and self.binding != SymbolBinding.STB_LOCAL

    @property
    def is_weak(self) -> bool:
        return self.binding == SymbolBinding.STB_WEAK

    @property
    def is_global(self) -> bool:
        return self.binding in (SymbolBinding.STB_GLOBAL, SymbolBinding.STB_WEAK)

    @property
    def is_hidden(self) -> bool:
        return self.visibility in (SymbolVisibility.STV_HIDDEN, SymbolVisibility.STV_INTERNAL)


@dataclass(frozen=True, slots=True)
class Relocation:
    """A relocation: patch ``offset`` of the target section using ``symbol`` (a symbol index)."""

    offset: int
    type: int
    symbol: int
    addend: int = 0


class RelocationSection:
    """A ``SHT_REL``/``SHT_RELA`` section and the section it applies to.

    Every entry is checked when the file is parsed, but becomes a :class:`Relocation` only when
    ``relocations`` is first read: most relocations of a BPF object are DWARF's, which the
    linker and the loader drop without looking at them.
    """

    __slots__ = ("_relocations", "_rows", "section", "target")

    def __init__(
        self,
        section: Section,
        target: int,
        relocations: tuple[Relocation, ...] | None = None,
        *,
        rows: list[tuple[int, ...]] | None = None,
    ) -> None:
        self.section = section
        self.target = target
        self._relocations = relocations
        self._rows = rows

    @property
    def relocations(self) -> tuple[Relocation, ...]:
        relocations = self._relocations
        if relocations is None:
            relocations = tuple(
                [
                    Relocation(offset, info & 0xFFFFFFFF, info >> 32, *addend)
                    for offset, info, *addend in self._rows or ()
                ]
            )
            self._relocations = relocations
            self._rows = None
        return relocations

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not RelocationSection:
            return NotImplemented
        assert isinstance(other, RelocationSection)
        return (self.section, self.target, self.relocations) == (
            other.section,
            other.target,
            other.relocations,
        )

    def __hash__(self) -> int:
        return hash((self.section, self.target, self.relocations))

    def __repr__(self) -> str:
        return (
            f"RelocationSection(section={self.section!r}, target={self.target!r}, "
            f"relocations={self.relocations!r})"
        )


_r_info = itemgetter(1)


class ElfFile:
    """A parsed ELF64 BPF object.

    ``sections`` is indexed by section header index (entry 0 is the null section).
    ``symbols`` is indexed by symbol index (entry 0 is the null symbol).
    """

    def __init__(self, data: bytes, *, path: str | None = None, require_bpf: bool = True) -> None:
        self.path = path
        self.data = bytes(data)
        self._parse(require_bpf)

    @classmethod
    def from_bytes(cls, data: bytes, *, path: str | None = None) -> ElfFile:
        return cls(data, path=path)

    @classmethod
    def open(cls, path: str | Path) -> ElfFile:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ElfError(f"cannot read: {exc.strerror}", file=str(path)) from None
        return cls(data, path=str(path))

    # ----------------------------------------------------------------------------- errors

    def error(
        self, message: str, *, section: str | None = None, offset: int | None = None
    ) -> ElfError:
        return ElfError(message, file=self.path or "<bytes>", section=section, offset=offset)

    # ----------------------------------------------------------------------------- parsing

    def _parse(self, require_bpf: bool) -> None:
        data = self.data
        if len(data) < EHDR_SIZE:
            raise self.error(f"truncated ELF header: {len(data)} bytes, need {EHDR_SIZE}", offset=0)
        if data[:4] != ELF_MAGIC:
            raise self.error("not an ELF file (bad magic)", offset=0)
        if data[4] != ELFCLASS64:
            raise self.error(f"not a 64-bit ELF (class {data[4]})", offset=4)
        if data[5] == ELFDATA2LSB:
            self.endian = "<"
        elif data[5] == ELFDATA2MSB:
            self.endian = ">"
        else:
            raise self.error(f"bad data encoding {data[5]}", offset=5)
        e = self.endian
        (
            e_type,
            e_machine,
            _e_version,
            _e_entry,
            _e_phoff,
            e_shoff,
            self.e_flags,
            _e_ehsize,
            _e_phentsize,
            _e_phnum,
            e_shentsize,
            e_shnum,
            e_shstrndx,
        ) = struct.unpack_from(e + "HHIQQQIHHHHHH", data, 16)
        self.e_type = e_type
        self.machine = e_machine
        if require_bpf and e_machine != EM_BPF:
            raise self.error(
                f"not a BPF object (e_machine {e_machine}, expected {EM_BPF})", offset=18
            )
        if require_bpf and e_type not in (ElfType.ET_REL, ElfType.ET_EXEC, ElfType.ET_DYN):
            raise self.error(f"unsupported ELF type {e_type}", offset=16)
        if e_shoff == 0:
            raise self.error("no section header table", offset=40)
        if e_shentsize != SHDR_SIZE:
            raise self.error(f"bad section header size {e_shentsize}", offset=58)
        if e_shnum == 0:
            # Extended numbering: the real count lives in section 0's sh_size.
            self._check_range(e_shoff, SHDR_SIZE, "section header 0", None)
            e_shnum = struct.unpack_from(e + "Q", data, e_shoff + 32)[0]
        if e_shstrndx == SHN_XINDEX:
            self._check_range(e_shoff, SHDR_SIZE, "section header 0", None)
            e_shstrndx = struct.unpack_from(e + "I", data, e_shoff + 40)[0]
        if e_shnum > len(data) // SHDR_SIZE:
            raise self.error(f"{e_shnum} section headers cannot fit the file", offset=60)
        self._check_range(e_shoff, e_shnum * SHDR_SIZE, "section header table", None)
        self._shoff: int = e_shoff
        raw_headers = [
            struct.unpack_from(e + "IIQQQQIIQQ", data, e_shoff + i * SHDR_SIZE)
            for i in range(e_shnum)
        ]
        if e_shstrndx >= e_shnum:
            raise self.error(f"section name table index {e_shstrndx} out of range", offset=62)
        self._check_overlaps(raw_headers)
        shstr = raw_headers[e_shstrndx]
        shstr_data = self._section_bytes(shstr[1], shstr[4], shstr[5], ".shstrtab", e_shstrndx)
        sections: list[Section] = []
        for index, (
            name_off,
            sh_type,
            flags,
            _addr,
            off,
            size,
            link,
            info,
            align,
            entsize,
        ) in enumerate(raw_headers):
            name = self._string(
                shstr_data,
                name_off,
                ".shstrtab",
                f"name of section {index}",
                self.header_offset(index),
            )
            body = self._section_bytes(sh_type, off, size, name, index)
            sections.append(
                Section(
                    index,
                    name,
                    sh_type,
                    SectionFlags(flags & 0xFFFFFFFF),
                    off,
                    size,
                    link,
                    info,
                    align,
                    entsize,
                    body,
                )
            )
        self.sections: list[Section] = sections
        self._by_name: dict[str, Section] = {}
        for s in sections:
            self._by_name.setdefault(s.name, s)
        self.symbols: list[Symbol] = self._parse_symbols()
        self.relocation_sections: list[RelocationSection] = self._parse_relocations()
        self._relocs_by_target = {r.target: r for r in self.relocation_sections}

    def _check_range(self, offset: int, size: int, what: str, section: str | None) -> None:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise self.error(
                f"{what} ({size} bytes at {offset:#x}) runs past end of file ({len(self.data)} "
                "bytes)",
                section=section,
                offset=offset,
            )

    def header_offset(self, index: int, at: int = 0) -> int:
        """File offset of section header ``index`` (plus ``at``, a byte offset into it): where
        error messages point for a faulty header field."""
        return self._shoff + index * SHDR_SIZE + at

    def _check_overlaps(self, headers: list[tuple[int, ...]]) -> None:
        """Refuse sections whose contents share bytes.

        No tool lays out an object that way, and refusing it is what bounds the copies made
        for :attr:`Section.data` by the size of the file.
        """
        spans = sorted(
            (off, size, index)
            for index, (_, sh_type, _, _, off, size, *_) in enumerate(headers)
            if size and sh_type not in (SectionType.SHT_NOBITS, SectionType.SHT_NULL)
        )
        for (off_a, size_a, a), (off_b, _, b) in pairwise(spans):
            if off_b < off_a + size_a:
                raise self.error(
                    f"contents of section {b} (at {off_b:#x}) overlap section {a} "
                    f"({size_a} bytes at {off_a:#x})",
                    offset=self.header_offset(b, 24),
                )

    def _section_bytes(self, sh_type: int, off: int, size: int, name: str, index: int) -> bytes:
        if sh_type in (SectionType.SHT_NOBITS, SectionType.SHT_NULL):
            return b""
        self._check_range(off, size, f"contents of section {index}", name)
        return self.data[off : off + size]

    def _string(self, table: bytes, offset: int, section: str, what: str, where: int) -> str:
        """The NUL-terminated string at ``offset`` of ``table``; ``where`` is the file offset
        of the field holding ``offset``, for the error message."""
        if offset >= len(table):
            raise self.error(
                f"{what}: string offset {offset} out of range ({len(table)} bytes)",
                section=section,
                offset=where,
            )
        end = table.find(b"\0", offset)
        if end < 0:
            raise self.error(
                f"{what}: unterminated string at {offset}", section=section, offset=where
            )
        return table[offset:end].decode("utf-8", "surrogateescape")

    def _parse_symbols(self) -> list[Symbol]:
        symtabs = [s for s in self.sections if s.type == SectionType.SHT_SYMTAB]
        if not symtabs:
            return []
        if len(symtabs) > 1:
            raise self.error(
                "more than one symbol table",
                section=symtabs[1].name,
                offset=self.header_offset(symtabs[1].index),
            )
        symtab = symtabs[0]
        if symtab.entsize not in (0, SYM_SIZE) or len(symtab.data) % SYM_SIZE:
            raise self.error(
                f"symbol table size {len(symtab.data)} is not a multiple of {SYM_SIZE}",
                section=symtab.name,
                offset=symtab.offset,
            )
        if symtab.link >= len(self.sections):
            raise self.error(
                f"string table index {symtab.link} out of range",
                section=symtab.name,
                offset=self.header_offset(symtab.index, 40),
            )
        strtab = self.sections[symtab.link].data
        xindex = b""
        for s in self.sections:
            if s.type == SectionType.SHT_SYMTAB_SHNDX and s.link == symtab.index:
                xindex = s.data
        symbols: list[Symbol] = []
        unpack = struct.Struct(self.endian + "IBBHQQ").unpack_from
        nsections = len(self.sections)
        for index in range(len(symtab.data) // SYM_SIZE):
            where = index * SYM_SIZE
            name_off, info, other, shndx, value, size = unpack(symtab.data, where)
            if shndx == SHN_XINDEX:
                # The real index is in SHT_SYMTAB_SHNDX; without an entry there is none.
                if len(xindex) < 4 * (index + 1):
                    raise self.error(
                        f"symbol {index} has an extended section index (SHN_XINDEX) but no "
                        "SHT_SYMTAB_SHNDX entry",
                        section=symtab.name,
                        offset=symtab.offset + where + 6,
                    )
                shndx = struct.unpack_from(self.endian + "I", xindex, 4 * index)[0]
                if shndx == SHN_UNDEF or shndx >= nsections:
                    raise self.error(
                        f"symbol {index}: extended section index {shndx} out of range",
                        section=symtab.name,
                        offset=symtab.offset + where + 6,
                    )
            elif shndx != SHN_UNDEF and shndx < SHN_LORESERVE and shndx >= nsections:
                raise self.error(
                    f"symbol {index} refers to section {shndx} out of range",
                    section=symtab.name,
                    offset=symtab.offset + where + 6,
                )
            name = self._string(
                strtab, name_off, symtab.name, f"name of symbol {index}", symtab.offset + where
            )
            sym_type = info & 0xF
            if sym_type == SymbolType.STT_SECTION and not name and shndx < nsections:
                name = self.sections[shndx].name
            symbols.append(
                Symbol(index, name, value, size, info >> 4, sym_type, other & 0x3, shndx)
            )
        return symbols

    def _parse_relocations(self) -> list[RelocationSection]:
        result: list[RelocationSection] = []
        rel_format = struct.Struct(self.endian + "QQ")
        rela_format = struct.Struct(self.endian + "QQq")
        nsymbols = len(self.symbols)
        for s in self.sections:
            if s.type not in (SectionType.SHT_REL, SectionType.SHT_RELA):
                continue
            is_rela = s.type == SectionType.SHT_RELA
            entry = RELA_SIZE if is_rela else REL_SIZE
            if len(s.data) % entry:
                raise self.error(
                    f"relocation section size {len(s.data)} is not a multiple of {entry}",
                    section=s.name,
                    offset=s.offset,
                )
            if s.info >= len(self.sections) or s.info == 0:
                raise self.error(
                    f"relocates section {s.info}, out of range",
                    section=s.name,
                    offset=self.header_offset(s.index, 44),
                )
            rows = list((rela_format if is_rela else rel_format).iter_unpack(s.data))
            if rows and max(rows, key=_r_info)[1] >> 32 >= nsymbols:
                i = next(i for i, row in enumerate(rows) if row[1] >> 32 >= nsymbols)
                raise self.error(
                    f"relocation {i} refers to symbol {rows[i][1] >> 32}, out of range",
                    section=s.name,
                    offset=s.offset + i * entry,
                )
            result.append(RelocationSection(s, s.info, rows=rows))
        return result

    # ----------------------------------------------------------------------------- queries

    def section(self, name: str) -> Section | None:
        """The first section called ``name``, if any."""
        return self._by_name.get(name)

    def section_at(self, index: int) -> Section:
        if index <= 0 or index >= len(self.sections):
            raise self.error(f"section index {index} out of range")
        return self.sections[index]

    def relocations_for(self, section_index: int) -> tuple[Relocation, ...]:
        """Relocations that apply to the section with index ``section_index``."""
        found = self._relocs_by_target.get(section_index)
        return found.relocations if found else ()

    def symbols_in(self, section_index: int) -> Iterator[Symbol]:
        for sym in self.symbols:
            if sym.shndx == section_index and sym.index:
                yield sym

    def symbol_named(self, name: str) -> Symbol | None:
        for sym in self.symbols:
            if sym.name == name and sym.type != SymbolType.STT_SECTION and sym.index:
                return sym
        return None

    @property
    def license(self) -> str | None:
        """Contents of the ``license`` section, NUL-trimmed."""
        s = self.section(LICENSE)
        if s is None:
            return None
        return s.data.split(b"\0", 1)[0].decode("utf-8", "replace")

    @property
    def kernel_version(self) -> int | None:
        """Contents of the legacy ``version`` section, if present."""
        s = self.section("version")
        if s is None or len(s.data) != 4:
            return None
        value: int = struct.unpack(self.endian + "I", s.data)[0]
        return value

    def __repr__(self) -> str:
        return f"<ElfFile {self.path or '<bytes>'}: {len(self.sections)} sections>"
