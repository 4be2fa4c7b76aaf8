"""Global-data memory stays honest across load, close and destroy.

* A frozen map (``.rodata``, ``.rodata.*``, ``.kconfig``) is read-only memory after load: the
  mapping is ``r--s`` on the kernel map, every Python write path raises (none faults), and
  what accessors read is what ``BPF_MAP_LOOKUP_ELEM`` returns.  Views taken before load read
  the kernel's values after it and refuse writes.
* After ``close()``/``destroy()`` every accessor, and every view taken from one, raises a pybpf
  error; raw views still held neither read the kernel map nor fault.
* Binding many objects does not keep their BTF alive.

The objects are the skeleton test library linked into its first application (as in
``test_skel_runtime.py``, here with pybpf's linker) and the loader fixture ``load_globals``.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import struct
import tracemalloc
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import compile_bpf, open_fds, requires_root
from pybpf.errors import BpfError, KernelError
from pybpf.kernel.maps import map_lookup_elem
from pybpf.kernel.remap import buffer_address
from pybpf.obj import ObjectSpec
from pybpf.object import BpfObject, Map
from pybpf.skel import runtime
from pybpf.skel.description import describe
from pybpf.skel.runtime import DestroyedError, Skeleton, Subskeleton
from pybpf.skel.values import VariableError
from test_skel_runtime import build_skel_objects

FROZEN = (".rodata", ".rodata.custom", ".kconfig")
"""load_globals' frozen maps (all mmapable)."""


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_skel_objects(tmp_path_factory.mktemp("skel_mem"), "pybpf")


def mapping_of(address: int) -> tuple[str, str]:
    """Permissions and path of the mapping holding ``address``, from /proc/self/maps."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if start <= address < end:
            return fields[1], fields[5] if len(fields) > 5 else ""
    return "", "(unmapped)"


def kernel_value(m: Map) -> bytes:
    assert m.fd is not None
    value = map_lookup_elem(m.fd, b"\0\0\0\0", m.value_size)
    assert value is not None
    return value


def loaded_globals() -> BpfObject:
    obj = BpfObject.open(compile_bpf("load_globals"))
    var = next(v for v in obj.spec.variables_of(".rodata") if v.name == "target_pid")
    struct.pack_into("<i", obj.map(".rodata").memory, var.offset, os.getpid())
    return obj.load()


# --------------------------------------------------------------------- frozen maps (item 2)


@pytest.mark.parametrize("section", FROZEN)
@pytest.mark.kernel
@requires_root
def test_a_frozen_map_is_a_read_only_mapping_of_the_kernel_map(section: str) -> None:
    with loaded_globals() as obj:
        m = obj.map(section)
        assert mapping_of(buffer_address(m.memory)) == ("r--s", "anon_inode:bpf-map")
        assert bytes(m.memory) == kernel_value(m)
        assert not m.memory_is_live


WRITES: dict[str, Callable[[Any], object]] = {
    "memoryview": lambda mem: memoryview(mem).__setitem__(0, 0x55),
    "item": lambda mem: mem.__setitem__(0, 0x55),
    "slice": lambda mem: mem.__setitem__(slice(0, 4), b"UUUU"),
    "ctypes.from_buffer": lambda mem: ctypes.c_int.from_buffer(mem),
    "struct.pack_into": lambda mem: struct.pack_into("<i", mem, 0, 0x55),
}


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize("section", FROZEN)
@pytest.mark.kernel
@requires_root
def test_every_python_write_to_frozen_memory_raises(section: str, path: str) -> None:
    with loaded_globals() as obj:
        m = obj.map(section)
        before = kernel_value(m)
        for memory in (m.memory, m.image):
            with pytest.raises(TypeError):
                WRITES[path](memory)
        assert bytes(m.memory) == kernel_value(m) == before


@pytest.mark.kernel
@requires_root
def test_rodata_views_taken_before_load_read_the_kernel_and_refuse_writes(
    objects: dict[str, Path],
) -> None:
    before = open_fds()
    skel = Skeleton.open(objects["final1"])
    lib = Subskeleton.open(skel.obj, objects["lib"])
    cfg, rodata = lib.rodata.lib_cfg, lib.rodata
    cfg.base = 2000  # before load: a live view of the image
    cfg.step = 3
    raw = memoryview(skel.obj.map(".rodata").memory)  # a raw buffer across load
    try:
        skel.load()
        m = skel.obj.map(".rodata")
        value = kernel_value(m)
        offset = rodata.variables()["lib_cfg"].offset
        assert struct.unpack_from("<qh", value, offset + 8) == (2000, 3)
        assert (cfg.base, cfg.step) == (2000, 3)
        assert bytes(raw) == value  # the old image shows what was loaded
        for view in (cfg, rodata.lib_cfg, skel.rodata.lib_cfg):
            with pytest.raises(VariableError, match=r"\.rodata variable 'lib_cfg' \(member base\)"
                               r".*frozen"):  # fmt: skip
                view.base = 5
        with pytest.raises(VariableError, match="frozen"):
            rodata.lib_scale = 5
        assert kernel_value(m) == value
        assert (rodata.lib_cfg.base, skel.rodata.lib_scale2) == (2000, 2)
    finally:
        del raw
        skel.destroy()
    assert open_fds() == before


@pytest.mark.kernel
@requires_root
def test_accessors_read_what_the_kernel_holds_in_every_section(
    objects: dict[str, Path],
) -> None:
    with Skeleton.open(objects["final1"]) as skel:
        skel.rodata.lib_scale = 7
        skel.load()
        rodata = skel.obj.map(".rodata")
        with contextlib.suppress(TypeError):  # a raw write after load must not take effect
            struct.pack_into("<i", rodata.memory, skel.rodata.variables()["lib_scale"].offset, 99)
        for section in skel.sections.values():
            m = skel.obj.map(section._pybpf_map.section_name)
            value = kernel_value(m)
            for name, codec in section.variables().items():
                got = getattr(section, name)
                if codec.ctype is not None:
                    assert bytes(got) == value[codec.offset : codec.offset + codec.size], name
                elif codec.packer is not None:
                    assert got == codec.packer.unpack_from(value, codec.offset)[0], name
        assert skel.rodata.lib_scale == 7


@pytest.mark.kernel
@requires_root
def test_a_load_failing_while_mapping_memory_leaves_the_object_opened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pybpf.kernel import mmap as kmmap

    real = kmmap.map_read_only
    calls: list[int] = []

    def second_fails(fd: int, length: int) -> Any:
        calls.append(fd)
        if len(calls) == 2:
            raise KernelError("mmap(MAP_FIXED)", 12)
        return real(fd, length)

    before = open_fds()
    obj = BpfObject.open(compile_bpf("load_globals"))
    images = {m.name: m.memory for m in obj.maps if m.is_internal}
    monkeypatch.setattr(kmmap, "map_read_only", second_fails)
    with pytest.raises(KernelError):
        obj.load()
    assert not obj.loaded and open_fds() == before
    assert all(obj.map(name).memory is image for name, image in images.items())
    obj.map(".rodata").memory[0] = 1  # still the writable image
    monkeypatch.setattr(kmmap, "map_read_only", real)
    with obj:
        obj.load()
        assert kernel_value(obj.map(".rodata"))[0] == 1


STATICS = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static volatile const int secret = 5;
static int counter = 1;

SEC("syscall")
int run(void *ctx)
{
	counter += secret;
	return counter;
}

char LICENSE[] SEC("license") = "GPL";
"""
"""Statics only: the .rodata and .data maps are not mmapable (no exposed variable)."""


