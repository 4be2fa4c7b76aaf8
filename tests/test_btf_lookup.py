"""Name lookup: the index-free scan used for first lookups must agree with the full index."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from conftest import btf_blob
from pybpf.btf import Btf

VMLINUX = Path("/sys/kernel/btf/vmlinux")


@pytest.mark.skipif(not VMLINUX.exists(), reason="kernel has no BTF (CONFIG_DEBUG_INFO_BTF)")
def test_scan_lookup_equals_indexed_lookup_on_vmlinux() -> None:
    scanning = Btf.vmlinux()
    indexed = Btf.vmlinux()
    index = indexed._names()
    rng = random.Random(7)
    names = [*rng.sample(sorted(index), 1500), "task_struct", "sk_buff", "int", "bpf_map_type"]
    for name in names:
        assert scanning._scan_for_name(name) == index.get(name, []), name
    assert scanning._scan_for_name("no_such_type_anywhere") == []


@pytest.mark.skipif(not VMLINUX.exists(), reason="kernel has no BTF (CONFIG_DEBUG_INFO_BTF)")
def test_find_does_not_build_the_index_for_one_lookup() -> None:
    btf = Btf.vmlinux()
    (tid,) = btf.find("task_struct", btf.kind_of(btf.find("task_struct")[0]))
    assert btf.name_of(tid) == "task_struct"
    assert btf._name_index is None


def test_suffix_shared_string_is_found() -> None:
    """A name stored only as the tail of a longer string (suffix merging) is still found."""
    # Hand-encoded BTF: strings "\0xid\0"; INT named by offset 2 ("id"); INT named "xid" (1).
    import struct

    from pybpf.btf.types import BtfKind

    strings = b"\0xid\0"
    types = b""
    for name_off in (2, 1):
        types += struct.pack("<III", name_off, BtfKind.INT << 24, 4) + struct.pack("<I", 32)
    btf = Btf.from_bytes(btf_blob(types, strings))
    assert btf.find("id") == [1]
    assert btf.find("xid") == [2]
