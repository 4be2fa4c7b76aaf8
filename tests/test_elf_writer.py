"""ELF writer: read -> write -> read is the identity on the model, and libbpf accepts the bytes.

Oracles: our reader (itself checked against pyelftools in test_elf.py) for the model
round-trip; readelf-independent acceptance by *libbpf*: objects rewritten by us are linked by
``bpftool gen object`` (libbpf's linker parses every section, symbol and relocation) and
loaded through a bpftool skeleton on system libbpf, with the programs computing the values
the sources say.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import bpftool, compile_bpf, requires_root
from pybpf import ElfError
from pybpf.elf import ElfFile, Relocation, SectionType
from pybpf.elf.constants import SectionFlags, SymbolBinding, SymbolType
from pybpf.elf.writer import ElfWriter, WSymbol, rewrite
from pybpf.linker import link_objects
from test_linker import EXPECTED, FIXTURE_SET, run_skeleton_driver

GENERATED = (SectionType.SHT_STRTAB, SectionType.SHT_SYMTAB, SectionType.SHT_REL)


def _sections(elf: ElfFile) -> list[tuple[object, ...]]:
    return [
        (
            s.name,
            s.type,
            int(s.flags),
            s.link,
            s.info,
            s.addralign,
            s.entsize,
            # string tables are regenerated (clang shares suffixes, we do not)
            s.size if s.type != SectionType.SHT_STRTAB else None,
            s.data if s.type not in GENERATED else b"",
        )
        for s in elf.sections
    ]


def _symbols(elf: ElfFile) -> list[tuple[object, ...]]:
    return [
        (s.index, s.name, s.value, s.size, s.binding, s.type, s.visibility, s.shndx)
        for s in elf.symbols
    ]


def _relocations(elf: ElfFile) -> list[tuple[object, ...]]:
    return [(r.section.name, r.target, r.relocations) for r in elf.relocation_sections]


@pytest.mark.parametrize("name", [*FIXTURE_SET, "link_err"])
def test_round_trip_keeps_sections_symbols_and_relocations(name: str) -> None:
    if name == "link_err":
        path = compile_bpf(
            name, "-DSTRONG", "-DPROG=p", '-DLICENSE_TEXT="GPL"', out_name="link_err_rt"
        )
    else:
        path = compile_bpf(name)
    original = ElfFile.open(path)
    again = ElfFile.from_bytes(rewrite(original))
    assert _sections(again) == _sections(original)
    assert _symbols(again) == _symbols(original)
    assert _relocations(again) == _relocations(original)
    assert original.relocation_sections  # the fixture really has relocations


def test_round_trip_of_a_linked_object_and_determinism() -> None:
    linked = link_objects([compile_bpf(n) for n in FIXTURE_SET])
    elf = ElfFile.from_bytes(linked)
    data = rewrite(elf)
    assert data == linked  # our linker's output is already in the writer's canonical form
    assert rewrite(ElfFile.from_bytes(data)) == data


@pytest.mark.kernel
@requires_root
def test_rewritten_inputs_link_with_libbpf_and_run(tmp_path: Path) -> None:
    rewritten = []
    for name in FIXTURE_SET:
        path = tmp_path / f"{name}.o"
        path.write_bytes(rewrite(ElfFile.open(compile_bpf(name))))
        rewritten.append(path)
    # bpftool 7.1 links "strong first" correctly (see test_linker).
    order = [rewritten[1], rewritten[0], rewritten[2]]
    linked = tmp_path / "bpftool-linked.o"
    bpftool("gen", "object", linked, *order)
    assert run_skeleton_driver(linked, tmp_path / "b") == EXPECTED


@pytest.mark.kernel
@requires_root
def test_rewritten_linked_object_loads_with_libbpf(tmp_path: Path) -> None:
    linked = link_objects([compile_bpf(n) for n in FIXTURE_SET])
    path = tmp_path / "rewritten.o"
    path.write_bytes(rewrite(ElfFile.from_bytes(linked)))
    assert run_skeleton_driver(path, tmp_path) == EXPECTED


def test_writer_builds_a_minimal_object() -> None:
    w = ElfWriter()
    text = w.add_section(
        "xdp",
        SectionType.SHT_PROGBITS,
        SectionFlags.SHF_ALLOC | SectionFlags.SHF_EXECINSTR,
        bytes.fromhex("b7000000020000009500000000000000"),
        addralign=8,
    )
    bss = w.add_section(
        ".bss", SectionType.SHT_NOBITS, SectionFlags.SHF_WRITE, size=16, addralign=8
    )
    w.add_strtab()
    w.add_symtab()
    w.symbols += [
        WSymbol("", 0, 0, SymbolBinding.STB_LOCAL, SymbolType.STT_SECTION, 0, bss),
        WSymbol("prog", 0, 16, SymbolBinding.STB_GLOBAL, SymbolType.STT_FUNC, 0, text),
    ]
    w.add_relocations(text, [Relocation(0, 1, 1)])
    elf = ElfFile.from_bytes(w.to_bytes())
    assert [s.name for s in elf.sections] == ["", "xdp", ".bss", ".strtab", ".symtab", ".relxdp"]
    assert elf.section(".bss").size == 16  # type: ignore[union-attr]
    assert elf.symbols[1].name == ".bss" and elf.symbols[2].name == "prog"
    assert elf.sections[4].info == 2  # one past the last local
    assert elf.relocations_for(text) == (Relocation(0, 1, 1),)


def test_writer_refuses_bad_references() -> None:
    w = ElfWriter()
    w.add_strtab()
    w.add_symtab()
    sec = w.add_section("s", SectionType.SHT_PROGBITS, 0, b"\0" * 8)
    w.add_relocations(sec, [Relocation(0, 1, 5)])
    with pytest.raises(ElfError, match="symbol 5"):
        w.to_bytes()
    with pytest.raises(ElfError, match="does not exist"):
        ElfWriter().add_relocations(3, [])
    with pytest.raises(ElfError, match="string table"):
        ElfWriter().to_bytes()
