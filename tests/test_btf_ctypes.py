"""BTF → ctypes: layouts match what gcc does for the same header, bitfields included."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, FIXTURES, btf_blob, compile_bpf
from pybpf import BtfError
from pybpf.btf import Btf, BtfKind
from pybpf.btf.files import btf_from_file
from pybpf.btf.to_ctypes import CTypesBuilder


@pytest.fixture(scope="module")
def btf() -> Btf:
    return btf_from_file(compile_bpf("layout_types"))


@pytest.fixture(scope="module")
def truth() -> dict[str, bytes]:
    """Each type's bytes as gcc lays them out, filled by the host program."""
    BUILD.mkdir(exist_ok=True)
    exe = BUILD / "layout_truth"
    subprocess.run(
        ["gcc", "-O0", "-I", str(FIXTURES), "-o", str(exe), str(FIXTURES / "layout_truth.c")],
        check=True,
    )
    out: dict[str, bytes] = {}
    for line in subprocess.run(
        [exe], check=True, capture_output=True, text=True
    ).stdout.splitlines():
        words = line.split()
        if words[0] == "offsetof":
            out[words[1]] = int(words[2]).to_bytes(4, "little")
        else:
            assert int(words[1]) * 2 == len(words[2])
            out[words[0]] = bytes.fromhex(words[2])
    return out


def _cls(btf: Btf, name: str) -> type:
    return CTypesBuilder(btf).ctype(btf.find_one(name, BtfKind.STRUCT))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "name", ["layout_bits", "layout_packed", "layout_aligned", "layout_nested"]
)
def test_sizes_match_gcc(btf: Btf, truth: dict[str, bytes], name: str) -> None:
    assert ctypes.sizeof(_cls(btf, name)) == len(truth[name])


def test_bitfields_read_what_gcc_wrote(btf: Btf, truth: dict[str, bytes]) -> None:
    value = _cls(btf, "layout_bits").from_buffer_copy(truth["layout_bits"])
    assert (value.a, value.b, value.c, value.tag, value.d, value.e) == (
        5,
        -7,
        0x12345678AB,
        b"Q",
        300,
        -12345,
    )


def test_bitfield_writes_give_gcc_bytes(btf: Btf, truth: dict[str, bytes]) -> None:
    value = _cls(btf, "layout_bits")()
    value.a, value.b, value.c, value.tag, value.d, value.e = 5, -7, 0x12345678AB, b"Q", 300, -12345
    assert bytes(value) == truth["layout_bits"]
    with pytest.raises(ValueError, match="does not fit"):
        value.a = 8


def test_packed_and_aligned(btf: Btf, truth: dict[str, bytes]) -> None:
    packed = _cls(btf, "layout_packed").from_buffer_copy(truth["layout_packed"])
    assert (packed.c, packed.i, packed.l, packed.s) == (b"\x01", -2, 0x1122334455667788, 99)
    aligned_cls = _cls(btf, "layout_aligned")
    assert aligned_cls.x.offset == int.from_bytes(truth["layout_aligned.x"], "little")
    aligned = aligned_cls.from_buffer_copy(truth["layout_aligned"])
    assert (aligned.c, aligned.x, aligned.tail) == (b"\x03", 123456, b"\x04")


def test_nested_anonymous_union_arrays_enums(btf: Btf, truth: dict[str, bytes]) -> None:
    cls = _cls(btf, "layout_nested")
    assert cls.ratio.offset == int.from_bytes(truth["layout_nested.ratio"], "little")
    assert cls.grid.offset == int.from_bytes(truth["layout_nested.grid"], "little")
    value = cls.from_buffer_copy(truth["layout_nested"])
    assert value.name == b"hello"
    assert (value.lo, value.hi) == (10, -20)
    assert value.packed.l == 0x1122334455667788
    assert value.ratio == 2.5
    assert value.color == -1
    assert value.flag == 1 and value.ok is True
    assert value.grid[1][2] == 42
    value.name = b"bye"
    assert bytes(value)[:4] == b"bye\0"


def test_live_view_writes_through(btf: Btf) -> None:
    cls = _cls(btf, "layout_packed")
    memory = bytearray(ctypes.sizeof(cls))
    view = cls.from_buffer(memory)
    view.i = 0x01020304
    assert memory[1:5] == bytes([4, 3, 2, 1])


def test_forward_declared_struct_is_an_error(tmp_path: Path) -> None:
    import struct as st

    strings = b"\0opaque\0"
    types = st.pack("<III", 1, BtfKind.FWD << 24, 0)
    fwd = Btf.from_bytes(btf_blob(types, strings))
    with pytest.raises(BtfError, match="forward-declared"):
        CTypesBuilder(fwd).ctype(1)
