"""Corrupt BTF and .BTF.ext: every failure is a located `BtfError`, never a raw Python exception.

Hand-made corruptions check the message (what is wrong, and where); a seeded mutation fuzz loop
over the fixtures' real sections checks that nothing but `BpfError` escapes parsing, validation,
the layout helpers, the raw dump and the .BTF.ext parser, and that each case is quick.
"""

from __future__ import annotations

import contextlib
import random
import re
import struct
import time
from collections.abc import Callable

import pytest

from conftest import compile_bpf
from pybpf import BpfError, BtfError
from pybpf.btf import Btf, BtfKind
from pybpf.btf.c_dump import CDumper, dump_c
from pybpf.btf.dump_raw import dump_raw
from pybpf.btf.ext import BtfExt
from pybpf.btf.layout import TypeLayout
from pybpf.btf.types import BtfVar
from test_btf_model import RawBtf, elf_section

FILE = "corrupt.o"
SEED = 0x5EED_B7F
CASE_BUDGET_S = 1.0


def parse(data: bytes) -> Btf:
    return Btf.from_bytes(data, file=FILE, section=".BTF")


def fixture_btf_bytes(name: str = "btfkinds") -> bytes:
    return elf_section(compile_bpf(name), ".BTF")


def small_btf(build: Callable[[RawBtf], object]) -> bytes:
    raw = RawBtf()
    build(raw)
    return raw.to_bytes()


def u32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


def expect(data: bytes, message: str, *, offset: bool = True) -> BtfError:
    """Parse and validate ``data``; it must fail with ``message``, located in the file."""
    with pytest.raises(BtfError, match=re.escape(message)) as info:
        parse(data).validate()
    text = str(info.value)
    assert text.startswith(f"{FILE}: section .BTF: ")
    if offset:
        assert info.value.offset is not None and "offset 0x" in text
    return info.value


# --------------------------------------------------------------------------------- header


def test_bad_magic() -> None:
    data = bytearray(fixture_btf_bytes())
    data[0:2] = b"\x12\x34"
    assert expect(bytes(data), "bad magic 0x3412").offset == 0


def test_bad_version() -> None:
    data = bytearray(fixture_btf_bytes())
    data[2] = 7
    expect(bytes(data), "unsupported version 7")


@pytest.mark.parametrize("hdr_len", [0, 8, 23, 1 << 30])
def test_bad_header_length(hdr_len: int) -> None:
    data = bytearray(fixture_btf_bytes())
    struct.pack_into("<I", data, 4, hdr_len)
    assert expect(bytes(data), f"bad header length {hdr_len}").offset == 4


def test_longer_header_must_be_zero_filled() -> None:
    data = bytearray(fixture_btf_bytes())
    struct.pack_into("<I", data, 4, 28)
    data[24:24] = b"\x01\0\0\0"
    expect(bytes(data), "unknown non-zero header fields")
    data[24] = 0
    assert len(parse(bytes(data))) == len(parse(fixture_btf_bytes()))


@pytest.mark.parametrize("size", [0, 1, 12, 23])
def test_truncated_header(size: int) -> None:
    expect(fixture_btf_bytes()[:size], f"truncated header: {size} bytes")


