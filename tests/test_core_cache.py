"""The kernel BTF cache and the name index: fast, and never trusted blindly.

What is checked: candidate lookup (by scan, by freshly built table, by table loaded from the
cache) agrees with a brute-force walk over every vmlinux type; a second open reuses the type
offsets instead of walking the BTF; damaged, truncated or foreign cache files are ignored
and replaced; an unwritable cache directory only costs speed; the key follows the contents.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from pybpf.btf.btf import Btf, TypeIndex
from pybpf.btf.builder import BtfBuilder
from pybpf.btf.types import BtfInt, BtfMember, BtfStruct, IntEncoding
from pybpf.core import cache as cache_mod
from pybpf.core.cache import CacheKey, IndexCache
from pybpf.core.index import HashTable, NameIndex, build_table
from pybpf.core.names import essential_name, essential_name_len
from pybpf.core.target import TargetBtf

VMLINUX = Path("/sys/kernel/btf/vmlinux")
pytestmark = pytest.mark.skipif(not VMLINUX.exists(), reason="needs /sys/kernel/btf/vmlinux")


@pytest.fixture(scope="module")
def vmlinux() -> Btf:
    return Btf.from_bytes(VMLINUX.read_bytes(), file=str(VMLINUX))


@pytest.fixture(scope="module")
def brute(vmlinux: Btf) -> dict[str, list[int]]:
    """Essential name -> ids, the slow obvious way (libbpf's loop over every type)."""
    out: dict[str, list[int]] = {}
    for type_id in vmlinux.type_ids():
        name = vmlinux.name_of(type_id)
        if name and essential_name_len(name):
            out.setdefault(essential_name(name), []).append(type_id)
    return out


def sample_names(brute: dict[str, list[int]]) -> list[str]:
    rng = random.Random(7)
    names = rng.sample(sorted(brute), 300)
    common = ["task_struct", "sk_buff", "bpf_map_type", "pid", "int", "list_head", "u32"]
    return names + common + ["pybpf_no_such_type", "task_struct___x"]


def test_essential_names() -> None:
    assert essential_name("task_struct___old") == "task_struct"
    assert essential_name("a___b___c") == "a___b"
    assert essential_name("__x___y") == "__x"
    assert essential_name("x____y") == "x____y"  # the separator needs a non-underscore after
    assert essential_name("___x") == "___x"
    assert essential_name("plain") == "plain"


def test_scan_table_and_cache_agree_with_brute_force(
    vmlinux: Btf, brute: dict[str, list[int]], tmp_path: Path
) -> None:
    names = sample_names(brute)
    # kernel names with a flavor separator: found under their essential name
    names += [
        essential_name(vmlinux.name_of(i))
        for i in vmlinux.type_ids()
        if "___" in vmlinux.name_of(i)
    ][:20]
    scan = NameIndex(vmlinux, scan_lookups=len(names) + 1)
    built = build_table(vmlinux)
    key = CacheKey(1, 2)
    IndexCache(tmp_path).store(key, vmlinux.type_index, built)
    entry = IndexCache(tmp_path).load(key)
    assert entry is not None and entry.table is not None
    assert list(entry.type_index) == list(vmlinux.type_index)
    loaded = NameIndex(vmlinux, entry.table)
    fresh = NameIndex(vmlinux, built)
    for name in names:
        want = tuple(brute.get(name, ()))
        assert scan.lookup(name) == want, name
        assert fresh.lookup(name) == want, name
        assert loaded.lookup(name) == want, name


def test_second_open_reuses_the_cached_type_offsets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = TargetBtf.running_kernel(cache_dir=tmp_path)
    [cache_file] = tmp_path.glob("btf-*.idx")
    first.prepare()  # builds the name table and stores it next to the offsets
    local = BtfBuilder()
    local.add(BtfInt("int", 4, IntEncoding.SIGNED, 0, 32))
    local.add(BtfStruct("task_struct___mine", 4, (BtfMember("pid", 1, 0),)))
    local_btf = local.to_btf()

    def no_walk(self: Btf, begin: int, end: int) -> object:
        raise AssertionError("the type section was walked despite the cache")

    monkeypatch.setattr(Btf, "_index_types", no_walk)
    second = TargetBtf.running_kernel(cache_dir=tmp_path)
    assert isinstance(second._main.index.table, HashTable)
    cands = second.find_candidates(local_btf, 2)
    assert [c.type_id for c in cands] == first.main.find("task_struct", BtfStruct.kind)
    assert list(tmp_path.glob("btf-*.idx")) == [cache_file]


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty", "foreign"])
def test_damaged_cache_is_ignored_and_replaced(tmp_path: Path, damage: str) -> None:
    TargetBtf.running_kernel(cache_dir=tmp_path).prepare()
    [path] = tmp_path.glob("btf-*.idx")
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        raw[len(raw) - 3] ^= 0x40
    elif damage == "garbage":
        raw = bytearray(os.urandom(len(raw)))
    elif damage == "empty":
        raw = bytearray()
    else:  # a valid file for other contents under this name
        other = CacheKey(123, 456)
        raw = bytearray(
            cache_mod.encode(other, Btf.from_bytes(VMLINUX.read_bytes()).type_index, None)
        )
    path.write_bytes(bytes(raw))
    target = TargetBtf.running_kernel(cache_dir=tmp_path)
    assert target._main.index.table is None
    assert target.main.find("task_struct", BtfStruct.kind)
    local = BtfBuilder()
    local.add(BtfStruct("sk_buff", 0, ()))
    assert [c.type_id for c in target.find_candidates(local.to_btf(), 1)] == target.main.find(
        "sk_buff", BtfStruct.kind
    )
    key = CacheKey.of(VMLINUX.read_bytes())
    assert IndexCache(tmp_path).load(key) is not None  # rewritten whole


def test_unwritable_cache_directory_only_costs_speed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    target = TargetBtf.running_kernel(cache_dir=blocker / "sub")
    target.prepare()
    assert target.main.find("task_struct", BtfStruct.kind)


def test_key_follows_contents(tmp_path: Path) -> None:
    def custom(size: int) -> Path:
        b = BtfBuilder()
        b.add(BtfInt("int", 4, IntEncoding.SIGNED, 0, 32))
        b.add(BtfStruct("foo", size, (BtfMember("a", 1, 0),)))
        path = tmp_path / f"c{size}.btf"
        path.write_bytes(b.encode())
        return path

    cache_dir = tmp_path / "cache"
    a = TargetBtf.from_path(custom(4), cache_dir=cache_dir)
    b = TargetBtf.from_path(custom(8), cache_dir=cache_dir)
    assert len(list(cache_dir.iterdir())) == 2
    assert a.main.size_of(2) == 4 and b.main.size_of(2) == 8
    again = TargetBtf.from_path(custom(8), cache_dir=cache_dir)
    assert again.main.size_of(2) == 8


def test_cached_walk_is_the_parsers_own(vmlinux: Btf) -> None:
    """A Btf opened with the cached walk decodes every type exactly as a fresh parse."""
    again = Btf.from_bytes(vmlinux.data, type_index=vmlinux.type_index)
    fresh = Btf(vmlinux.data)
    for type_id in range(1, len(fresh) + 1, 97):
        assert again[type_id] == fresh[type_id]
    assert list(again.type_offsets()) == [fresh._raw_offset(i) for i in fresh.type_ids()]


def test_implausible_cached_walk_is_walked_again(vmlinux: Btf) -> None:
    from array import array

    again = Btf.from_bytes(vmlinux.data, type_index=TypeIndex(array("I", [5, 10**9])))
    assert list(again.type_index) == list(vmlinux.type_index)


def test_old_entries_are_pruned(tmp_path: Path) -> None:
    from array import array

    cache = IndexCache(tmp_path)
    for i in range(cache_mod.MAX_FILES + 3):
        assert cache.store(CacheKey(i, i), TypeIndex(array("I", [0])), None)
        os.utime(tmp_path / CacheKey(i, i).filename, (i, i))
    names = {p.name for p in tmp_path.iterdir()}
    assert len(names) == cache_mod.MAX_FILES
    last = cache_mod.MAX_FILES + 2
    assert CacheKey(last, last).filename in names
    assert CacheKey(0, 0).filename not in names


@pytest.mark.parametrize("stamp", ["stale-crc", "other-boot", "garbage"])
def test_remembered_vmlinux_key_is_checked(tmp_path: Path, stamp: str) -> None:
    """vmlinux's content key is remembered per boot; a wrong memo costs a recomputation."""
    TargetBtf.running_kernel(cache_dir=tmp_path).prepare()
    memo = tmp_path / "vmlinux.key"
    boot, size, crc = memo.read_text().split()
    assert (int(size), int(crc, 16)) == (
        CacheKey.of(VMLINUX.read_bytes()).size,
        CacheKey.of(VMLINUX.read_bytes()).crc,
    )
    memo.write_text(
        {
            "stale-crc": f"{boot} {size} 0badf00d\n",
            "other-boot": f"not-this-boot {size} {crc}\n",
            "garbage": "\x00\x01",
        }[stamp]
    )
    target = TargetBtf.running_kernel(cache_dir=tmp_path)
    assert isinstance(target._main.index.table, HashTable)
    assert memo.read_text().split() == [boot, size, crc]
