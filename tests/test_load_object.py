"""BpfObject.load(): global data, maps, subprograms and attachment, run in this kernel.

The fixture ``load_globals.bpf.c`` counts only events of the process whose pid is written
into its ``.rodata`` variable ``target_pid`` before load, so these tests can count exactly.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import time

import pytest

from conftest import compile_bpf, open_fds, requires_root
from pybpf.errors import BpfError, KernelError, LoadError
from pybpf.kernel.system import kernel_version, possible_cpus
from pybpf.load.kconfig import system_kernel_config
from pybpf.object import BpfObject

pytestmark = [requires_root, pytest.mark.kernel]

U32, U64, I32, I64 = "<I", "<Q", "<i", "<q"


def var_offset(obj: BpfObject, section: str, name: str) -> int:
    for var in obj.spec.variables_of(section):
        if var.name == name:
            return var.offset
    raise KeyError(name)


def read_var(obj: BpfObject, section: str, name: str, fmt: str = I32) -> int:
    """A global variable, read through the map's image (live memory once loaded)."""
    value: int = struct.unpack_from(fmt, obj.map(section).image, var_offset(obj, section, name))[0]
    return value


def write_var(obj: BpfObject, section: str, name: str, value: int, fmt: str = I32) -> None:
    struct.pack_into(fmt, obj.map(section).image, var_offset(obj, section, name), value)


def open_globals() -> BpfObject:
    obj = BpfObject.open(compile_bpf("load_globals"))
    write_var(obj, ".rodata", "target_pid", os.getpid())
    return obj


def trigger(rounds: int) -> None:
    for _ in range(rounds):
        os.getpid()  # libc getpid(): the uprobes, then the syscall: tp and raw_tp


def test_global_data_written_before_load_is_seen_by_the_program() -> None:
    with open_globals() as obj:
        write_var(obj, ".data", "data_val", 20)
        write_var(obj, ".rodata", "mult", 5)
        write_var(obj, ".data.custom", "custom_val", 10)
        obj.load()
        obj.program("on_getpid").attach()
        trigger(1)
        # global_twice(x) = add_scaled(x, x) - x = x * mult, through two subprograms
        assert read_var(obj, ".bss", "sub_result") == 100
        # bpf_loop callback (a function pointer): sum of index + custom_val over 4 rounds
        assert read_var(obj, ".bss", "cb_result", I64) == 0 + 1 + 2 + 3 + 4 * 10


def test_program_writes_read_back_through_mmap_and_map_lookups() -> None:
    with open_globals() as obj:
        obj.load()
        links = obj.attach()
        assert {link.kind for link in links} >= {"tracepoint", "raw_tracepoint", "uprobe"}
        trigger(3)
        bss = obj.map(".bss")
        assert bss.memory_is_live
        assert read_var(obj, ".bss", "tp_hits") == 3
        assert bss.lookup(0) == bytes(bss.memory)  # syscall and mmap agree
        assert read_var(obj, ".bss", "data_sum", I64) == 1 + 2 + 3
        assert obj.map("counts")[0] == 6  # typed by the map's BTF: __u64 values
        assert dict(obj.map("by_round").items()) == {1: 1, 2: 3, 3: 6}
        assert obj.map("counts").raw[0] == struct.pack(U64, 6)  # and as the kernel's bytes
        per_cpu = obj.map("percpu")[0]
        assert isinstance(per_cpu, list) and len(per_cpu) == possible_cpus()
        assert per_cpu.sum() == sum(per_cpu) == 3
        # map-in-map slot from `.values = { [1] = &inner_b }`, reached through `outer`
        assert obj.map("inner_b")[0] == 30
        # prog-array slot from `.values = { [0] = &tail_target }`: the tail call ran
        assert read_var(obj, ".bss", "tail_hits") == 3


def test_kconfig_externs_come_from_the_running_kernel() -> None:
    with open_globals() as obj:
        obj.load()
        obj.program("on_getpid").attach()
        trigger(1)
        assert read_var(obj, ".bss", "kver", U32) == kernel_version()
        assert read_var(obj, ".bss", "hz") == int(system_kernel_config()["CONFIG_HZ"])
        assert read_var(obj, ".bss", "syscall_flag") == 1  # CONFIG_BPF_SYSCALL=y
        assert read_var(obj, ".bss", "missing_weak") == 0  # __weak and unset: zero
        kconfig = obj.map(".kconfig")
        assert kconfig.lookup(0) == bytes(kconfig.memory)


def test_rodata_is_frozen_after_load() -> None:
    with open_globals() as obj:
        obj.load()
        rodata = obj.map(".rodata")
        assert read_var(obj, ".rodata", "target_pid") == os.getpid()
        assert rodata.write_refusal() is not None  # what skeleton accessors consult
        assert not rodata.memory_is_live  # read-only kernel memory: views of it are copies
        with pytest.raises(KernelError):
            rodata.update(0, bytes(rodata.value_size))  # frozen: EPERM
        with pytest.raises(BpfError):
            rodata.initial_value = bytes(rodata.value_size)