@pytest.mark.kernel
@requires_root
def test_global_data_the_process_cannot_map_reads_what_the_kernel_holds(tmp_path: Path) -> None:
    source = tmp_path / "memsafety_statics.bpf.c"
    source.write_text(STATICS)
    with BpfObject.open(compile_bpf(str(source))) as obj:
        rodata, data = obj.map(".rodata"), obj.map(".data")
        assert not rodata.spec.mmapable and not data.spec.mmapable
        obj.load()
        assert obj.program("run").test_run().retval == 1 + 5
        assert bytes(data.memory) == kernel_value(data) == struct.pack("<i", 6)
        assert bytes(rodata.memory) == kernel_value(rodata) == struct.pack("<i", 5)
        for m in (rodata, data):
            with pytest.raises(TypeError):
                m.memory[0] = 1
            assert m.write_refusal() is not None


# --------------------------------------------------------------------- after close (item 18)


@pytest.mark.kernel
@requires_root
def test_every_accessor_raises_after_the_skeleton_is_destroyed(objects: dict[str, Path]) -> None:
    before = open_fds()
    skel = Skeleton.open(objects["final1"])
    skel.load()
    data, rodata, kconfig = skel.data, skel.rodata, skel.kconfig
    stats, hist, cfg = data.lib_stats, data.lib_hist, rodata.lib_cfg
    address = buffer_address(skel.obj.map(".data").memory)
    raw = ctypes.c_int.from_buffer(skel.obj.map(".data").memory)
    assert mapping_of(address) == ("rw-s", "anon_inode:bpf-map")
    skel.destroy()
    uses: list[Callable[[], object]] = [
        lambda: data.lib_counter,
        lambda: setattr(data, "lib_counter", 1),
        lambda: data.lib_tag,
        lambda: data.snapshot(),
        lambda: rodata.lib_scale,
        lambda: kconfig.CONFIG_HZ,
        lambda: stats.hits,
        lambda: setattr(stats, "hits", 1),
        lambda: hist[0],
        lambda: hist.__setitem__(0, 1),
        lambda: cfg.base,
        lambda: skel.data,
    ]
    for use in uses:
        with pytest.raises(DestroyedError, match="skeleton 'skel_app1' was destroyed"):
            use()
    # a raw view still held reads a zero page: not the kernel map, not unmapped memory
    assert mapping_of(address)[1] != "anon_inode:bpf-map"
    assert raw.value == 0
    del raw
    gc.collect()
    assert open_fds() == before


