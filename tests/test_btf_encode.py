"""Encoding BTF: what BtfBuilder.encode() writes must read back as the same types, and the
reference tools (bpftool, the kernel's BTF checker) must read it as they read the original."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from conftest import BUILD, FIXTURES, bpftool, compile_bpf, requires_root
from pybpf.btf.btf import Btf
from pybpf.btf.builder import BtfBuilder, map_type_ids
from pybpf.btf.types import (
    BtfArray,
    BtfDatasec,
    BtfDeclTag,
    BtfEnum,
    BtfEnum64,
    BtfEnumValue,
    BtfFloat,
    BtfFunc,
    BtfFuncProto,
    BtfFwd,
    BtfInt,
    BtfKind,
    BtfMember,
    BtfParam,
    BtfPtr,
    BtfStruct,
    BtfTypedef,
    BtfTypeTag,
    BtfUnion,
    BtfVar,
    BtfVarSecInfo,
    FuncLinkage,
    IntEncoding,
    VarLinkage,
)
from pybpf.errors import BtfError

VMLINUX = Path("/sys/kernel/btf/vmlinux")
FIXTURE_NAMES = sorted(p.name.removesuffix(".bpf.c") for p in FIXTURES.glob("*.bpf.c"))


def object_btf(name: str) -> tuple[Path, bytes]:
    """Compile fixture ``name`` and return the object's path and its .BTF section."""
    obj = compile_bpf(name)
    with obj.open("rb") as f:
        section = ELFFile(f).get_section_by_name(".BTF")
        assert section is not None, f"{obj} has no .BTF"
        return obj, section.data()


def write(name: str, data: bytes) -> Path:
    BUILD.mkdir(exist_ok=True)
    path = BUILD / name
    path.write_bytes(data)
    return path


def assert_same_types(original: Btf, encoded: bytes) -> Btf:
    again = Btf.from_bytes(encoded, base=original.base)
    assert len(again) == len(original)
    for type_id in original.type_ids():
        assert again[type_id] == original[type_id], f"type #{type_id} changed"
    return again


# ------------------------------------------------------------------------- round trips


@pytest.mark.oracle
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_round_trip(name: str) -> None:
    """Every fixture object's BTF survives decode + encode, for us and for bpftool."""
    obj, raw = object_btf(name)
    original = Btf.from_bytes(raw)
    encoded = BtfBuilder.from_btf(original).encode()
    assert_same_types(original, encoded)
    ours = write(f"{name}.roundtrip.btf", encoded)
    assert bpftool("btf", "dump", "file", ours) == bpftool("btf", "dump", "file", obj)


@pytest.mark.oracle
def test_vmlinux_round_trip() -> None:
    """All of vmlinux's types come back equal, fast, and bpftool reads the result alike."""
    vmlinux = Btf.vmlinux()
    started = time.perf_counter()
    builder = BtfBuilder.from_btf(vmlinux)
    decoded = time.perf_counter()
    encoded = builder.encode()
    finished = time.perf_counter()
    print(
        f"vmlinux: {len(vmlinux)} types, decode {decoded - started:.2f}s, "
        f"encode {finished - decoded:.2f}s, {len(encoded)} bytes"
    )
    assert finished - decoded < 5.0
    assert_same_types(vmlinux, encoded)
    ours = write("vmlinux.roundtrip.btf", encoded)
    assert bpftool("btf", "dump", "file", ours) == bpftool("btf", "dump", "file", VMLINUX)


def test_encoding_is_deterministic() -> None:
    _, raw = object_btf("dedup_a")
    btf = Btf.from_bytes(raw)
    first = BtfBuilder.from_btf(btf).encode()
    assert BtfBuilder.from_btf(btf).encode() == first
    builder = BtfBuilder.from_btf(btf)
    assert builder.encode() == builder.encode() == first


def test_strings_are_deduplicated_and_start_empty() -> None:
    b = BtfBuilder()
    int_id = b.add(BtfInt("int", 4, IntEncoding.SIGNED, 0, 32))
    b.add(BtfTypedef("int", int_id))  # same name twice: one string
    b.add(BtfStruct("s", 4, (BtfMember("int", int_id, 0),)))
    data = b.encode()
    strings = data[-(len(b"\0int\0s\0")) :]
    assert strings == b"\0int\0s\0"
    assert Btf.from_bytes(data).string_bytes == b"\0int\0s\0"


# ------------------------------------------------------------------------- kind_flag rules


