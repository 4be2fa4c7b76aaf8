"""pybpf and the system libbpf load the same object and end up with the same kernel state.

``fixtures/load_driver.c`` (a C program on libbpf) and :func:`python_driver` (the same steps
on pybpf) each open an object, set ``target_pid``, load, auto-attach, call getpid() a few
times and print: program tags (the kernel's hash of the instructions, map references
masked, so equal tags mean identical relocated code and subprogram layout), func/line info
counts, map definitions as the kernel reports them, and every map's contents afterwards.
For ``load_core`` equal tags show that both applied the same CO-RE relocations.
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import bpftool, compile_bpf, libbpf_driver, requires_root
from pybpf.abi.bpf import MapType
from pybpf.btf import Btf
from pybpf.btf.types import BtfDatasec
from pybpf.kernel.btf import btf_get_data
from pybpf.kernel.maps import map_get_info_by_fd
from pybpf.kernel.progs import prog_get_info_by_fd
from pybpf.object import BpfObject

pytestmark = [requires_root, pytest.mark.kernel, pytest.mark.oracle]

ROUNDS = 5
DUMPED = {MapType.ARRAY, MapType.HASH, MapType.LRU_HASH, MapType.PERCPU_ARRAY,
          MapType.PERCPU_HASH, MapType.LRU_PERCPU_HASH}  # fmt: skip


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return libbpf_driver("load_driver.c", tmp_path_factory.mktemp("driver") / "load_driver")


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``lib util app`` linked by bpftool: lib's __weak globals come first (weak, then strong)."""
    out = tmp_path_factory.mktemp("linked") / "load_link.o"
    parts = [compile_bpf(f"load_link_{part}") for part in ("lib", "util", "app")]
    bpftool("gen", "object", out, *parts)
    return out


