"""Opening a BPF object: pybpf's own ELF reader vs pyelftools (the choice behind ``pybpf.elf``).

Both read the section headers, every section's bytes, the symbol table and the relocations,
which is what opening a BPF object needs.
"""

from __future__ import annotations

import io

from benchmarks.common import BUILD, REPO, compile_bpf, report, timeit


def _pyelftools_open(data: bytes) -> int:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection

    elf = ELFFile(io.BytesIO(data))
    count = 0
    for section in elf.iter_sections():
        if section["sh_type"] != "SHT_NOBITS":
            count += len(section.data())
        if section.name == ".symtab":
            count += sum(1 for _ in section.iter_symbols())
        if isinstance(section, RelocationSection):
            count += sum(1 for _ in section.iter_relocations())
    return count


def main() -> None:
    from pybpf.elf import ElfFile

    obj = compile_bpf(REPO / "tests/fixtures/elf_basic.bpf.c", BUILD / "elf_basic.bpf.o")
    data = obj.read_bytes()
    ours = timeit(lambda: ElfFile.from_bytes(data), repeat=7, number=200)
    theirs = timeit(lambda: _pyelftools_open(data), repeat=7, number=50)
    report(
        f"open {obj.name} ({len(data)} bytes)",
        [
            ("pybpf.elf.ElfFile", ours * 1e6, "us"),
            ("pyelftools ELFFile", theirs * 1e6, "us"),
            ("ratio pyelftools/pybpf", theirs / ours, "x"),
        ],
    )


if __name__ == "__main__":
    main()
