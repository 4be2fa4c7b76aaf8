"""The ELF reader and writer facing hostile files: bounded cost, errors that point at the bytes.

Section headers are cheap to forge and each one's contents used to be copied out of the file,
so overlapping sections multiplied a small file into gigabytes; they are refused now.  Every
:class:`ElfError` names the file and the offset of the faulty field, which the mutation run
at the end checks over thousands of header edits.  Files are built by hand here (a header,
the contents, a name table and section headers), not by the writer under test.
"""

from __future__ import annotations

import random
import struct
import time
import tracemalloc

import pytest

from conftest import compile_bpf
from pybpf.elf import ElfFile, Relocation, SectionType, SymbolType
from pybpf.elf.writer import ElfWriter, WSymbol, rewrite
from pybpf.errors import ElfError

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
SHDR = struct.Struct("<IIQQQQIIQQ")
SYM = struct.Struct("<IBBHQQ")
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS, SHT_REL = 1, 2, 3, 8, 9
SHT_SYMTAB_SHNDX = 18
SHN_XINDEX = 0xFFFF


def build(
    body: bytes, headers: list[tuple[int, int, int, int, int, int]], names: bytes
) -> tuple[bytes, int]:
    """An ELF64 EM_BPF ET_REL image: ``body`` at offset 64, the name table ``names`` after
    it, then the section headers ``(name_off, type, offset, size, link, info)``; the name
    table is added as the last section.  Returns the image and ``e_shoff``."""
    strtab_off = 64 + len(body)
    shoff = strtab_off + len(names)
    shoff += -shoff % 8
    rows = [(0, 0, 0, 0, 0, 0), *headers, (1, SHT_STRTAB, strtab_off, len(names), 0, 0)]
    image = bytearray(EHDR.size) + body + names + bytes(shoff - strtab_off - len(names))
    for name, sh_type, off, size, link, info in rows:
        image += SHDR.pack(name, sh_type, 0, 0, off, size, link, info, 1, 0)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    EHDR.pack_into(
        image, 0, ident, 1, 247, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(rows), len(rows) - 1
    )
    return bytes(image), shoff


NAMES = b"\0.strtab\0.x\0.symtab\0.rel.x\0"
X, SYMTAB, REL_X = NAMES.index(b".x"), NAMES.index(b".symtab"), NAMES.index(b".rel.x")


def parse_cost(image: bytes) -> tuple[ElfError | None, float, int]:
    tracemalloc.start()
    start = time.monotonic()
    error = None
    try:
        ElfFile.from_bytes(image, path="evil.o")
    except ElfError as exc:
        error = exc
    elapsed = time.monotonic() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, elapsed, peak


# ------------------------------------------------------------------------- overlapping sections


def test_a_thousand_sections_over_the_same_bytes_cost_nothing() -> None:
    """257 KiB of file, 1000 headers naming the same 256 KiB: that was 256 MiB of copies."""
    size = 256 * 1024
    image, shoff = build(bytes(size), [(X, SHT_PROGBITS, 64, size, 0, 0)] * 1000, NAMES)
    assert len(image) < 330 * 1024
    error, elapsed, peak = parse_cost(image)
    assert error is not None and "overlap" in error.reason
    assert str(error).startswith("evil.o: ")
    assert error.offset == shoff + 2 * SHDR.size + 24  # sh_offset of the second of them
    assert elapsed < 1.0
    assert peak < 8 * 1024 * 1024


def test_sliding_overlaps_are_refused_too() -> None:
    """Each header one byte further on: no two ranges equal, every one overlapping."""
    size = 64 * 1024
    headers = [(X, SHT_PROGBITS, 64 + i, size, 0, 0) for i in range(500)]
    error, elapsed, peak = parse_cost(build(bytes(size + 500), headers, NAMES)[0])
    assert error is not None and "overlap" in error.reason
    assert elapsed < 1.0 and peak < 8 * 1024 * 1024


