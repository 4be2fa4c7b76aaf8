"""What opening an object may cost: global data is capped per section and per object.

A ``.bss`` section has a size but no bytes in the file, so a few header bytes can ask for
gigabytes.  Opening an object must refuse more than :data:`MAX_DATA_SECTION` in one section
or :data:`MAX_DATA_TOTAL` in all (``.kconfig`` included) with an :class:`ObjectError`, at
once and without allocating it, and describing an object within the caps must not allocate
its ``.bss`` either (the zeros are made when someone asks for the initial value).
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from conftest import compile_bpf
from pybpf.elf import ElfFile
from pybpf.elf.constants import SHDR_SIZE
from pybpf.errors import ObjectError
from pybpf.obj import ObjectSpec
from pybpf.obj.parse import MAX_DATA_SECTION, MAX_DATA_TOTAL
from pybpf.obj.show import format_object

MIB = 1 << 20
ADDRESS_SPACE = 1 << 30
"""RLIMIT_AS of the child that opens a hostile object: old code asking for gigabytes of
zeros gets a MemoryError there instead of taking the machine's memory."""

OPEN_IN_CHILD = f"""
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE}, {ADDRESS_SPACE}))
from pybpf.errors import ObjectError
from pybpf.obj import ObjectSpec
start = time.monotonic()
try:
    ObjectSpec.from_path(sys.argv[1])
    print("opened")
except ObjectError as exc:
    print("refused:", exc)
print("seconds:", time.monotonic() - start)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) pytest parent.
with open("/proc/self/status") as status:
    hwm_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print("maxrss_mib:", hwm_kib // 1024)
"""


def with_bss_copies(data: bytes, sizes: list[int]) -> bytes:
    """``data`` with one more copy of its ``.bss`` section header per entry of ``sizes``.

    The section header table moves to the end of the file and grows; nothing else changes,
    so the file stays a few KiB whatever the sizes say.
    """
    elf = ElfFile.from_bytes(data)
    bss = elf.section(".bss")
    assert bss is not None and bss.is_nobits
    shoff = elf.header_offset(0)
    table = data[shoff : shoff + len(elf.sections) * SHDR_SIZE]
    header = table[bss.index * SHDR_SIZE : (bss.index + 1) * SHDR_SIZE]
    image = bytearray(data)
    image += bytes(-len(image) % 8)
    new_shoff = len(image)
    image += table
    for size in sizes:
        copy = bytearray(header)
        struct.pack_into("<Q", copy, 32, size)
        image += copy
    struct.pack_into("<Q", image, 40, new_shoff)
    struct.pack_into("<H", image, 60, len(elf.sections) + len(sizes))
    return bytes(image)


def open_in_child(path: Path) -> dict[str, str]:
    result = subprocess.run([sys.executable, "-c", OPEN_IN_CHILD, str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return dict(line.split(": ", 1) if ": " in line else (line, "")
                for line in result.stdout.splitlines())


def test_a_dozen_big_bss_headers_are_refused_at_once_in_bounded_memory(tmp_path: Path) -> None:
    hostile = with_bss_copies(compile_bpf("obj_data").read_bytes(), [MAX_DATA_SECTION] * 12)
    assert len(hostile) < 32 * 1024
    path = tmp_path / "dozen_bss.o"
    path.write_bytes(hostile)
    seen = open_in_child(path)
    assert "refused" in seen, seen
    assert str(path) in seen["refused"]
    assert "section .bss" in seen["refused"]
    assert f"more than the {MAX_DATA_TOTAL // MIB} MiB" in seen["refused"]
    assert float(seen["seconds"]) < 2.0
    assert int(seen["maxrss_mib"]) < 300


def test_one_section_past_the_cap_is_refused_naming_its_header() -> None:
    data = compile_bpf("obj_data").read_bytes()
    hostile = with_bss_copies(data, [MAX_DATA_SECTION + 1])
    index = len(ElfFile.from_bytes(data).sections)
    with pytest.raises(ObjectError) as info:
        ObjectSpec.from_bytes(hostile, path="one_big.o")
    assert info.value.section == ".bss"
    assert info.value.offset == ElfFile.from_bytes(hostile).header_offset(index, 32)
    assert f"larger than the {MAX_DATA_SECTION // MIB} MiB" in str(info.value)


def test_a_big_bss_within_the_caps_is_described_without_allocating_it() -> None:
    data = with_bss_copies(compile_bpf("obj_data").read_bytes(), [MAX_DATA_SECTION])
    tracemalloc.start()
    try:
        spec = ObjectSpec.from_bytes(data, path="big_bss.o")
        format_object(spec)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * MIB
    small, big = [m for m in spec.maps if m.section_name == ".bss"]
    assert big.value_size == MAX_DATA_SECTION and big.file_data == b""
    assert small.initial_value == bytes(small.value_size) and small.value_size > 0


KCONFIG_SOURCE = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
extern char CONFIG_PYBPF_HUGE[0x5a5a5] __kconfig __weak;
SEC("tp/syscalls/sys_enter_getpid") int read_it(void *ctx) { return CONFIG_PYBPF_HUGE[1]; }
char LICENSE[] SEC("license") = "GPL";
"""


def test_kconfig_externs_count_as_global_data(tmp_path: Path) -> None:
    source = tmp_path / "kconfig_huge.bpf.c"
    source.write_text(KCONFIG_SOURCE)
    data = compile_bpf(str(source)).read_bytes()
    assert ObjectSpec.from_bytes(data).map(".kconfig").value_size == 0x5A5A5
    btf = ElfFile.from_bytes(data).section(".BTF")
    assert btf is not None
    nelems = data.index(struct.pack("<I", 0x5A5A5), btf.offset, btf.offset + btf.size)
    hostile = bytearray(data)
    struct.pack_into("<I", hostile, nelems, 0xFFFFFFFF)
    path = tmp_path / "kconfig_huge.o"
    path.write_bytes(hostile)
    seen = open_in_child(path)
    assert "refused" in seen, seen
    assert "section .kconfig" in seen["refused"]
    assert f"larger than the {MAX_DATA_SECTION // MIB} MiB" in seen["refused"]
