"""Ground truth: programs relocated by :mod:`pybpf.core` run in the kernel and read the truth.

The object is relocated in user space (our CO-RE, not the kernel's), loaded with pybpf's
loader with no CO-RE records left for the kernel to apply, and its ``raw_tp`` program is run
with ``BPF_PROG_TEST_RUN``, which executes it in this very task.  What it read through
relocated offsets must be this process's pid, thread id, parent and name; the existence,
size and enum answers must be what a lookup in ``Btf.vmlinux()`` gives.
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
from pathlib import Path

import pytest

from conftest import compile_bpf
from pybpf.btf.btf import Btf
from pybpf.btf.types import BtfEnum, BtfEnum64, BtfKind, BtfStruct
from pybpf.core import TargetBtf, relocate_object
from pybpf.kernel import progs
from pybpf.kernel.fd import FdLike
from pybpf.load import loader as load
from pybpf.obj import ObjectSpec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading programs needs root")


@pytest.fixture(scope="module")
def results() -> list[int]:
    original = ObjectSpec.from_path(compile_bpf("core_kernel"))
    spec = relocate_object(original, TargetBtf.running_kernel())
    assert not any(p.core_relos for p in spec.programs)
    rodata = spec.map(".rodata")
    image = bytearray(rodata.initial_value)
    [tgid_var] = [v for v in spec.variables_of(".rodata") if v.name == "core_tgid"]
    struct.pack_into("<I", image, tgid_var.offset, os.getpid())
    state = load.load_object(spec, images={rodata.name: bytes(image)})
    try:
        for name in ("core_task", "core_types", "core_enums"):
            # raw_tp runs take no output buffers and no repeat count
            progs.prog_test_run(
                state.programs[name], ctx_in=bytes(16), ctx_size_out=0, data_size_out=0,
                repeat=0,
            )
        bss = spec.map(".bss")
        [out] = [v for v in spec.variables_of(".bss") if v.name == "core_out"]
        memory = state.mmaps[bss.name]
        return list(struct.unpack_from("<32Q", memory, out.offset))
    finally:
        state.close()


@pytest.fixture(scope="module")
def vmlinux() -> Btf:
    return Btf.vmlinux()


def test_task_fields_are_this_process(results: list[int]) -> None:
    assert results[0] == threading.get_native_id()  # task->pid is the thread id
    assert results[1] == os.getpid()  # task->tgid
    assert results[2] == os.getppid()  # task->real_parent->tgid
    comm = struct.pack("<2Q", results[3], results[4]).split(b"\0")[0].decode()
    assert comm == Path("/proc/self/comm").read_text().strip()[:15]
    assert results[5] == 0  # in_execve: not executing
    # sched_reset_on_fork: what sched_getscheduler() reports for this very thread
    assert results[17] == int(bool(os.sched_getscheduler(0) & os.SCHED_RESET_ON_FORK))


def test_existence_and_sizes_follow_vmlinux(results: list[int], vmlinux: Btf) -> None:
    task_id = vmlinux.find_one("task_struct", BtfKind.STRUCT)
    task = vmlinux[task_id]
    assert isinstance(task, BtfStruct)
    names = {m.name for m in task.members}
    assert results[6] == int("pid" in names)
    assert results[7] == int("state" in names)
    assert results[9] == 16  # sizeof(comm)
    assert results[10] == 1 and results[11] == 0  # pid_t signed, __state unsigned
    assert results[12] == vmlinux.size_of(task_id)
    assert results[13] == 1
    assert results[15] == task_id
    local = ObjectSpec.from_path(compile_bpf("core_kernel")).btf
    assert local is not None
    assert results[16] == local.find_one("task_struct", BtfKind.STRUCT)  # TYPE_ID_LOCAL
    # task_struct.__state read (state does not exist): the test run executes in this task,
    # which is running, so it reads TASK_RUNNING
    assert results[8] == 0


def test_types_that_do_not_exist_or_do_not_match(results: list[int], vmlinux: Btf) -> None:
    assert results[18] == int(bool(vmlinux.find("pybpf_absent", BtfKind.STRUCT))) == 0
    assert results[19] == 0  # the guarded read of it never ran
    assert results[20] == 0  # sk_buff___nomatch: int len vs unsigned int len
    assert results[21] == 1
    assert results[22] == vmlinux.size_of(vmlinux.find_one("sk_buff", BtfKind.STRUCT))
    assert results[23] == 0


def enum_values(vmlinux: Btf, name: str) -> dict[str, int]:
    [type_id] = vmlinux.find(name, BtfKind.ENUM) or vmlinux.find(name, BtfKind.ENUM64)
    t = vmlinux[type_id]
    assert isinstance(t, BtfEnum | BtfEnum64)
    return {v.name: v.value & (2**64 - 1) for v in t.values}


def test_enum_answers_follow_vmlinux(results: list[int], vmlinux: Btf) -> None:
    map_types = enum_values(vmlinux, "bpf_map_type")
    assert results[24] == int("BPF_MAP_TYPE_RINGBUF" in map_types) == 1
    assert results[25] == map_types["BPF_MAP_TYPE_RINGBUF"]  # local value was 1000
    assert results[26] == 0 and results[27] == 0  # absent enumerator, guarded read
    assert results[28] == enum_values(vmlinux, "perf_callchain_context")["PERF_CONTEXT_KERNEL"]
    assert results[29] == 1
    # a 32-bit local enum relocated to an ENUM64 enumerator: ld_imm64 carries all 64 bits
    assert results[30] == enum_values(vmlinux, "blake2b_iv")["BLAKE2B_IV1"]


def xlated(fd: FdLike) -> list[bytes]:
    """The kernel's translation of the program ``fd``, one 8-byte instruction per item."""
    from pybpf.kernel.infos import BpfProgInfo, obj_get_info_by_fd

    info = obj_get_info_by_fd(fd, BpfProgInfo())
    size = info.xlated_prog_len
    buf = ctypes.create_string_buffer(size)
    info = BpfProgInfo(xlated_prog_len=size, xlated_prog_insns=ctypes.addressof(buf))
    obj_get_info_by_fd(fd, info)
    return [buf.raw[i : i + 8] for i in range(0, size, 8)]


