"""pybpf.kernel maps against the running kernel: every common map type, CRUD, batches,
freeze, mmap, and no descriptor left behind."""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterator

import pytest

from conftest import btf_blob, open_fds, requires_root
from pybpf.abi import insn as asm
from pybpf.abi.bpf import BpfMapUpdateFlags, MapFlags, MapType, ProgType
from pybpf.errors import KernelError, PermissionDeniedError
from pybpf.kernel.btf import btf_get_info_by_fd, btf_load
from pybpf.kernel.fd import Fd
from pybpf.kernel.maps import (
    map_create,
    map_delete_batch,
    map_delete_elem,
    map_freeze,
    map_get_info_by_fd,
    map_get_next_key,
    map_keys,
    map_lookup_all,
    map_lookup_and_delete_batch,
    map_lookup_and_delete_elem,
    map_lookup_batch,
    map_lookup_elem,
    map_lookup_elem_into,
    map_update_batch,
    map_update_elem,
)
from pybpf.kernel.mmap import array_mmap_size, map_mmap
from pybpf.kernel.perf import perf_event_open_bpf_output
from pybpf.kernel.progs import prog_load
from pybpf.kernel.system import page_size, percpu_value_size, possible_cpus

pytestmark = [requires_root, pytest.mark.kernel]

ANY, NOEXIST, EXIST = (
    BpfMapUpdateFlags.BPF_ANY,
    BpfMapUpdateFlags.BPF_NOEXIST,
    BpfMapUpdateFlags.BPF_EXIST,
)


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v)


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    before = open_fds()
    yield
    assert open_fds() == before


# --- plain key/value maps ------------------------------------------------------------------


@pytest.mark.parametrize(
    "map_type",
    [MapType.HASH, MapType.LRU_HASH],
)
def test_hash_crud_and_flags(map_type: MapType) -> None:
    with map_create(map_type, 4, 8, 16, name="crud") as m:
        assert map_lookup_elem(m, u32(1), 8) is None
        map_update_elem(m, u32(1), u64(10), NOEXIST)
        with pytest.raises(KernelError) as exc:
            map_update_elem(m, u32(1), u64(11), NOEXIST)
        assert exc.value.errno == errno.EEXIST
        assert exc.value.command == "BPF_MAP_UPDATE_ELEM"
        map_update_elem(m, u32(1), u64(12), EXIST)
        with pytest.raises(KernelError) as exc:
            map_update_elem(m, u32(2), u64(1), EXIST)
        assert exc.value.errno == errno.ENOENT
        assert map_lookup_elem(m, u32(1), 8) == u64(12)
        buf = bytearray(8)
        assert map_lookup_elem_into(m, u32(1), buf)
        assert buf == u64(12)
        assert not map_lookup_elem_into(m, u32(7), buf)
        assert map_delete_elem(m, u32(1))
        assert not map_delete_elem(m, u32(1))


def test_array_semantics() -> None:
    with map_create(MapType.ARRAY, 4, 4, 3) as m:
        assert map_lookup_elem(m, u32(2), 4) == bytes(4)  # arrays are pre-zeroed
        assert map_lookup_elem(m, u32(3), 4) is None  # out of range
        map_update_elem(m, u32(2), u32(7))
        with pytest.raises(KernelError) as exc:
            map_update_elem(m, u32(0), u32(1), NOEXIST)
        assert exc.value.errno == errno.EEXIST
        with pytest.raises(KernelError) as exc:
            map_delete_elem(m, u32(0))  # array slots cannot be deleted
        assert exc.value.errno == errno.EINVAL
        assert list(map_keys(m, 4)) == [u32(0), u32(1), u32(2)]


def test_get_next_key_walks_hash() -> None:
    with map_create(MapType.HASH, 4, 4, 8) as m:
        for k in range(5):
            map_update_elem(m, u32(k), u32(k * k))
        keys = sorted(struct.unpack("<I", k)[0] for k in map_keys(m, 4))
        assert keys == [0, 1, 2, 3, 4]
        last = list(map_keys(m, 4))[-1]
        assert map_get_next_key(m, last, 4) is None