def test_empty_and_nobits_sections_may_share_offsets() -> None:
    """What clang writes: ``.bss`` (no bytes in the file) and empty sections sit at the
    offset of the next section; adjacent sections touch without overlapping."""
    headers = [
        (X, SHT_NOBITS, 64, 4096, 0, 0),
        (X, SHT_PROGBITS, 64, 0, 0, 0),
        (X, SHT_PROGBITS, 64, 8, 0, 0),
        (X, SHT_PROGBITS, 72, 8, 0, 0),
    ]
    elf = ElfFile.from_bytes(build(bytes(range(16)), headers, NAMES)[0], path="ok.o")
    assert [s.data for s in elf.sections[1:5]] == [b"", b"", bytes(range(8)), bytes(range(8, 16))]
    assert elf.sections[1].size == 4096


def test_section_data_is_bytes_for_every_caller() -> None:
    elf = ElfFile.open(compile_bpf("link_lib1"))
    assert all(type(s.data) is bytes for s in elf.sections)
    assert elf.license == "GPL"


# ------------------------------------------------------------------------- where errors point


def test_bad_section_name_points_at_its_header() -> None:
    image, shoff = build(b"", [(999, SHT_PROGBITS, 64, 0, 0, 0)], NAMES)
    with pytest.raises(ElfError) as err:
        ElfFile.from_bytes(image, path="names.o")
    assert err.value.offset == shoff + SHDR.size  # sh_name of section 1
    assert str(err.value).startswith("names.o: section .shstrtab: offset ")
    assert "name of section 1: string offset 999 out of range" in str(err.value)


def _symtab_image(
    symbols: list[tuple[int, int, int, int]],
    extra: list[tuple[int, int, int, int, int, int]],
    tail: bytes = b"",
) -> bytes:
    """Section 1 ``.x`` (8 bytes at 64), section 2 ``.symtab`` at 72 with ``(name, info,
    shndx, value)`` rows after the null symbol, linked to the name table; then ``tail`` and
    the ``extra`` headers."""
    syms = bytes(SYM.size) + b"".join(SYM.pack(n, i, 0, s, v, 0) for n, i, s, v in symbols)
    headers = [
        (X, SHT_PROGBITS, 64, 8, 0, 0),
        (SYMTAB, SHT_SYMTAB, 72, len(syms), 3 + len(extra), 0),
        *extra,
    ]
    return build(bytes(8) + syms + tail, headers, NAMES)[0]


def test_symbol_with_extended_index_but_no_index_table() -> None:
    image = _symtab_image([(X, SymbolType.STT_SECTION, SHN_XINDEX, 0)], [])
    with pytest.raises(ElfError) as err:
        ElfFile.from_bytes(image, path="x.o")
    assert err.value.offset == 72 + SYM.size + 6  # st_shndx of symbol 1
    assert "SHN_XINDEX" in str(err.value) and str(err.value).startswith("x.o: section .symtab")


def _xindex_image(section: int) -> bytes:
    """Symbol 1 has ``SHN_XINDEX``; the index table right after the symbols gives
    ``section``."""
    table_off = 72 + 2 * SYM.size
    return _symtab_image(
        [(X, SymbolType.STT_SECTION, SHN_XINDEX, 0)],
        [(X, SHT_SYMTAB_SHNDX, table_off, 8, 2, 0)],
        struct.pack("<II", 0, section),
    )


def test_extended_index_out_of_range() -> None:
    with pytest.raises(ElfError, match="extended section index 4660 out of range"):
        ElfFile.from_bytes(_xindex_image(4660), path="x.o")


def test_extended_index_in_range_is_resolved() -> None:
    assert ElfFile.from_bytes(_xindex_image(1)).symbols[1].shndx == 1


def test_symbol_table_link_points_at_its_field() -> None:
    image = _symtab_image([], [])
    (shoff,) = struct.unpack_from("<Q", image, 40)
    patched = bytearray(image)
    struct.pack_into("<I", patched, shoff + 2 * SHDR.size + 40, 77)
    with pytest.raises(ElfError) as err:
        ElfFile.from_bytes(bytes(patched), path="x.o")
    assert err.value.offset == shoff + 2 * SHDR.size + 40
    assert "string table index 77" in str(err.value)


