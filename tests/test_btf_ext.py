""".BTF.ext parsing checked against ground truth from the ELF, DWARF and the C sources."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from conftest import FIXTURES, compile_bpf
from pybpf import BpfError
from pybpf.btf import Btf, BtfKind
from pybpf.btf.ext import BtfExt, CoreReloKind, LineInfo
from test_btf_model import FIXTURE_NAMES, elf_section

DWARFDUMP = shutil.which("llvm-dwarfdump-16")


def load(name: str) -> tuple[Path, Btf, BtfExt]:
    path = compile_bpf(name)
    btf = Btf.from_bytes(elf_section(path, ".BTF"), file=str(path))
    return path, btf, BtfExt.from_bytes(elf_section(path, ".BTF.ext"), btf, file=str(path))


def string_table(btf: Btf) -> dict[str, int]:
    """Every string of the .BTF string section -> its first offset (what clang references)."""
    offsets: dict[str, int] = {}
    data = btf.string_bytes
    off = 0
    while off < len(data):
        end = data.index(0, off)
        offsets.setdefault(data[off:end].decode(), off)
        off = end + 1
    return offsets


def elf_functions(path: Path) -> dict[tuple[str, int], str]:
    """(section name, byte offset) -> name of every STT_FUNC symbol, read with pyelftools."""
    with path.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        funcs = {}
        for sym in symtab.iter_symbols():
            if sym["st_info"]["type"] == "STT_FUNC":
                section = elf.get_section(sym["st_shndx"]).name
                funcs[(section, sym["st_value"])] = sym.name
        return funcs


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_func_info_names_the_elf_functions(name: str) -> None:
    path, btf, ext = load(name)
    from_btf = {}
    for section, records in ext.func_info.items():
        assert [r.insn_off for r in records] == sorted(r.insn_off for r in records)
        for r in records:
            assert btf.kind_of(r.type_id) == BtfKind.FUNC
            assert r.insn_idx * 8 == r.insn_off
            from_btf[(section, r.insn_off)] = btf.name_of(r.type_id)
    assert from_btf == elf_functions(path)


def dwarf_rows(path: Path) -> list[tuple[int, int, int]]:
    """(address, line, column) of every DWARF line-table row (llvm-dwarfdump is the oracle)."""
    if DWARFDUMP is None:
        pytest.skip("llvm-dwarfdump-16 missing")
    out = subprocess.run(
        [DWARFDUMP, "--debug-line", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return [
        (int(m[1], 16), int(m[2]), int(m[3]))
        for m in re.finditer(r"^0x([0-9a-f]{16})\s+(\d+)\s+(\d+)\s", out, re.MULTILINE)
    ]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_line_info_matches_dwarf_and_source(name: str) -> None:
    path, btf, ext = load(name)
    source = (FIXTURES / f"{name}.bpf.c").read_text().splitlines()
    rows = set(dwarf_rows(path))
    total = 0
    for section, records in ext.line_info.items():
        starts = {f.insn_off: btf.name_of(f.type_id) for f in ext.func_info[section]}
        for r in records:
            assert Path(r.file_name).name == f"{name}.bpf.c"
            if r.line_num == 0:  # compiler-generated code: clang records no line text
                assert (r.line, r.line_col) == ("", 0)
                continue
            assert r.line == source[r.line_num - 1]
            if r.insn_off in starts and r.line_col == 0:
                # A function's first record is its declaration line, where DWARF has '{'.
                assert starts[r.insn_off] in r.line
            else:
                assert (r.insn_off, r.line_num, r.line_col) in rows
            total += 1
    assert total >= 20
    assert set(ext.line_info) == set(ext.func_info)


CORE_NOTE = re.compile(r"/\* CORE (.*?) \*/")


def expected_core(line: str) -> set[tuple[CoreReloKind, str, str]]:
    """Parse the fixture's ``/* CORE kinds type access [/ kinds type access] */`` notes."""
    out = set()
    for note in CORE_NOTE.findall(line):
        for part in note.split("/"):
            kinds, type_name, access = part.split()
            out |= {(CoreReloKind(int(k)), type_name, access) for k in kinds.split(",")}
    return out


def test_core_relos_match_the_annotated_source() -> None:
    # Instruction scheduling moves relocated instructions across source lines, so records are
    # matched as a set against the notes rather than line by line.
    _, btf, ext = load("btfkinds_core")
    source = (FIXTURES / "btfkinds_core.bpf.c").read_text()
    (section,) = ext.core_relos
    records = ext.core_relos[section]
    got = {(r.kind, btf.name_of(r.type_id), r.access_str) for r in records}
    assert got == expected_core(source)
    assert {r.kind for r in records} == set(CoreReloKind)
    assert [r.insn_off for r in records] == sorted(r.insn_off for r in records)
    for r in records:
        assert r.insn_off % 8 == 0 and r.insn_idx == r.insn_off // 8
        assert r.access_spec == tuple(int(x) for x in r.access_str.split(":"))
        if r.kind.is_field_based:
            assert btf.kind_of(r.type_id) == BtfKind.STRUCT
        elif r.kind.is_enumval_based:
            assert btf.kind_of(r.type_id) == BtfKind.ENUM


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_encoding_reproduces_clang_bytes(name: str) -> None:
    path, btf, ext = load(name)
    strings = string_table(btf)
    assert ext.to_bytes(strings.__getitem__) == elf_section(path, ".BTF.ext")


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_big_endian_round_trip(name: str) -> None:
    _, btf, ext = load(name)
    strings = string_table(btf)
    data = ext.to_bytes(strings.__getitem__, big_endian=True)
    assert data[:2] == b"\xeb\x9f"
    assert BtfExt.from_bytes(data, btf) == ext