@pytest.mark.parametrize(
    "map_type",
    [
        MapType.PERCPU_ARRAY,
        MapType.PERCPU_HASH,
        MapType.LRU_PERCPU_HASH,
    ],
)
def test_percpu_values_have_one_slot_per_cpu(map_type: MapType) -> None:
    size = percpu_value_size(4)
    assert size == 8 * possible_cpus()
    value = b"".join(struct.pack("<Ixxxx", 100 + cpu) for cpu in range(possible_cpus()))
    with map_create(map_type, 4, 4, 4) as m:
        map_update_elem(m, u32(1), value)
        assert map_lookup_elem(m, u32(1), size) == value


def test_lpm_trie_longest_prefix_match() -> None:
    def key(prefix: int, ip: str) -> bytes:
        return u32(prefix) + bytes(int(x) for x in ip.split("."))

    flags = MapFlags.BPF_F_NO_PREALLOC
    with map_create(MapType.LPM_TRIE, 8, 4, 16, map_flags=flags) as m:
        map_update_elem(m, key(8, "10.0.0.0"), u32(8))
        map_update_elem(m, key(24, "10.1.2.0"), u32(24))
        assert map_lookup_elem(m, key(32, "10.1.2.3"), 4) == u32(24)
        assert map_lookup_elem(m, key(32, "10.9.9.9"), 4) == u32(8)
        assert map_lookup_elem(m, key(32, "11.0.0.1"), 4) is None


def test_queue_and_stack_order() -> None:
    with (
        map_create(MapType.QUEUE, 0, 4, 4) as q,
        map_create(MapType.STACK, 0, 4, 4) as s,
    ):
        for v in (1, 2, 3):
            map_update_elem(q, None, u32(v))
            map_update_elem(s, None, u32(v))
        assert map_lookup_elem(q, None, 4) == u32(1)  # peek
        assert [map_lookup_and_delete_elem(q, None, 4) for _ in range(3)] == [
            u32(1),
            u32(2),
            u32(3),
        ]
        assert [map_lookup_and_delete_elem(s, None, 4) for _ in range(3)] == [
            u32(3),
            u32(2),
            u32(1),
        ]
        assert map_lookup_and_delete_elem(q, None, 4) is None


def test_bloom_filter_membership() -> None:
    with map_create(MapType.BLOOM_FILTER, 0, 8, 100, map_extra=3) as m:
        map_update_elem(m, None, u64(42))
        assert map_lookup_elem_into(m, None, bytearray(u64(42)))
        candidates = [bytearray(u64(v)) for v in range(1000, 1010)]
        absent = [c for c in candidates if not map_lookup_elem_into(m, None, c)]
        assert absent, "a 100-entry bloom filter with one member cannot claim ten others"


def test_map_in_map_uses_inner_map_fd() -> None:
    with map_create(MapType.ARRAY, 4, 4, 1, name="inner") as inner:
        inner_id = map_get_info_by_fd(inner).id
        for outer_type in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
            with map_create(outer_type, 4, 4, 2, inner_map_fd=inner) as outer:
                map_update_elem(outer, u32(1), u32(inner.fileno()))
                # user space writes fds, reads back map ids
                assert map_lookup_elem(outer, u32(1), 4) == u32(inner_id)


def test_prog_array_holds_programs() -> None:
    code = asm.return_imm(0)
    with (
        map_create(MapType.PROG_ARRAY, 4, 4, 2) as jmp_table,
        prog_load(ProgType.SOCKET_FILTER, code).fd as prog,
    ):
        map_update_elem(jmp_table, u32(0), u32(prog.fileno()))
        assert not map_delete_elem(jmp_table, u32(1))  # never filled
        assert map_delete_elem(jmp_table, u32(0))
        assert not map_delete_elem(jmp_table, u32(0))


def test_perf_event_array_takes_bpf_output_events() -> None:
    ncpu = possible_cpus()
    with map_create(MapType.PERF_EVENT_ARRAY, 4, 4, ncpu) as m:
        events = [perf_event_open_bpf_output(cpu) for cpu in range(ncpu)]
        try:
            for cpu, ev in enumerate(events):
                map_update_elem(m, u32(cpu), u32(ev.fileno()))
        finally:
            for ev in events:
                ev.close()
        # the map holds its own reference to each event: every slot is occupied once
        for cpu in range(ncpu):
            assert map_delete_elem(m, u32(cpu))
            assert not map_delete_elem(m, u32(cpu))