def test_relocations_need_a_symbol_table() -> None:
    """Relocation 0 naming symbol 0 used to pass in a file without symbols, leaving callers
    an IndexError on ``elf.symbols[0]``."""
    rel = struct.pack("<QQ", 0, 1)
    image = build(
        bytes(8) + rel, [(X, SHT_PROGBITS, 64, 8, 0, 0), (REL_X, SHT_REL, 72, 16, 0, 1)], NAMES
    )[0]
    with pytest.raises(ElfError, match=r"x\.o: section \.rel\.x: offset 0x48: relocation 0"):
        ElfFile.from_bytes(image, path="x.o")


def test_relocated_section_out_of_range_points_at_sh_info() -> None:
    rel = struct.pack("<QQ", 0, 1)
    image, shoff = build(rel, [(REL_X, SHT_REL, 64, 16, 0, 9)], NAMES)
    with pytest.raises(ElfError) as err:
        ElfFile.from_bytes(image, path="x.o")
    assert err.value.offset == shoff + SHDR.size + 44


# ------------------------------------------------------------------------- the writer


@pytest.mark.parametrize("align", [3, 8192, 1 << 30])
def test_writer_refuses_absurd_alignments(align: int) -> None:
    w = ElfWriter()
    w.add_strtab()
    with pytest.raises(ElfError, match=rf"section \.data: alignment {align}"):
        w.add_section(".data", SectionType.SHT_PROGBITS, 0, b"x", addralign=align)


def test_rewriting_a_file_that_claims_a_huge_alignment_is_refused_quickly() -> None:
    """rewrite() pads to each section's alignment: 1 GiB of padding from one header field."""
    data = bytearray(compile_bpf("link_lib1").read_bytes())
    elf = ElfFile.from_bytes(bytes(data))
    (shoff,) = struct.unpack_from("<Q", data, 40)
    index = elf.section(".data").index  # type: ignore[union-attr]
    struct.pack_into("<Q", data, shoff + index * SHDR.size + 48, 1 << 30)
    start = time.monotonic()
    with pytest.raises(ElfError, match=r"section \.data: alignment 1073741824"):
        rewrite(ElfFile.from_bytes(bytes(data)))
    assert time.monotonic() - start < 1.0


def test_writer_output_still_reads_back() -> None:
    w = ElfWriter()
    w.add_strtab()
    w.add_symtab()
    text = w.add_section(".text", SectionType.SHT_PROGBITS, 6, bytes(16), addralign=4096)
    w.symbols.append(WSymbol("f", 0, 16, 1, SymbolType.STT_FUNC, 0, text))
    w.add_relocations(text, [Relocation(0, 1, 1)])
    elf = ElfFile.from_bytes(w.to_bytes())
    assert elf.sections[text].addralign == 4096 and elf.sections[text].offset % 4096 == 0
    assert elf.relocations_for(text)[0].symbol == 1


# ------------------------------------------------------------------------- mutation run


def test_every_header_error_names_the_file_and_an_offset() -> None:
    """Edits of header and section-header fields (where offsets used to be missing)."""
    rng = random.Random("pybpf-elf-hostile")
    missing: list[str] = []
    errors = 0
    for name in ("link_lib1", "obj_maps", "elf_basic"):
        data = compile_bpf(name).read_bytes()
        (shoff,) = struct.unpack_from("<Q", data, 40)
        (shnum,) = struct.unpack_from("<H", data, 60)
        for i in range(1000):
            buf = bytearray(data)
            width = rng.choice((1, 2, 4, 8))
            pos = rng.randrange(64) if i % 2 else shoff + rng.randrange(shnum * SHDR.size)
            pos -= pos % width
            value = rng.choice((0, 1, 0xFF, rng.getrandbits(8 * width), (1 << 8 * width) - 1))
            buf[pos : pos + width] = value.to_bytes(width, "little")
            try:
                ElfFile.from_bytes(bytes(buf), path=f"{name}.o")
            except ElfError as exc:
                errors += 1
                if exc.offset is None or not str(exc).startswith(f"{name}.o: "):
                    missing.append(f"{name} @{pos:#x}={value:#x}: {exc}")
    assert errors > 500
    assert missing == []
