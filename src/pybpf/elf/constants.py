"""ELF constants pybpf needs, named as in ``elf.h``."""

from __future__ import annotations

from enum import IntEnum, IntFlag

ELF_MAGIC = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2
EV_CURRENT = 1
EM_BPF = 247
EHDR_SIZE = 64
SHDR_SIZE = 64
SYM_SIZE = 24
REL_SIZE = 16
RELA_SIZE = 24
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF

MAX_SECTION_ALIGN = 4096
"""The largest ``sh_addralign`` pybpf honours (the page size).  The kernel places no BPF
object's bytes at a stricter alignment than a page (mmapable global data starts on a page), so
a larger value is corrupt input, and padding to it could make a small file enormous."""


class ElfType(IntEnum):
    ET_NONE = 0
    ET_REL = 1
    ET_EXEC = 2
    ET_DYN = 3
    ET_CORE = 4


class SectionType(IntEnum):
    SHT_NULL = 0
    SHT_PROGBITS = 1
    SHT_SYMTAB = 2
    SHT_STRTAB = 3
    SHT_RELA = 4
    SHT_HASH = 5
    SHT_DYNAMIC = 6
    SHT_NOTE = 7
    SHT_NOBITS = 8
    SHT_REL = 9
    SHT_DYNSYM = 11
    SHT_INIT_ARRAY = 14
    SHT_FINI_ARRAY = 15
    SHT_GROUP = 17
    SHT_SYMTAB_SHNDX = 18
    SHT_LLVM_ADDRSIG = 0x6FFF4C03
    SHT_GNU_VERSYM = 0x6FFFFFFF


class SectionFlags(IntFlag):
    NONE = 0
    SHF_WRITE = 0x1
    SHF_ALLOC = 0x2
    SHF_EXECINSTR = 0x4
    SHF_MERGE = 0x10
    SHF_STRINGS = 0x20
    SHF_INFO_LINK = 0x40
    SHF_EXCLUDE = 0x80000000


class SymbolBinding(IntEnum):
    STB_LOCAL = 0
    STB_GLOBAL = 1
    STB_WEAK = 2


class SymbolType(IntEnum):
    STT_NOTYPE = 0
    STT_OBJECT = 1
    STT_FUNC = 2
    STT_SECTION = 3
    STT_FILE = 4
    STT_COMMON = 5
    STT_TLS = 6


class SymbolVisibility(IntEnum):
    STV_DEFAULT = 0
    STV_INTERNAL = 1
    STV_HIDDEN = 2
    STV_PROTECTED = 3


class BpfReloc(IntEnum):
    """``R_BPF_*`` relocation types."""

    R_BPF_NONE = 0
    R_BPF_64_64 = 1
    R_BPF_64_ABS64 = 2
    R_BPF_64_ABS32 = 3
    R_BPF_64_NODYLD32 = 4
    R_BPF_64_32 = 10