def test_larger_record_sizes_are_read_forward_compatibly() -> None:
    """A future compiler may append fields to records: the record size in the file wins."""
    _, btf, ext = load("btfkinds_core")
    strings = string_table(btf)
    pad = b"\xaa" * 8

    def block(table: Mapping[str, Sequence[Any]], size: int, enc: Callable[[Any], bytes]) -> bytes:
        out = struct.pack("<I", size + len(pad))
        for sec, records in table.items():
            out += struct.pack("<II", strings[sec], len(records))
            out += b"".join(enc(r) + pad for r in records)
        return out

    fi = block(ext.func_info, 8, lambda r: struct.pack("<II", r.insn_off, r.type_id))
    li = block(
        ext.line_info,
        16,
        lambda r: struct.pack(
            "<IIII",
            r.insn_off,
            strings[r.file_name],
            strings[r.line],
            r.line_num << 10 | r.line_col,
        ),
    )
    cr = block(
        ext.core_relos,
        16,
        lambda r: struct.pack("<IIII", r.insn_off, r.type_id, strings[r.access_str], r.kind),
    )
    header = struct.pack(
        "<HBBIIIIIII", 0xEB9F, 1, 0, 40, 0, len(fi), len(fi), len(li), len(fi) + len(li), len(cr)
    ) + bytes(8)  # longer header, zero tail
    assert BtfExt.from_bytes(header + fi + li + cr, btf) == ext


def test_old_header_without_core_relos() -> None:
    _, btf, ext = load("btfkinds")
    data = bytearray(ext.to_bytes(string_table(btf).__getitem__))
    struct.pack_into("<I", data, 4, 24)
    # Offsets are relative to the header's end: moving it 8 bytes back shifts them by 8.
    fi_off, fi_len, li_off, li_len = struct.unpack_from("<IIII", data, 8)
    struct.pack_into("<IIII", data, 8, fi_off + 8, fi_len, li_off + 8, li_len)
    parsed = BtfExt.from_bytes(bytes(data), btf)
    assert parsed.func_info == ext.func_info and parsed.line_info == ext.line_info
    assert parsed.core_relos == {}


def test_sections_and_helpers() -> None:
    _, btf, ext = load("btfkinds")
    assert ext.sections() == [".text", "tp/syscalls/sys_enter_getpid"]
    assert BtfExt().to_bytes(lambda s: 0)[:8] == struct.pack("<HBBI", 0xEB9F, 1, 0, 32)
    assert BtfExt.from_bytes(BtfExt().to_bytes(lambda s: 0), btf) == BtfExt()
    assert CoreReloKind.FIELD_RSHIFT_U64.is_field_based
    assert not CoreReloKind.TYPE_SIZE.is_field_based
    assert CoreReloKind.ENUMVAL_VALUE.is_enumval_based


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (lambda d: struct.pack_into("<H", d, 0, 0x1234), "offset 0x0: bad magic"),
        (lambda d: struct.pack_into("<B", d, 2, 2), "unsupported version 2"),
        (lambda d: struct.pack_into("<I", d, 4, 12), "bad header length 12"),
        (lambda d: struct.pack_into("<I", d, 12, 1 << 20), "func_info block"),
        (lambda d: struct.pack_into("<I", d, 32, 4), "func_info record size 4 invalid"),
        (lambda d: struct.pack_into("<I", d, 36, 1 << 30), "func_info section name: string"),
        (lambda d: struct.pack_into("<I", d, 40, 0), "has no records"),
        (lambda d: struct.pack_into("<I", d, 40, 1000), "has 1000 records"),
    ],
)
def test_corrupt_ext_is_reported_with_location(
    patch: Callable[[bytearray], None], message: str
) -> None:
    path, btf, _ = load("btfkinds")
    data = bytearray(elf_section(path, ".BTF.ext"))
    patch(data)
    with pytest.raises(BpfError, match=re.escape(message)) as info:
        BtfExt.from_bytes(bytes(data), btf, file=str(path))
    assert str(path) in str(info.value) and "section .BTF.ext" in str(info.value)


def test_bad_core_records_are_reported() -> None:
    _, btf, ext = load("btfkinds_core")
    strings = string_table(btf)
    data = bytearray(ext.to_bytes(strings.__getitem__))
    (cr_off,) = struct.unpack_from("<I", data, 24)
    first = 32 + cr_off + 4 + 8
    bad_kind = bytearray(data)
    struct.pack_into("<I", bad_kind, first + 12, 99)
    with pytest.raises(BpfError, match="unknown relocation kind 99"):
        BtfExt.from_bytes(bytes(bad_kind), btf)
    bad_type = bytearray(data)
    struct.pack_into("<I", bad_type, first + 4, 10**6)
    with pytest.raises(BpfError, match="type id 1000000 out of range"):
        BtfExt.from_bytes(bytes(bad_type), btf)
    bad_access = bytearray(data)
    struct.pack_into("<I", bad_access, first + 8, strings["bkc_task"])
    with pytest.raises(BpfError, match="malformed access string 'bkc_task'"):
        BtfExt.from_bytes(bytes(bad_access), btf)


def test_unencodable_values_are_errors() -> None:
    ext = BtfExt(line_info={".text": (LineInfo(0, "f.c", "x", 1 << 23, 0),)})
    with pytest.raises(BpfError, match="cannot encode"):
        ext.to_bytes(lambda s: 0)