@pytest.mark.parametrize(
    "map_type", [MapType.RINGBUF, MapType.USER_RINGBUF]
)
def test_ring_buffers_are_page_multiples(map_type: MapType) -> None:
    with map_create(map_type, 0, 0, page_size() * 4) as m:
        info = map_get_info_by_fd(m)
        assert info.map_type == map_type
        assert info.max_entries == page_size() * 4
    with pytest.raises(KernelError) as exc:
        map_create(map_type, 0, 0, page_size() + 1)
    assert exc.value.errno == errno.EINVAL


@pytest.mark.parametrize(
    ("map_type", "value_size"),
    [(MapType.DEVMAP, 4), (MapType.CPUMAP, 4)],
)
def test_redirect_maps(map_type: MapType, value_size: int) -> None:
    try:
        m = map_create(map_type, 4, value_size, 2)
    except KernelError as exc:
        release = os.uname().release.split("-")[0].split(".")
        if (int(release[0]), int(release[1])) >= (4, 15):  # DEVMAP 4.14, CPUMAP 4.15
            raise
        pytest.skip(f"{map_type.name} unavailable in this kernel: {exc}")
    with m:
        assert map_get_info_by_fd(m).map_type == map_type


def _int_btf() -> bytes:
    """BTF with one type, ``[1] int``: enough for the key and value of an sk_storage map."""
    types = struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32)
    strings = b"\0int\0"
    return btf_blob(types, strings)


def test_sk_storage_needs_btf() -> None:
    flags = MapFlags.BPF_F_NO_PREALLOC
    with btf_load(_int_btf()).fd as btf:
        with map_create(
            MapType.SK_STORAGE,
            4,
            4,
            0,
            map_flags=flags,
            btf_fd=btf,
            btf_key_type_id=1,
            btf_value_type_id=1,
            name="sk_stg",
        ) as m:
            info = map_get_info_by_fd(m)
            assert (info.btf_key_type_id, info.btf_value_type_id) == (1, 1)
            assert info.btf_id == btf_get_info_by_fd(btf).id
        with pytest.raises(KernelError):
            map_create(MapType.SK_STORAGE, 4, 4, 0, map_flags=flags)


# --- batches -------------------------------------------------------------------------------


def test_batch_update_lookup_delete_on_hash() -> None:
    n = 100
    keys = [u32(i) for i in range(n)]
    values = [u64(i * 3) for i in range(n)]
    with map_create(MapType.HASH, 4, 8, 128) as m:
        assert map_update_batch(m, keys, values) == n
        got = dict(map_lookup_all(m, 4, 8, chunk=16))
        assert got == dict(zip(keys, values, strict=True))
        assert map_delete_batch(m, keys[:40]) == 40
        assert len(dict(map_lookup_all(m, 4, 8))) == 60
        popped: dict[bytes, bytes] = {}
        token = None
        while True:
            step = map_lookup_and_delete_batch(m, 4, 8, 32, token)
            popped.update(zip(step.keys, step.values, strict=True))
            if step.next_batch is None:
                break
            token = step.next_batch
        assert len(popped) == 60
        assert map_get_next_key(m, None, 4) is None


def test_batch_on_array_in_chunks() -> None:
    with map_create(MapType.ARRAY, 4, 4, 10) as m:
        map_update_batch(m, [u32(i) for i in range(10)], [u32(100 + i) for i in range(10)])
        first = map_lookup_batch(m, 4, 4, 4)
        assert first.keys == [u32(i) for i in range(4)]
        assert first.next_batch is not None
        rest = list(map_lookup_all(m, 4, 4, chunk=3))
        assert [v for _, v in rest] == [u32(100 + i) for i in range(10)]


def test_batch_rejects_mismatched_sizes() -> None:
    with map_create(MapType.HASH, 4, 4, 4) as m, pytest.raises(ValueError):
        map_update_batch(m, [u32(1), b"\x01"], [u32(1), u32(2)])


# --- freeze and mmap -----------------------------------------------------------------------


def test_freeze_makes_map_read_only_for_user_space() -> None:
    with map_create(MapType.ARRAY, 4, 8, 2) as m:
        map_update_elem(m, u32(0), u64(5))
        map_freeze(m)
        with pytest.raises(PermissionDeniedError) as exc:
            map_update_elem(m, u32(0), u64(6))
        assert exc.value.errno == errno.EPERM
        assert exc.value.command == "BPF_MAP_UPDATE_ELEM"
        assert map_lookup_elem(m, u32(0), 8) == u64(5)