@pytest.mark.kernel
@requires_root
def test_closing_the_object_releases_the_kernel_map_under_held_views() -> None:
    before = open_fds()
    obj = loaded_globals()
    bss = obj.map(".bss")
    address = buffer_address(bss.memory)
    view = (ctypes.c_char * bss.value_size).from_buffer(bss.memory)
    assert mapping_of(address) == ("rw-s", "anon_inode:bpf-map")
    obj.close()
    assert open_fds() == before
    assert mapping_of(address)[1] != "anon_inode:bpf-map"
    assert view.raw == bytes(bss.value_size)
    with pytest.raises(BpfError, match=r"map 'load_glo\.bss'.*closed"):
        bss.memory  # noqa: B018
    assert bss.memory_is_live is False
    assert bss.write_refusal() == "object 'load_globals' is closed"


@pytest.mark.parametrize("loaded", [False, True], ids=["opened", "loaded"])
def test_a_section_read_after_close_raises_a_pybpf_error(
    objects: dict[str, Path], loaded: bool
) -> None:
    if loaded and os.geteuid() != 0:
        pytest.skip("needs root for the bpf() syscall")
    obj = BpfObject.open(objects["final1"])
    lib = Subskeleton.open(obj, objects["lib"])
    stats = lib.data.lib_stats
    if loaded:
        obj.load()
    obj.close()
    for use in (lambda: lib.data.lib_counter, lambda: stats.hits, lambda: lib.rodata.lib_cfg,
                lambda: obj.map(".data").initial_value):  # fmt: skip
        with pytest.raises(BpfError, match=r"object 'skel_app1' is closed"):
            use()


def test_destroying_a_subskeleton_retires_only_its_own_accessors(
    objects: dict[str, Path],
) -> None:
    skel = Skeleton.open(objects["final1"])
    lib = Subskeleton.open(skel.obj, objects["lib"])
    data, stats, hist = lib.data, lib.data.lib_stats, lib.data.lib_hist
    lib.destroy()
    for use in (lambda: data.lib_counter, lambda: setattr(data, "lib_counter", 3),
                lambda: stats.hits, lambda: hist[1], lambda: lib.rodata):  # fmt: skip
        with pytest.raises(DestroyedError, match="subskeleton 'skel_lib' was destroyed"):
            use()
    skel.data.lib_counter = 5  # the application's own skeleton is untouched
    assert skel.data.lib_counter == 5 and skel.data.lib_stats.hits == 5
    skel.destroy()


def test_views_are_the_variables_classes_and_alias_the_image(objects: dict[str, Path]) -> None:
    from pybpf.btf.to_ctypes import CTypesBuilder

    obj = BpfObject.open(objects["final1"])
    lib = Subskeleton.open(obj, objects["lib"])
    assert obj.spec.btf is not None
    builder = CTypesBuilder(obj.spec.btf)
    var = next(v for v in obj.spec.variables if v.name == "lib_stats")
    stats = lib.data.lib_stats
    assert ctypes.sizeof(stats) == ctypes.sizeof(builder.ctype(var.type_id)) == 16
    stats.sum = 77
    assert struct.unpack_from("<Q", obj.map(".data").memory, var.offset + 8)[0] == 77
    hist = lib.data.lib_hist
    hist[1:3] = [20, 30]
    assert list(hist) == [1, 20, 30, 4] and hist[1:3] == [20, 30]
    obj.close()


# --------------------------------------------------------------------- digest cache (item 17)


def test_binding_many_objects_keeps_none_of_their_btf(objects: dict[str, Path]) -> None:
    desc = describe(ObjectSpec.from_path(objects["lib"]))
    data = objects["final1"].read_bytes()

    def bind_once() -> weakref.ref[Any]:
        obj = BpfObject.open(data)
        Subskeleton.from_description(obj, desc)  # compares type signatures: fills the cache
        assert obj.spec.btf is not None
        return weakref.ref(obj.spec.btf)

    bind_once()
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        refs = [bind_once() for _ in range(60)]
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert [r for r in refs if r() is not None] == []
    assert len(runtime._DIGESTS) == 0
    assert grown < 1 << 20, f"{grown} bytes kept by 60 bound objects"
