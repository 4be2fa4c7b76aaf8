"""ELF reader: differential against pyelftools, plus malformed-input behaviour."""

from __future__ import annotations

import contextlib
import random
import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection as PyRelocationSection

from conftest import compile_bpf
from pybpf import BpfError, ElfError
from pybpf.elf import ElfFile, SectionType


@pytest.fixture(scope="module")
def obj_path() -> Path:
    return compile_bpf("elf_basic")


def test_sections_match_pyelftools(obj_path: Path) -> None:
    ours = ElfFile.open(obj_path)
    with obj_path.open("rb") as f:
        ref = ELFFile(f)
        assert len(ours.sections) == ref.num_sections()
        for mine, theirs in zip(ours.sections, ref.iter_sections(), strict=True):
            assert mine.name == theirs.name
            assert mine.type == _sh_type(theirs["sh_type"])
            assert mine.flags == theirs["sh_flags"]
            assert mine.size == theirs["sh_size"]
            assert mine.addralign == theirs["sh_addralign"]
            assert mine.link == theirs["sh_link"]
            assert mine.info == theirs["sh_info"]
            if theirs["sh_type"] != "SHT_NOBITS":
                assert mine.data == theirs.data()


def _sh_type(value: str | int) -> int:
    if isinstance(value, int):
        return value
    return int(SectionType[value]) if value in SectionType.__members__ else -1


def test_symbols_match_pyelftools(obj_path: Path) -> None:
    ours = ElfFile.open(obj_path)
    with obj_path.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        theirs = list(symtab.iter_symbols())
    assert len(ours.symbols) == len(theirs)
    binds = {"STB_LOCAL": 0, "STB_GLOBAL": 1, "STB_WEAK": 2}
    for mine, ref in zip(ours.symbols, theirs, strict=True):
        if ref["st_info"]["type"] != "STT_SECTION":
            assert mine.name == ref.name
        assert mine.value == ref["st_value"]
        assert mine.size == ref["st_size"]
        assert mine.binding == binds[ref["st_info"]["bind"]]
        shndx = ref["st_shndx"]
        expected = {"SHN_UNDEF": 0, "SHN_ABS": 0xFFF1, "SHN_COMMON": 0xFFF2}.get(shndx, shndx)
        assert mine.shndx == expected


def test_weak_extern_and_static_symbols(obj_path: Path) -> None:
    elf = ElfFile.open(obj_path)
    weak = elf.symbol_named("weak_default")
    assert weak is not None and weak.is_weak and not weak.is_extern
    ext = elf.symbol_named("defined_elsewhere")
    assert ext is not None and ext.is_extern
    hidden = elf.symbol_named("hidden_counter")
    assert hidden is not None and not hidden.is_global
    assert elf.license == "GPL"


def test_relocations_match_pyelftools(obj_path: Path) -> None:
    ours = ElfFile.open(obj_path)
    with obj_path.open("rb") as f:
        ref = ELFFile(f)
        for section in ref.iter_sections():
            if not isinstance(section, PyRelocationSection):
                continue
            target = section["sh_info"]
            mine = ours.relocations_for(target)
            theirs = list(section.iter_relocations())
            assert len(mine) == len(theirs), section.name
            for r, t in zip(mine, theirs, strict=True):
                assert r.offset == t["r_offset"]
                assert r.type == t["r_info_type"]
                assert r.symbol == t["r_info_sym"]


def test_open_from_bytes_equals_open_from_path(obj_path: Path) -> None:
    a = ElfFile.open(obj_path)
    b = ElfFile.from_bytes(obj_path.read_bytes())
    assert [s.name for s in a.sections] == [s.name for s in b.sections]
    assert a.symbols == b.symbols


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d[:10], "truncated ELF header"),
        (lambda d: b"\x7fELG" + d[4:], "bad magic"),
        (lambda d: d[:4] + b"\x01" + d[5:], "not a 64-bit ELF"),
        (lambda d: d[:18] + struct.pack("<H", 62) + d[20:], "not a BPF object"),
        (lambda d: d[: len(d) // 2], "runs past end of file"),
    ],
)
def test_malformed_headers_name_the_problem(obj_path: Path, mutate: object, needle: str) -> None:
    data = obj_path.read_bytes()
    with pytest.raises(ElfError) as info:
        ElfFile.from_bytes(mutate(data), path="bad.o")  # type: ignore[operator]
    assert needle in str(info.value)
    assert str(info.value).startswith("bad.o")


def test_missing_file_is_an_elf_error(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match="cannot read"):
        ElfFile.open(tmp_path / "nope.o")


def test_mutation_fuzz_only_raises_bpf_errors(obj_path: Path) -> None:
    """Hundreds of truncations, bit flips and word overwrites: ElfError or success, nothing else."""
    data = obj_path.read_bytes()
    rng = random.Random(0xB9F)
    cases: list[bytes] = [data[:n] for n in range(0, len(data), max(1, len(data) // 150))]
    for _ in range(300):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(buf))
            if rng.random() < 0.5:
                buf[pos] ^= 1 << rng.randrange(8)
            else:
                pos -= pos % 4
                struct.pack_into("<I", buf, pos, rng.choice([0, 0xFFFFFFFF, rng.getrandbits(32)]))
        cases.append(bytes(buf))
    # Headers are where most of the structure is: hit them harder.
    for _ in range(200):
        buf = bytearray(data)
        pos = rng.randrange(64)
        buf[pos] = rng.randrange(256)
        cases.append(bytes(buf))
    for case in cases:
        with contextlib.suppress(BpfError):
            ElfFile.from_bytes(case, path="fuzz.o")