def test_writes_to_data_after_load_reach_the_program() -> None:
    with open_globals() as obj:
        obj.load()
        obj.program("on_getpid").attach()
        write_var(obj, ".data", "data_val", 9)  # through mmap, no syscall
        trigger(1)
        assert read_var(obj, ".bss", "sub_result") == 9 * 2


def test_tracepoint_raw_tracepoint_and_uprobes_fire() -> None:
    with open_globals() as obj:
        obj.load()
        obj.attach()
        trigger(4)
        for name in ("tp_hits", "raw_hits", "uprobe_hits", "uretprobe_hits"):
            assert read_var(obj, ".bss", name) == 4, name


def test_explicit_attach_and_detach() -> None:
    pid = os.getpid()  # before attaching: getpid() is what the programs count
    with open_globals() as obj:
        obj.load()
        tp = obj.program("on_getpid").attach_tracepoint("syscalls", "sys_enter_getpid")
        raw = obj.program("on_sys_enter").attach_raw_tracepoint("sys_enter")
        up = obj.program("on_libc_getpid").attach_uprobe("libc.so.6", "getpid")
        ret = obj.program("on_libc_getpid_ret").attach_uprobe(
            "libc.so.6", "getpid", retprobe=True, pid=pid
        )
        trigger(2)
        for link in (tp, raw, up, ret):
            link.detach()
            assert link.closed
            link.close()  # idempotent
        trigger(2)
        for name in ("tp_hits", "raw_hits", "uprobe_hits", "uretprobe_hits"):
            assert read_var(obj, ".bss", name) == 2, name


def test_links_are_context_managers() -> None:
    with open_globals() as obj:
        obj.load()
        with obj.program("on_sys_enter").attach_raw_tracepoint("sys_enter"):
            trigger(1)
        trigger(1)
        assert read_var(obj, ".bss", "raw_hits") == 1


def test_map_access_from_python() -> None:
    with open_globals() as obj:
        obj.load()
        counts = obj.map("counts").raw  # bytes out; ints, ctypes and bytes in
        counts.update(1, 99)
        counts.update(ctypes.c_uint32(2), ctypes.c_uint64(7))
        counts.update(struct.pack(U32, 3), struct.pack(U64, 5))
        assert counts.lookup(1) == struct.pack(U64, 99)
        assert counts.lookup(ctypes.c_uint32(2)) == struct.pack(U64, 7)
        assert counts.lookup(7) is None  # past max_entries
        with pytest.raises(ValueError):
            counts.update(b"\0\0", 1)  # key of the wrong size

        by_round = obj.map("by_round").raw
        assert by_round.update_batch([1, 2, 3], [10, 20, 30]) == 3
        assert sorted(by_round.lookup_batch()) == [
            (struct.pack(U32, k), struct.pack(U64, v)) for k, v in ((1, 10), (2, 20), (3, 30))
        ]
        assert by_round.delete(2) and not by_round.delete(2)
        assert sorted(by_round.keys()) == [struct.pack(U32, 1), struct.pack(U32, 3)]

        per_cpu = obj.map("percpu").raw
        per_cpu.update(0, list(range(possible_cpus())))
        assert [struct.unpack(U64, v)[0] for v in per_cpu.lookup(0)] == list(
            range(possible_cpus())
        )
        with pytest.raises(ValueError):
            per_cpu.update(0, [1])  # one value per possible CPU

        lru = obj.map("lru").raw
        lru.update(1 << 40, 5)
        assert dict(lru.items()) == {struct.pack(U64, 1 << 40): struct.pack(U32, 5)}


def test_xdp_program_runs_and_attaches_to_loopback() -> None:
    with open_globals() as obj:
        obj.load()
        xdp = obj.program("xdp_count")
        result = xdp.test_run(bytes(64))
        assert result.retval == 2  # XDP_PASS
        assert read_var(obj, ".bss", "xdp_runs") == 1
        with xdp.attach_xdp(1) as link:  # ifindex 1: lo
            assert link.kind == "xdp"


def test_fentry_runs_where_the_kernel_allows_trampolines() -> None:
    obj = BpfObject.open(compile_bpf("load_fentry"))
    with obj:
        try:
            obj.load()
        except LoadError as exc:
            if getattr(exc, "errno", None) == 1:  # EPERM
                pytest.skip(f"this kernel refuses fentry programs: {exc}")
            raise
        obj.attach()
        os.system("sleep 0.01")
        assert read_var(obj, ".bss", "calls") >= 1


def test_close_is_idempotent_and_leaves_no_descriptor_open() -> None:
    before = open_fds()
    obj = open_globals()
    obj.load()
    obj.attach()
    obj.program("xdp_count").attach_xdp(1)
    trigger(2)
    obj.close()
    assert open_fds() == before
    obj.close()
    with pytest.raises(BpfError):
        obj.map("counts").lookup(0)


def test_autoload_off_skips_a_program() -> None:
    with open_globals() as obj:
        obj.program("xdp_count").autoload = False
        obj.load()
        assert obj.program("xdp_count").fd is None
        assert obj.program("on_getpid").fd is not None
        with pytest.raises(BpfError):
            obj.program("xdp_count").attach_xdp(1)


