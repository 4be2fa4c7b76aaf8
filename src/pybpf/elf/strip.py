"""Debug information out of a BPF object, as ``llvm-strip -g`` would take it.

A generated Python skeleton embeds its object.  clang's ``-g`` (needed: it is what produces
BTF) also writes DWARF, which is most of the file (execsnoop: 1 MB of 1.07 MB) and which
nothing at run time reads: libbpf and pybpf skip ``.debug_*`` sections by name.

The sections stay where they are and keep their names, but lose their contents: every other
section keeps its index, so symbols, relocations and ``sh_link``/``sh_info`` need no
renumbering, and the result opens, links and loads exactly as the input did.
"""

from __future__ import annotations

import struct

from pybpf.elf.constants import SHDR_SIZE, SectionType
from pybpf.elf.reader import ElfFile, Section

_EMPTY_TYPES = (SectionType.SHT_NULL, SectionType.SHT_NOBITS)


def is_debug_section(section: Section) -> bool:
    """DWARF, and the relocations that patch it."""
    name = section.name
    return name.startswith(".debug_") or name.startswith((".rel.debug_", ".rela.debug_"))


def strip_debug(data: bytes, path: str | None = None) -> bytes:
    """``data`` with the contents of its DWARF sections removed (see the module docstring)."""
    elf = ElfFile.from_bytes(data, path=path)
    e = elf.endian
    shoff = elf.header_offset(0)
    out = bytearray(data[:64])  # the ELF64 header; e_shoff is patched below
    headers = bytearray(data[shoff : shoff + len(elf.sections) * SHDR_SIZE])
    for section in elf.sections[1:]:
        at = section.index * SHDR_SIZE
        if section.type in _EMPTY_TYPES:
            continue  # no bytes in the file: offset and size are kept as they were
        if is_debug_section(section):
            struct.pack_into(e + "QQ", headers, at + 24, len(out), 0)  # sh_offset, sh_size
            continue
        align = max(section.addralign, 1)
        out += bytes(-len(out) % align)
        struct.pack_into(e + "Q", headers, at + 24, len(out))
        out += section.data
    out += bytes(-len(out) % 8)
    struct.pack_into(e + "Q", out, 40, len(out))  # e_shoff
    out += headers
    return bytes(out)
