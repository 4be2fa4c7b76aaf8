"""Robustness: corrupt objects raise :class:`BpfError`, never a raw Python exception.

Seeded mutations of the fixture objects: truncations anywhere, random bit flips anywhere, and
bit flips aimed at the sections the object model interprets (BTF, ``.maps``, symbols,
relocations, code), where a random flip of the whole file would rarely land.  Whatever
parses must also be printable by ``object show``.
"""

from __future__ import annotations

import random
import struct
import time

import pytest

from conftest import compile_bpf
from pybpf.elf import ElfFile
from pybpf.errors import BpfError, FormatError, ObjectError
from pybpf.obj import ObjectSpec
from pybpf.obj.show import format_object

SEEDS = ["obj_maps", "obj_data", "obj_progs"]
CASES_PER_SEED = 100
TARGETS = (".BTF", ".BTF.ext", ".maps", ".symtab", ".rel.maps", ".text", "license", ".strtab")
PER_CASE_SECONDS = 2.0


def _mutants(data: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    elf = ElfFile.from_bytes(data)
    spans = []
    for s in elf.sections:
        interesting = s.name in TARGETS or s.name.startswith(".rel") or s.is_exec
        if interesting and s.size and not s.is_nobits:
            spans.append((s.name, s.offset, s.size))
    out: list[tuple[str, bytes]] = []
    for i in range(CASES_PER_SEED):
        buf = bytearray(data)
        mode = i % 3
        if mode == 0:
            cut = rng.randrange(len(data))
            out.append((f"truncate@{cut}", bytes(buf[:cut])))
            continue
        if mode == 1:
            where = [rng.randrange(len(buf)) for _ in range(rng.randint(1, 8))]
            label = "flip-anywhere"
        else:
            name, start, size = rng.choice(spans)
            where = [start + rng.randrange(size) for _ in range(rng.randint(1, 4))]
            label = f"flip-in-{name}"
        for pos in where:
            buf[pos] ^= 1 << rng.randrange(8)
        out.append((f"{label}@{where}", bytes(buf)))
    return out


@pytest.mark.parametrize("seed_name", SEEDS)
def test_corrupt_objects_raise_only_bpf_errors(seed_name: str) -> None:
    data = compile_bpf(seed_name).read_bytes()
    rng = random.Random(f"pybpf-obj-{seed_name}")
    parsed = failed = 0
    for label, mutant in _mutants(data, rng):
        start = time.monotonic()
        try:
            spec = ObjectSpec.from_bytes(mutant, path=f"{seed_name}:{label}")
            format_object(spec)
            format_object(spec, as_json=True)
            parsed += 1
        except BpfError as exc:
            failed += 1
            assert f"{seed_name}:{label}" in str(exc) or "<bytes>" not in str(exc), str(exc)
        except Exception as exc:  # pragma: no cover - this is what the test hunts for
            raise AssertionError(f"{seed_name} {label}: {type(exc).__name__}: {exc}") from exc
        assert time.monotonic() - start < PER_CASE_SECONDS, label
    assert parsed + failed == CASES_PER_SEED
    assert failed > 0


def test_truncated_header_names_the_file() -> None:
    data = compile_bpf("obj_maps").read_bytes()
    with pytest.raises(BpfError, match=r"short\.o"):
        ObjectSpec.from_bytes(data[:40], path="short.o")


FIELD_SEEDS = ["obj_maps", "obj_data", "obj_progs", "load_globals"]
FIELD_CASES = 150
EDGE_VALUES = (0, 1, 2, 3, 7, 8, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 40, (1 << 64) - 1)


def _field_mutant(data: bytes, elf: ElfFile, rng: random.Random) -> tuple[str, bytes]:
    """One header field, symbol field, relocation field or BTF word set to an edge value.

    Whole-file bit flips rarely produce a *plausible* symbol or relocation that points
    somewhere wrong; setting one field to 0, -1 or just past a limit does.
    """
    buf = bytearray(data)
    value = rng.choice(EDGE_VALUES)
    mode = rng.randrange(4)
    if mode == 0:
        table = next(s for s in elf.sections if s.name == ".symtab")
        at, fmt = rng.choice([(0, "<I"), (4, "<B"), (6, "<H"), (8, "<Q"), (16, "<Q")])
        where = table.offset + 24 * rng.randrange(1, table.size // 24) + at
    elif mode == 1:
        rel = rng.choice([s for s in elf.sections if s.name.startswith(".rel") and s.size])
        at, fmt = rng.choice([(0, "<Q"), (8, "<I"), (12, "<I")])
        where = rel.offset + 16 * rng.randrange(rel.size // 16) + at
    elif mode == 2:
        at, fmt = rng.choice([(4, "<I"), (8, "<Q"), (24, "<Q"), (32, "<Q"), (40, "<I"), (44, "<I")])
        where = elf.header_offset(rng.randrange(1, len(elf.sections)), at)
    else:
        btf = rng.choice([s for s in elf.sections if s.name in (".BTF", ".BTF.ext")])
        at, fmt = 0, "<I"
        where = btf.offset + 4 * rng.randrange(btf.size // 4)
    struct.pack_into(fmt, buf, where, value & ((1 << (8 * struct.calcsize(fmt))) - 1))
    return f"{fmt}@{where:#x}={value:#x}", bytes(buf)


@pytest.mark.parametrize("seed_name", FIELD_SEEDS)
def test_edge_values_in_fields_raise_located_errors(seed_name: str) -> None:
    data = compile_bpf(seed_name).read_bytes()
    elf = ElfFile.from_bytes(data)
    rng = random.Random(f"pybpf-obj-fields-{seed_name}")
    for _ in range(FIELD_CASES):
        label, mutant = _field_mutant(data, elf, rng)
        try:
            format_object(ObjectSpec.from_bytes(mutant, path=f"{seed_name}.o"))
        except FormatError as exc:
            located = exc.section is not None or exc.offset is not None
            assert exc.file == f"{seed_name}.o" and located, f"{label}: {exc}"
        except Exception as exc:  # pragma: no cover - this is what the test hunts for
            raise AssertionError(f"{seed_name} {label}: {type(exc).__name__}: {exc}") from exc


def _var_linkage_at(data: bytes, name: str) -> int:
    """File offset of the ``linkage`` word of BTF VAR ``name`` (after its 12-byte header)."""
    btf = ElfFile.from_bytes(data).section(".BTF")
    assert btf is not None
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<5I", data, btf.offset + 4)
    types = btf.offset + hdr_len + type_off
    strings = data[btf.offset + hdr_len + str_off : btf.offset + hdr_len + str_off + str_len]
    name_off = strings.index(b"\0" + name.encode() + b"\0") + 1
    btf_kind_var = 14
    return data.index(struct.pack("<II", name_off, btf_kind_var << 24), types,
                      types + type_len) + 12


def test_an_extern_whose_btf_is_not_extern_names_the_symbol_and_section() -> None:
    data = bytearray(compile_bpf("load_globals").read_bytes())
    struct.pack_into("<I", data, _var_linkage_at(bytes(data), "LINUX_KERNEL_VERSION"), 1)
    with pytest.raises(ObjectError) as info:
        ObjectSpec.from_bytes(bytes(data), path="linkage.o")
    assert info.value.file == "linkage.o" and info.value.section == ".BTF"
    assert "extern 'LINUX_KERNEL_VERSION'" in str(info.value)


def test_a_map_var_without_its_elf_symbol_is_refused() -> None:
    """Found by the fuzzer: a ``.maps`` VAR renamed in the BTF only (same length).

    The object used to open with the map placed at its DATASEC offset, and a link of it gave
    an output that did not open ("map relocation ... finds no map"); libbpf refuses the input
    ("failed to find symbol for variable").
    """
    data = compile_bpf("obj_maps").read_bytes()
    btf = ElfFile.from_bytes(data).section(".BTF")
    assert btf is not None
    start = btf.offset
    at = data.index(b"\0om_array\0", start, start + btf.size) + 1
    renamed = data[:at] + b"om_arraX" + data[at + 8 :]
    with pytest.raises(ObjectError) as info:
        ObjectSpec.from_bytes(renamed, path="renamed.o")
    assert info.value.file == "renamed.o" and info.value.section == ".BTF"
    assert "'om_arraX' has no ELF symbol" in str(info.value)