def test_mmap_writes_are_seen_by_lookup() -> None:
    flags = MapFlags.BPF_F_MMAPABLE
    with map_create(MapType.ARRAY, 4, 12, 3, map_flags=flags) as m:
        mem = map_mmap(m, 12, 3)
        try:
            assert len(mem) == array_mmap_size(12, 3) == page_size()
            mem[16 : 16 + 12] = b"hello world!"  # element 1 starts at round_up(12, 8)
            assert map_lookup_elem(m, u32(1), 12) == b"hello world!"
            map_update_elem(m, u32(2), b"from syscall")
            assert mem[32:44] == b"from syscall"
        finally:
            mem.close()


def test_frozen_map_maps_read_only_only() -> None:
    flags = MapFlags.BPF_F_MMAPABLE
    with map_create(MapType.ARRAY, 4, 8, 1, map_flags=flags) as m:
        map_update_elem(m, u32(0), u64(9))
        map_freeze(m)
        with pytest.raises(PermissionDeniedError):
            map_mmap(m, 8, 1, writable=True)
        ro = map_mmap(m, 8, 1, writable=False)
        try:
            assert ro[:8] == u64(9)
        finally:
            ro.close()


def test_non_mmapable_map_refuses_mmap() -> None:
    with map_create(MapType.ARRAY, 4, 8, 1) as m, pytest.raises(KernelError):
        map_mmap(m, 8, 1)


# --- info, names, errors, ownership --------------------------------------------------------


def test_info_reports_creation_parameters() -> None:
    flags = MapFlags.BPF_F_NO_PREALLOC
    with map_create(
        MapType.HASH, 8, 16, 32, name="a_very_long_map_name", map_flags=flags
    ) as m:
        info = map_get_info_by_fd(m)
    assert info.map_type == MapType.HASH
    assert (info.key_size, info.value_size, info.max_entries) == (8, 16, 32)
    assert info.map_flags == flags
    assert info.name == "a_very_long_map"  # BPF_OBJ_NAME_LEN - 1 characters
    assert info.id > 0


def test_create_errors_name_the_command_and_leak_nothing() -> None:
    with pytest.raises(KernelError) as exc:
        map_create(MapType.HASH, 0, 4, 1)  # hash keys cannot be empty
    assert exc.value.errno == errno.EINVAL
    assert exc.value.command == "BPF_MAP_CREATE"
    assert "BPF_MAP_TYPE_HASH" in str(exc.value)


def test_fd_ownership() -> None:
    m = map_create(MapType.ARRAY, 4, 4, 1)
    assert isinstance(m, Fd)
    assert m.fileno() >= 3
    twin = m.dup()
    m.close()
    m.close()  # idempotent
    assert m.closed
    with pytest.raises(ValueError):
        m.fileno()
    assert map_get_info_by_fd(twin).max_entries == 1  # the object lives on through the dup
    twin.close()


def test_garbage_collected_fd_closes_itself() -> None:
    before = open_fds()
    with pytest.warns(ResourceWarning):
        map_create(MapType.ARRAY, 4, 4, 1)  # dropped on the floor
        import gc

        gc.collect()
    assert open_fds() == before


def test_element_calls_are_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def worker(base: int, m: Fd) -> bool:
        ok = True
        for i in range(500):
            key = u32(base + i)
            map_update_elem(m, key, u64(base * 7 + i))
            ok &= map_lookup_elem(m, key, 8) == u64(base * 7 + i)
        return ok

    with map_create(MapType.HASH, 4, 8, 4096) as m, ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda b: worker(b, m), (0, 1000, 2000, 3000)))
    assert all(results)


def test_large_keys_and_values_take_the_unpinned_path() -> None:
    key, value = b"k" * 600, b"v" * 9000  # larger than the per-call scratch buffer
    with map_create(MapType.HASH, len(key), len(value), 2) as m:
        map_update_elem(m, key, value)
        assert map_lookup_elem(m, key, len(value)) == value
        assert map_lookup_elem(m, b"x" * 600, len(value)) is None
        assert map_delete_elem(m, memoryview(key))