def test_truncated_sections() -> None:
    data = fixture_btf_bytes()
    expect(data[:-1], "sections past end of data")
    expect(data[: len(data) // 2], "sections past end of data")


def test_misaligned_and_overlapping_sections() -> None:
    data = bytearray(fixture_btf_bytes())
    struct.pack_into("<I", data, 8, 2)  # type_off
    expect(bytes(data), "not 4-byte aligned")
    data = bytearray(fixture_btf_bytes())
    (type_off,) = struct.unpack_from("<I", data, 8)
    struct.pack_into("<I", data, 16, type_off + 4)  # str_off inside the type section
    expect(bytes(data), "overlap")


def test_string_section_framing() -> None:
    good = small_btf(lambda raw: raw.add(BtfKind.INT, "int", size_or_type=4, extra=u32(32)))
    no_leading_nul = bytearray(good)
    no_leading_nul[-len(b"\0int\0")] = ord("x")
    expect(bytes(no_leading_nul), "must start with a NUL byte")
    expect(good[:-1] + b"x", "does not end with NUL")


# --------------------------------------------------------------------------------- types


def test_string_offset_out_of_range() -> None:
    data = bytearray(fixture_btf_bytes())
    struct.pack_into("<I", data, 24, 1 << 20)  # name_off of type #1
    err = expect(bytes(data), "type #1: name string offset 1048576 out of range")
    assert err.offset == 24


def test_member_name_out_of_range() -> None:
    def build(raw: RawBtf) -> None:
        i = raw.add(BtfKind.INT, "int", size_or_type=4, extra=u32(32))
        raw.add(BtfKind.STRUCT, "s", 1, 4, extra=u32(9999, i, 0))

    assert (
        expect(small_btf(build), "type #2: member name string offset 9999").offset == 24 + 16 + 12
    )


def test_type_id_out_of_range() -> None:
    data = small_btf(lambda raw: raw.add(BtfKind.PTR, size_or_type=77))
    expect(data, "type #1: pointee refers to type id 77 out of range [0, 1]")
    data = small_btf(lambda raw: raw.add(BtfKind.ARRAY, extra=u32(5, 0, 3)))
    expect(data, "type #1: element refers to type id 5")


def test_vlen_overrunning_the_type_section() -> None:
    def build(raw: RawBtf) -> None:
        raw.add(BtfKind.INT, "int", size_or_type=4, extra=u32(32))
        raw.add(BtfKind.STRUCT, "s", 3, 4, extra=u32(0, 1, 0))  # claims 3 members, has 1

    expect(small_btf(build), "type #2: vlen runs past the type section")


def test_unknown_kind() -> None:
    data = bytearray(small_btf(lambda raw: raw.add(BtfKind.PTR, size_or_type=0)))
    struct.pack_into("<I", data, 24 + 4, 25 << 24)
    assert expect(bytes(data), "type #1: unknown kind 25").offset == 24


def test_bad_int_and_linkage() -> None:
    expect(
        small_btf(lambda raw: raw.add(BtfKind.INT, "i", size_or_type=2, extra=u32(17))),
        "does not fit 2 bytes",
    )
    expect(small_btf(lambda raw: raw.add(BtfKind.FUNC, "f", vlen=3)), "bad linkage 3")
    expect(small_btf(lambda raw: raw.add(BtfKind.VAR, "v", extra=u32(9))), "bad linkage 9")


def cyclic_btf() -> Btf:
    """typedef to itself, a const<->volatile loop, an array of itself, a self-containing struct."""

    def build(raw: RawBtf) -> None:
        raw.add(BtfKind.TYPEDEF, "self_t", size_or_type=1)  # 1
        raw.add(BtfKind.CONST, size_or_type=3)  # 2
        raw.add(BtfKind.VOLATILE, size_or_type=2)  # 3
        raw.add(BtfKind.ARRAY, extra=u32(4, 0, 2))  # 4: array of itself
        raw.add(BtfKind.STRUCT, "loop", 1, 8, extra=u32(0, 5, 0))  # 5: contains itself
        raw.add(BtfKind.TYPEDEF, "to_const", size_or_type=2)  # 6

    return parse(small_btf(build))


@pytest.mark.parametrize(
    ("helper", "type_id"),
    [
        ("resolve", 1),
        ("size_of", 1),
        ("align_of", 1),
        ("skip_modifiers", 2),
        ("resolve", 6),
        ("size_of", 3),
        ("size_of", 4),
        ("align_of", 4),
        ("align_of", 5),
    ],
)
def test_reference_cycles_are_errors(helper: str, type_id: int) -> None:
    btf = cyclic_btf()
    btf.validate()  # each type decodes fine on its own
    with pytest.raises(BtfError, match=r"type #\d+: .*(too long|too deep)") as info:
        getattr(btf, helper)(type_id)
    assert str(info.value).startswith(f"{FILE}: section .BTF: ")
    # Dumping never follows references, so it works on cyclic BTF.
    assert len(re.findall(r"^\[", dump_raw(btf), re.MULTILINE)) == len(btf)


def test_bad_lookups_are_errors() -> None:
    btf = parse(fixture_btf_bytes())
    for bad in (0, -1, btf.end_id, 1 << 40):
        with pytest.raises(BtfError):
            btf[bad]
    with pytest.raises(BtfError):
        btf.name_of(btf.end_id)
    with pytest.raises(BtfError, match="size of void"):
        btf.size_of(0)
    with pytest.raises(BtfError, match="string offset"):
        btf.string(len(btf.string_bytes) + 5)


# --------------------------------------------------------------------------------- fuzz


def exercise_btf(data: bytes) -> None:
    """Everything a consumer might do with untrusted BTF; only BpfError may escape."""
    try:
        btf = parse(data)
        btf.validate()
        dump_raw(btf)
        for type_id in btf.type_ids():
            for helper in (btf.size_of, btf.align_of, btf.resolve):
                with contextlib.suppress(BpfError):
                    helper(type_id)
        btf.find("int")
    except BpfError:
        pass


def mutations(data: bytes, rng: random.Random, flips: int, words: int, step: int) -> list[bytes]:
    cases = [data[:n] for n in range(0, len(data), step)]
    for _ in range(flips):
        mutated = bytearray(data)
        bit = rng.randrange(len(data) * 8)
        mutated[bit // 8] ^= 1 << (bit % 8)
        cases.append(bytes(mutated))
    interesting = [0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 12, 24, 31 << 24]
    for _ in range(words):
        mutated = bytearray(data)
        off = rng.randrange(0, len(data) - 3)
        off -= off % 4 if rng.random() < 0.8 else 0  # mostly aligned fields
        value = rng.choice(interesting) if rng.random() < 0.6 else rng.getrandbits(32)
        struct.pack_into("<I", mutated, off, value)
        cases.append(bytes(mutated))
    return cases


def run_cases(cases: list[bytes], target: Callable[[bytes], None]) -> float:
    slowest = 0.0
    for data in cases:
        start = time.perf_counter()
        target(data)
        slowest = max(slowest, time.perf_counter() - start)
    return slowest


@pytest.mark.parametrize("name", ["btfkinds", "btfkinds_core"])
def test_fuzz_btf(name: str) -> None:
    data = fixture_btf_bytes(name)
    rng = random.Random(SEED)
    cases = mutations(data, rng, flips=300, words=300, step=max(1, len(data) // 150))
    # Header-focused u32 overwrites: every header field gets every interesting value.
    for off in range(0, 24, 4):
        for value in (0, 3, 24, len(data), 0xFFFFFFF0, 0xFFFFFFFF):
            mutated = bytearray(data)
            struct.pack_into("<I", mutated, off, value)
            cases.append(bytes(mutated))
    assert len(cases) > 700
    assert run_cases(cases, exercise_btf) < CASE_BUDGET_S


@pytest.mark.parametrize("name", ["btfkinds", "btfkinds_core"])
def test_fuzz_btf_ext(name: str) -> None:
    path = compile_bpf(name)
    btf = Btf.from_bytes(elf_section(path, ".BTF"), file=str(path))
    ext_data = elf_section(path, ".BTF.ext")
    strings = btf.string_bytes
    # Every offset of the string table names a string (suffixes included): for re-encoding.
    offset_of: dict[str, int] = {}
    for off in range(len(strings)):
        offset_of.setdefault(btf.string(off), off)

    def target(data: bytes) -> None:
        try:
            ext = BtfExt.from_bytes(data, btf, file=str(path))
        except BpfError:
            return
        # Whatever parses must re-encode to something that parses back the same.
        assert BtfExt.from_bytes(ext.to_bytes(offset_of.__getitem__), btf) == ext

    rng = random.Random(SEED + 1)
    cases = mutations(ext_data, rng, flips=300, words=300, step=max(1, len(ext_data) // 150))
    assert len(cases) > 700
    assert run_cases(cases, target) < CASE_BUDGET_S


def exercise_c_dump(data: bytes) -> None:
    """The C dumper and the declarations skeletons write, on untrusted BTF.

    Mutated sizes and offsets make structs of gigabytes: refused, not printed line by line
    (that was a MemoryError, and seconds per case).
    """
    try:
        btf = parse(data)
        btf.validate()
    except BpfError:
        return
    with contextlib.suppress(BpfError):
        dump_c(btf)
    dumper = CDumper(btf)
    layout = TypeLayout(btf)
    for var in btf:
        if isinstance(var, BtfVar):
            with contextlib.suppress(BpfError):
                dumper.type_declaration(var.type, var.name, 2, True)
            with contextlib.suppress(BpfError):
                layout.align_of(var.type)


@pytest.mark.parametrize("name", ["btfkinds", "cdump_layout", "cdump_graph"])
def test_fuzz_c_dump(name: str) -> None:
    data = fixture_btf_bytes(name)
    cases = mutations(data, random.Random(SEED + 2), flips=250, words=250, step=len(data) // 50)
    assert run_cases(cases, exercise_c_dump) < CASE_BUDGET_S
