"""`dump_raw` must print exactly what `bpftool btf dump file F` (7.1, raw format) prints."""

from __future__ import annotations

import difflib
import struct
import time
from pathlib import Path

import pytest

from conftest import bpftool, compile_bpf
from pybpf.btf import Btf, BtfKind
from pybpf.btf.dump_raw import dump_raw
from test_btf_model import FIXTURE_NAMES, RawBtf, build_split, elf_section

VMLINUX = Path("/sys/kernel/btf/vmlinux")
VMLINUX_DUMP_BUDGET_S = 3.0


def assert_same_text(ours: str, theirs: str) -> None:
    if ours != theirs:
        diff = difflib.unified_diff(
            theirs.splitlines(), ours.splitlines(), "bpftool", "pybpf", lineterm="", n=1
        )
        pytest.fail("dump differs from bpftool:\n" + "\n".join(list(diff)[:40]))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_dump_is_identical_to_bpftool(name: str) -> None:
    path = compile_bpf(name)
    btf = Btf.from_bytes(elf_section(path, ".BTF"), file=str(path))
    assert_same_text(dump_raw(btf), bpftool("btf", "dump", "file", path))


def test_raw_btf_file_dump_is_identical(tmp_path: Path) -> None:
    """The same BTF as a raw file (bpftool reads it without ELF) dumps the same way."""
    raw = tmp_path / "btfkinds.btf"
    raw.write_bytes(elf_section(compile_bpf("btfkinds"), ".BTF"))
    assert_same_text(dump_raw(Btf.from_path(raw)), bpftool("btf", "dump", "file", raw))


def test_split_btf_dump_is_identical_to_bpftool_with_base(tmp_path: Path) -> None:
    """Split BTF dumps only its own types, numbered after the base, like ``bpftool -B``."""
    base_file, split_file = tmp_path / "base.btf", tmp_path / "split.btf"
    base_file.write_bytes(elf_section(compile_bpf("btfkinds"), ".BTF"))
    base = Btf.from_path(base_file)
    split_file.write_bytes(build_split(base))
    ours = dump_raw(Btf.from_path(split_file, base=base))
    theirs = bpftool("btf", "dump", "file", split_file, "-B", base_file)
    assert_same_text(ours, theirs)
    # The hand-made split BTF exercises the corners bpftool prints specially.
    for needle in (
        "encoding=UNKN",
        "fwd_kind=union",
        "linkage=extern",
        "val=-2",
        "LL\n",
        "'(anon)' type_id=0",
        "component_idx=2",
        "(FUNC 'split_static_fn')",
    ):
        assert needle in ours


@pytest.mark.skipif(not VMLINUX.exists(), reason="no /sys/kernel/btf/vmlinux")
def test_split_btf_on_vmlinux_dump_is_identical(tmp_path: Path) -> None:
    """Module-style split BTF on the running kernel's BTF (no module BTF exists here)."""
    vmlinux = Btf.vmlinux()
    raw = RawBtf(base_str_len=len(vmlinux.string_bytes), first_id=vmlinux.end_id)
    task = vmlinux.find_one("task_struct", BtfKind.STRUCT)
    ptr = raw.add(BtfKind.PTR, size_or_type=task)
    raw.add(
        BtfKind.STRUCT,
        "mod_state",
        2,
        16,
        extra=struct.pack(
            "<6I",
            raw.s("task"),
            ptr,
            0,
            raw.s("pid"),
            vmlinux.find_one("pid_t", BtfKind.TYPEDEF),
            64,
        ),
    )
    split_file = tmp_path / "module.btf"
    split_file.write_bytes(raw.to_bytes())
    ours = dump_raw(Btf.from_path(split_file, base=vmlinux))
    assert_same_text(ours, bpftool("btf", "dump", "file", split_file, "-B", VMLINUX))
    assert ours.startswith(f"[{vmlinux.end_id}] PTR '(anon)' type_id={task}\n")


def test_empty_btf_dumps_nothing() -> None:
    assert dump_raw(Btf.from_bytes(RawBtf().to_bytes())) == ""


@pytest.mark.skipif(not VMLINUX.exists(), reason="no /sys/kernel/btf/vmlinux")
def test_vmlinux_dump_is_identical_and_fast() -> None:
    theirs = bpftool("btf", "dump", "file", VMLINUX)
    start = time.perf_counter()
    ours = dump_raw(Btf.from_path(VMLINUX))
    elapsed = time.perf_counter() - start
    assert_same_text(ours, theirs)
    print(f"vmlinux raw dump: {elapsed:.2f} s, {len(ours)} bytes")
    assert elapsed < VMLINUX_DUMP_BUDGET_S * 2  # generous: other tests may share the CPU


def byte_swapped(data: bytes) -> bytes:
    """The same BTF in the other byte order: past the header, types are all u32 fields."""
    magic, version, flags, hdr_len, type_off, type_len = struct.unpack_from("<HBBIII", data)
    header = struct.pack(">HBBI", magic, version, flags, hdr_len)
    header += struct.pack(">4I", *struct.unpack_from("<4I", data, 8)) + data[24:hdr_len]
    types = data[hdr_len + type_off : hdr_len + type_off + type_len]
    swapped = struct.pack(f">{len(types) // 4}I", *struct.unpack(f"<{len(types) // 4}I", types))
    body = bytearray(data[hdr_len:])
    body[type_off : type_off + type_len] = swapped
    return header + bytes(body)


def test_big_endian_btf_dump_is_identical(tmp_path: Path) -> None:
    """libbpf reads opposite-endian raw BTF; so do we, with the same dump."""
    raw = tmp_path / "btfkinds.be.btf"
    raw.write_bytes(byte_swapped(elf_section(compile_bpf("btfkinds"), ".BTF")))
    btf = Btf.from_path(raw)
    assert btf.big_endian
    assert_same_text(dump_raw(btf), bpftool("btf", "dump", "file", raw))