def test_same_program_as_the_kernels_own_core() -> None:
    """The kernel applies CO-RE itself when handed the records (``BPF_PROG_LOAD`` with
    ``core_relos``, which pybpf's loader uses today): the verified programs must be the
    same instruction for instruction, except map addresses in ``ld_imm64`` (new maps).

    ``core_enums`` is left out: the kernel's candidate search (6.18) wants the exact kind,
    so a local 32-bit enum finds no ENUM64 candidate and the (reachable) instruction is
    poisoned, where libbpf, and we, relocate it (see test_core_reloc).
    """
    original = ObjectSpec.from_path(compile_bpf("core_kernel"))
    ours = relocate_object(original, TargetBtf.running_kernel())
    compared = [p.name for p in original.programs if p.name != "core_enums"]
    autoload = {p.name: p.name in compared for p in original.programs}
    by_kernel = load.load_object(original, autoload=autoload)
    try:
        by_us = load.load_object(ours, autoload=autoload)
        try:
            for prog in (original.program(name) for name in compared):
                theirs = xlated(by_kernel.programs[prog.name])
                mine = xlated(by_us.programs[prog.name])
                assert len(mine) == len(theirs), prog.name
                k = 0
                while k < len(mine):
                    if mine[k][0] == 0x18 and theirs[k][0] == 0x18:  # ld_imm64: map pointers
                        k += 2
                        continue
                    assert mine[k] == theirs[k], (prog.name, k)
                    k += 1
        finally:
            by_us.close()
    finally:
        by_kernel.close()


def test_bpf_object_loads_what_libbpf_loads() -> None:
    """Every program libbpf loads, BpfObject.load loads too (user-space CO-RE, as libbpf:
    the kernel's own CO-RE refuses a local 32-bit enum for a kernel ENUM64)."""
    from pybpf.object import BpfObject

    with BpfObject.open(compile_bpf("core_kernel")) as obj:
        obj.load()
        assert all(p.fd is not None for p in obj.programs)


def _run_and_read(obj: object) -> list[int]:
    """Run the fixture's programs once through BpfObject and read ``core_out``."""
    from pybpf.object import BpfObject

    assert isinstance(obj, BpfObject)
    for name in ("core_task", "core_types", "core_enums"):
        obj.program(name).test_run(ctx_in=bytes(16))
    [out] = [v for v in obj.spec.variables_of(".bss") if v.name == "core_out"]
    return list(struct.unpack_from("<32Q", obj.map(".bss").memory, out.offset))


def test_min_core_btf_is_a_custom_btf_for_bpf_object_load(tmp_path: Path) -> None:
    """`pybpf gen min_core_btf` output, given as btf_custom_path, relocates like vmlinux."""
    from pybpf.core.min_btf import write_min_core_btf
    from pybpf.object import BpfObject

    obj_path = compile_bpf("core_kernel")
    small = tmp_path / "min.btf"
    write_min_core_btf("/sys/kernel/btf/vmlinux", str(small), [str(obj_path)])
    assert small.stat().st_size < Path("/sys/kernel/btf/vmlinux").stat().st_size // 100
    answers = []
    for custom in (None, small):
        with BpfObject.open(obj_path) as obj:
            tgid = next(v for v in obj.spec.variables_of(".rodata") if v.name == "core_tgid")
            struct.pack_into("<I", obj.map(".rodata").image, tgid.offset, os.getpid())
            obj.load(btf_custom_path=custom)
            answers.append(_run_and_read(obj))
    # Type ids differ between the two targets (TYPE_ID_TARGET); everything else must agree.
    with_vmlinux, with_min = answers
    differing = [i for i, (a, b) in enumerate(zip(with_vmlinux, with_min, strict=True)) if a != b]
    assert differing == [15], differing  # out[15] = bpf_core_type_id_kernel(task_struct)
    minimal = Btf.from_path(small)
    assert with_min[15] == minimal.find_one("task_struct", BtfKind.STRUCT)
    assert with_min[1] == os.getpid()  # task->tgid, read through the minimal BTF's layout