def test_bitfields_set_kind_flag() -> None:
    """A struct with a bitfield member is written with kind_flag and packed member offsets."""
    b = BtfBuilder()
    uint = b.add(BtfInt("unsigned int", 4, IntEncoding.NONE, 0, 32))
    members = (BtfMember("a", uint, 0, 3), BtfMember("b", uint, 3, 5), BtfMember("c", uint, 32))
    b.add(BtfStruct("bits", 8, members, kind_flag=False))
    b.add(BtfUnion("plain", 4, (BtfMember("x", uint, 0),)))
    data = b.encode()
    # Raw words: header is 24 bytes, INT is 16, then the STRUCT's info word and members.
    info = int.from_bytes(data[24 + 16 + 4 : 24 + 16 + 8], "little")
    assert info >> 31 == 1 and (info >> 24) & 0x1F == BtfKind.STRUCT and info & 0xFFFF == 3
    second_member_offset = int.from_bytes(data[24 + 16 + 12 + 12 + 8 : 24 + 16 + 12 + 24], "little")
    assert second_member_offset == (5 << 24) | 3
    again = Btf.from_bytes(data)
    assert again[2] == BtfStruct("bits", 8, members, kind_flag=True)
    assert again[3] == BtfUnion("plain", 4, (BtfMember("x", uint, 0),), kind_flag=False)
    dump = bpftool("btf", "dump", "file", write("bits.btf", data))
    assert "'b' type_id=1 bits_offset=3 bitfield_size=5" in dump
    assert "'c' type_id=1 bits_offset=32\n" in dump


def test_model_kind_flag_is_kept_without_bitfields() -> None:
    b = BtfBuilder()
    uint = b.add(BtfInt("unsigned int", 4, IntEncoding.NONE, 0, 32))
    flagged = BtfStruct("flagged", 4, (BtfMember("x", uint, 0),), kind_flag=True)
    b.add(flagged)
    assert Btf.from_bytes(b.encode())[2] == flagged


def test_every_kind_reads_back() -> None:
    b = BtfBuilder()
    i = b.add(BtfInt("long", 8, IntEncoding.SIGNED, 0, 64))
    fwd = b.add(BtfFwd("later", is_union=True))
    e = b.add(BtfEnum("e", 4, (BtfEnumValue("NEG", -2), BtfEnumValue("POS", 7)), signed=True))
    e64 = b.add(BtfEnum64("e64", 8, (BtfEnumValue("HUGE", 1 << 63),), signed=False))
    tag = b.add(BtfTypeTag("user", i))
    ptr = b.add(BtfPtr(tag))
    arr = b.add(BtfArray(ptr, i, 7))
    proto = b.add(BtfFuncProto(i, (BtfParam("a", fwd), BtfParam("", 0))))
    var = b.add(BtfVar("v", arr, VarLinkage.GLOBAL_ALLOCATED))
    sec = b.add(BtfDatasec(".data", 0, ()))
    b.replace(sec, BtfDatasec(".data", 56, (BtfVarSecInfo(var, 0, 56),)))
    b.add(BtfDeclTag("decl", var, -1))
    b.add(BtfDeclTag("attr", proto, 0, kind_flag=True))
    b.add(BtfFunc("f", proto, FuncLinkage.GLOBAL))
    b.add(BtfFloat("double", 8))
    again = Btf.from_bytes(b.encode())
    assert list(again) == b.types()
    assert again[e] == BtfEnum("e", 4, (BtfEnumValue("NEG", -2), BtfEnumValue("POS", 7)), True)
    assert again[e64] == BtfEnum64("e64", 8, (BtfEnumValue("HUGE", 1 << 63),), False)


# ------------------------------------------------------------------------- appending, split BTF

_ID = re.compile(r"(type_id=|ret_type_id=|index_type_id=)(\d+)|^\[(\d+)\]", re.MULTILINE)


def shift_dump(dump: str, shift: int) -> str:
    """A bpftool raw dump with every non-void type id moved by ``shift``."""

    def move(m: re.Match[str]) -> str:
        if m.group(3) is not None:
            return f"[{int(m.group(3)) + shift}]"
        value = int(m.group(2))
        return f"{m.group(1)}{value + shift if value else 0}"

    return _ID.sub(move, dump)


@pytest.mark.oracle
def test_add_all_shifts_ids() -> None:
    """Appending an object's BTF twice: the copy reads like the original, ids moved."""
    obj, raw = object_btf("dedup_b")
    btf = Btf.from_bytes(raw)
    b = BtfBuilder.from_btf(btf)
    shift = b.add_all(btf)
    assert shift == len(btf)
    assert len(b) == 2 * len(btf)
    dump = bpftool("btf", "dump", "file", write("twice.btf", b.encode()))
    original = bpftool("btf", "dump", "file", obj)
    assert dump == original + shift_dump(original, shift)


@pytest.mark.oracle
def test_split_btf_over_a_base() -> None:
    """Split BTF: ids after the base's, strings reused from the base, as bpftool -B reads it."""
    obj, raw = object_btf("dedup_c")
    base = Btf.from_bytes(raw)
    split = BtfBuilder(base)
    assert split.start_id == len(base) + 1
    shift = split.add_all(base)
    assert shift == len(base)
    data = split.encode()
    again = Btf.from_bytes(data, base=base)
    assert again.start_id == len(base) + 1
    assert len(again.string_bytes) == 0  # every name already is in the base
    for type_id in base.type_ids():
        assert again[type_id + shift].kind == base[type_id].kind
        assert again.name_of(type_id + shift) == base.name_of(type_id)
    base_path = write("split.base.btf", raw)  # the very bytes the split was made against
    dump = bpftool("btf", "dump", "file", write("split.btf", data), "-B", base_path)
    assert dump == shift_dump(bpftool("btf", "dump", "file", obj), shift)