def test_core_relocations_are_applied_against_the_running_kernel() -> None:
    obj = BpfObject.open(compile_bpf("load_core"))
    assert obj.spec.program("read_task").core_relos
    with obj:
        write_var(obj, ".rodata", "target_pid", os.getpid())
        obj.load()
        obj.attach()
        os.getpid()
        assert read_var(obj, ".bss", "seen_pid") == os.getpid()
        assert read_var(obj, ".bss", "seen_parent_tgid") == os.getppid()
        assert read_var(obj, ".bss", "has_tgid") == 1


def test_perf_event_program_on_a_cpu_clock_event() -> None:
    from pybpf.kernel.perf import perf_event_open_cpu_clock

    with BpfObject.open(compile_bpf("load_attach")) as obj:
        obj.load()
        assert obj.attach() == []  # neither program names its target
        cpus = range(os.cpu_count() or 1)
        events = [perf_event_open_cpu_clock(cpu, frequency=1000) for cpu in cpus]
        try:
            for event in events:
                obj.program("on_sample").attach_perf_event(event)
        finally:
            for event in events:
                event.close()  # the links hold their own duplicates
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            pass
        assert read_var(obj, ".bss", "samples", I64) > 0


def test_cgroup_program_on_the_root_cgroup() -> None:
    root = "/sys/fs/cgroup/unified"
    if not os.path.isdir(root):
        root = "/sys/fs/cgroup"
    with BpfObject.open(compile_bpf("load_attach")) as obj:
        obj.load()
        cgroup = os.open(root, os.O_RDONLY)
        try:
            link = obj.program("count_egress").attach_cgroup(cgroup)
        finally:
            os.close(cgroup)
        with link, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"ping", ("127.0.0.1", 9))
        assert read_var(obj, ".bss", "egress_packets", I64) >= 1


def test_maps_pinned_by_name_are_shared_between_objects() -> None:
    from pybpf.kernel.maps import map_get_info_by_fd

    pin = "/sys/fs/bpf/pybpf_test_pinned"
    if os.path.exists(pin):
        os.unlink(pin)
    try:
        with BpfObject.open(compile_bpf("load_pinned")) as first:
            first.load()
            assert os.path.exists(pin)
            first.map("pybpf_test_pinned").update(1, 1234)
            first_id = map_get_info_by_fd(first.map("pybpf_test_pinned").fd or -1).id
        assert os.path.exists(pin)  # pins outlive the object that made them
        with BpfObject.open(compile_bpf("load_pinned")) as second:
            second.load()
            pinned = second.map("pybpf_test_pinned")
            assert map_get_info_by_fd(pinned.fd or -1).id == first_id
            assert pinned[1] == 1234
    finally:
        if os.path.exists(pin):
            os.unlink(pin)


def test_kernel_symbols_and_kfuncs_resolve() -> None:
    from pybpf.load.ksyms import kallsyms

    obj = BpfObject.open(compile_bpf("load_ksyms"))
    with obj:
        write_var(obj, ".rodata", "target_pid", os.getpid())
        obj.load()
        obj.attach()
        trigger(3)
        assert read_var(obj, ".bss", "runs") == 3  # between kfuncs bpf_rcu_read_(un)lock
        assert read_var(obj, ".bss", "schedule_addr", U64) == kallsyms({"schedule"})["schedule"]
        assert read_var(obj, ".bss", "weak_kfunc_exists") == 0  # __weak, absent: NULL


def test_views_taken_before_load_see_live_memory_after() -> None:
    with open_globals() as obj:
        bss = obj.map(".bss")
        hits = ctypes.c_int.from_buffer(bss.image, var_offset(obj, ".bss", "tp_hits"))
        obj.load()
        obj.program("on_getpid").attach()
        trigger(2)
        assert hits.value == 2
        del hits  # let close() unmap the pages


def test_legacy_perf_event_attachment_without_bpf_links(monkeypatch: pytest.MonkeyPatch) -> None:
    from pybpf.object import attach

    monkeypatch.setattr(attach, "has_perf_link", lambda: False)  # a pre-5.15 kernel
    with open_globals() as obj:
        obj.load()
        link = obj.program("on_getpid").attach_tracepoint("syscalls", "sys_enter_getpid")
        assert link.fd is None and link.perf_fd is not None  # PERF_EVENT_IOC_SET_BPF
        trigger(2)
        link.detach()
        trigger(1)
        assert read_var(obj, ".bss", "tp_hits") == 2


def test_iterator_program_attached_by_btf_id() -> None:
    from pybpf.object.attach import read_iterator

    with BpfObject.open(compile_bpf("load_iter")) as obj:
        obj.load()
        (link,) = obj.attach()
        assert link.kind == "iter"
        pids = {int(line) for line in read_iterator(link).split()}
        assert os.getpid() in pids
        assert read_var(obj, ".bss", "tasks") >= len(pids)  # seq_file may re-run a show()