def c_driver(exe: Path, obj: Path) -> list[str]:
    run = subprocess.run([str(exe), str(obj), str(ROUNDS)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return sorted(run.stdout.splitlines())


def python_driver(path: Path) -> list[str]:
    out: list[str] = []
    with BpfObject.open(path) as obj:
        rodata = obj.map(".rodata")
        for var in obj.spec.variables_of(".rodata"):
            if var.name == "target_pid":
                struct.pack_into("<i", rodata.image, var.offset, os.getpid())
        obj.load()
        for prog in obj.programs:
            assert prog.fd is not None
            info = prog_get_info_by_fd(prog.fd)
            out.append(f"prog {prog.name} tag={info.tag.hex()} func_info={info.nr_func_info} "
                       f"line_info={info.nr_line_info}")
        for m in obj.maps:
            assert m.fd is not None
            minfo = map_get_info_by_fd(m.fd)
            flags = f"{minfo.map_flags:#x}" if minfo.map_flags else "0"
            out.append(f"map {m.name} type={minfo.type} key={minfo.key_size} "
                       f"value={minfo.value_size} max={minfo.max_entries} flags={flags}")
        obj.attach()
        for _ in range(ROUNDS):
            os.getpid()
        for m in obj.maps:
            if m.is_internal:
                out.append(f"data {m.name} {bytes(m.memory).hex()}")
            elif m.type in DUMPED:
                for key, value in m.raw.items():  # bytes, as the C driver prints them
                    if isinstance(value, list):  # per-CPU: summed, as the driver does
                        total = sum(struct.unpack_from("<Q", v)[0] for v in value)
                        value = struct.pack("<Q", total)
                    out.append(f"elem {m.name} {key.hex()} {value.hex()}")
    return sorted(out)


def without_pid(lines: list[str]) -> list[str]:
    """Mask the one value that differs between two processes: .rodata's target_pid (first)."""
    return [line[: line.index(" ", 5) + 1] + "<pid>" + line[line.index(" ", 5) + 9 :]
            if line.startswith("data ") and line.split()[1].endswith(".rodata") else line
            for line in lines]  # fmt: skip


@pytest.mark.parametrize("fixture", ["load_globals", "load_ksyms", "load_core"])
def test_single_object_matches_libbpf(driver: Path, fixture: str) -> None:
    path = compile_bpf(fixture)
    ours, theirs = python_driver(path), c_driver(driver, path)
    if fixture == "load_core":  # its .bss holds pids (of two different processes)
        ours = [line for line in ours if not line.startswith("data ")]
        theirs = [line for line in theirs if not line.startswith("data ")]
    assert without_pid(ours) == without_pid(theirs)
    if fixture == "load_globals":
        assert any(line.startswith("elem inner_b 00000000 32") for line in ours)  # 5 * 10


def test_linked_object_matches_libbpf(driver: Path, linked: Path) -> None:
    ours, theirs = python_driver(linked), c_driver(driver, linked)
    assert without_pid(ours) == without_pid(theirs)
    # the strong definitions won: policy(x) = x + 100 and shared_val = 42
    with BpfObject.open(linked) as obj:
        assert {p.name for p in obj.programs} == {"app_main", "lib_prog"}
    assert any(line.startswith("data load_lin.bss") for line in ours)


def test_weak_then_strong_uses_the_symbol_offset(linked: Path) -> None:
    with BpfObject.open(linked) as obj:
        symbol = obj.spec.elf.symbol_named("shared_val")
        assert symbol is not None
        btf = obj.spec.btf
        assert btf is not None
        stale = _datasec_offsets(btf, ".data")["shared_val"]
        assert stale != symbol.value, "bpftool no longer has the weak-then-strong bug"

        offset = next(v.offset for v in obj.spec.variables_of(".data") if v.name == "shared_val")
        data = obj.map(".data")
        assert offset == symbol.value
        assert struct.unpack_from("<i", data.image, offset)[0] == 42  # the strong value
        struct.pack_into("<i", data.image, offset, 77)  # written before load...
        for var in obj.spec.variables_of(".rodata"):
            if var.name == "target_pid":
                struct.pack_into("<i", obj.map(".rodata").image, var.offset, os.getpid())
        obj.load()
        obj.attach()
        os.getpid()
        seen = next(v.offset for v in obj.spec.variables_of(".bss") if v.name == "seen_shared")
        assert struct.unpack_from("<i", obj.map(".bss").image, seen)[0] == 77  # ...seen

        # and the BTF the kernel holds has the corrected DATASEC
        kernel = obj._kernel
        assert kernel is not None and kernel.btf_fd is not None
        loaded = Btf.from_bytes(btf_get_data(kernel.btf_fd))
        assert _datasec_offsets(loaded, ".data")["shared_val"] == symbol.value


def _datasec_offsets(btf: Btf, section: str) -> dict[str, int]:
    sec = btf[btf.find_one(section)]
    assert isinstance(sec, BtfDatasec)
    return {btf.name_of(v.type): v.offset for v in sec.vars}


@pytest.mark.parametrize("order", [("lib", "util", "app"), ("app", "lib", "util"),
                                   ("util", "app", "lib")])  # fmt: skip
def test_objects_linked_by_pybpf_in_any_order_match_libbpf(
    driver: Path, tmp_path: Path, order: tuple[str, ...]
) -> None:
    from pybpf.linker.linker import link_objects

    out = tmp_path / "load_link.o"
    out.write_bytes(link_objects([compile_bpf(f"load_link_{part}") for part in order]))
    ours, theirs = python_driver(out), c_driver(driver, out)
    assert without_pid(ours) == without_pid(theirs)
    with BpfObject.open(out) as obj:
        values = {v.name: v for v in obj.spec.variables}
        bss = next(line.split()[2] for line in ours if line.startswith("data load_lin.bss"))
        image = bytes.fromhex(bss)

        def var(name: str) -> int:
            value: int = struct.unpack_from("<i", image, values[name].offset)[0]
            return value

        # strong definitions win whatever the order: policy(4) = 104, shared_val = 42
        assert var("rounds") == ROUNDS
        assert var("result") == ROUNDS * 3 + ROUNDS + 100
        assert var("seen_shared") == 42