def test_split_btf_new_strings_follow_the_base() -> None:
    _, raw = object_btf("dedup_c")
    base = Btf.from_bytes(raw)
    split = BtfBuilder(base)
    int_id = base.find_one("int", BtfKind.INT)
    split.add(BtfTypedef("brand_new_name", int_id))
    data = split.encode()
    again = Btf.from_bytes(data, base=base)
    assert again.string_bytes == b"brand_new_name\0"
    assert again[again.start_id] == BtfTypedef("brand_new_name", int_id)
    assert split.add_string("brand_new_name") == len(base.string_bytes)


def test_add_all_of_split_btf_keeps_base_ids() -> None:
    _, raw = object_btf("dedup_c")
    base = Btf.from_bytes(raw)
    int_id = base.find_one("int", BtfKind.INT)
    first = BtfBuilder(base)
    first.add(BtfPtr(int_id))
    split = first.to_btf()
    target = BtfBuilder(base)
    target.add(BtfTypedef("t", int_id))
    shift = target.add_all(split)
    assert shift == 1
    assert target[target.start_id + 1] == BtfPtr(int_id)
    with pytest.raises(BtfError):
        BtfBuilder().add_all(split)


def test_add_string_offsets_are_stable() -> None:
    b = BtfBuilder()
    off = b.add_string("file.c")
    int_id = b.add(BtfInt("int", 4, IntEncoding.SIGNED, 0, 32))
    b.add(BtfTypedef("file.c", int_id))
    data = b.encode()
    assert off == 1
    assert Btf.from_bytes(data).string(off) == "file.c"
    assert b.add_string("file.c") == off


# ------------------------------------------------------------------------- errors


def test_unencodable_values_are_errors() -> None:
    b = BtfBuilder()
    uint = b.add(BtfInt("unsigned int", 4, IntEncoding.NONE, 0, 32))
    b.add(BtfStruct("far", 8, (BtfMember("a", uint, 1 << 24, 3),)))
    with pytest.raises(BtfError, match="kind_flag"):
        b.encode()
    b = BtfBuilder()
    b.add(BtfTypedef("bad\0name", 0))
    with pytest.raises(BtfError, match="NUL"):
        b.encode()
    b = BtfBuilder()
    many = tuple(BtfEnumValue(f"V{i}", i) for i in range(0x10000))
    b.add(BtfEnum("huge", 4, many))
    with pytest.raises(BtfError, match="at most"):
        b.encode()
    b = BtfBuilder()
    b.add(BtfArray(1, 1, -1))
    with pytest.raises(BtfError, match="out of range"):
        b.encode()
    with pytest.raises(BtfError):
        b[5]


# ------------------------------------------------------------------------- the kernel


@requires_root
@pytest.mark.kernel
@pytest.mark.parametrize("name", ["dedup_b", "dedup_c", "vmlinux"])
def test_kernel_accepts_encoded_btf(name: str) -> None:
    """BPF_BTF_LOAD checks every kind's encoding.

    Only inputs the kernel takes as compiled qualify: DATASECs are dropped because the
    compiler leaves their sizes at 0 for the loader to fill in; dedup_a (``enum opaque_e;``
    written with size 0) and objects with extern VARs are left out, as libbpf would have to
    sanitize them first.
    """
    from pybpf.kernel.btf import btf_load

    btf = Btf.vmlinux() if name == "vmlinux" else Btf.from_bytes(object_btf(name)[1])
    new_ids = [0]
    for t in btf:  # nothing refers to a DATASEC, so ids after one just move down
        new_ids.append(new_ids[-1] + (t.kind != BtfKind.DATASEC))
    b = BtfBuilder()
    for t in btf:
        if t.kind != BtfKind.DATASEC:
            b.add(map_type_ids(t, new_ids.__getitem__))
    loaded = btf_load(b.encode(), log_level=1)
    loaded.fd.close()


def test_same_types_same_bytes_whatever_came_before() -> None:
    b = BtfBuilder()
    int_id = b.add(BtfInt("int", 4, IntEncoding.SIGNED, 0, 32))
    b.add(BtfTypedef("old_name", int_id))
    b.encode()
    b.replace(int_id + 1, BtfTypedef("new_name", int_id))
    fresh = BtfBuilder()
    fresh.add(BtfInt("int", 4, IntEncoding.SIGNED, 0, 32))
    fresh.add(BtfTypedef("new_name", int_id))
    assert b.encode() == fresh.encode()
    assert b"old_name" not in b.encode()
