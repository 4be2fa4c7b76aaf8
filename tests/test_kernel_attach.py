"""pybpf.kernel attachment against the running kernel: raw tracepoints, tracepoint perf
events (link and ioctl), uprobes, bpf_cookie, links of every common kind, pins and ids.

Tracing programs here count events of *this* process only (they compare the current tgid
with ours), so counts are exact even while other processes run.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import open_fds, requires_root
from pybpf.abi import insn as asm
from pybpf.abi.bpf import AttachType, BpfFuncId, LinkType, MapFlags, MapType, ProgType, XdpAction
from pybpf.errors import KernelError, NotSupportedError
from pybpf.kernel.fd import Fd
from pybpf.kernel.fs import ensure_bpffs, mount, mounted_fs
from pybpf.kernel.links import (
    link_create_cgroup,
    link_create_perf_event,
    link_create_tcx,
    link_create_uprobe_multi,
    link_create_xdp,
    link_detach,
    link_get_info_by_fd,
    link_update,
    prog_attach,
    prog_detach,
    prog_query,
    raw_tracepoint_open,
)
from pybpf.kernel.maps import map_create, map_get_info_by_fd, map_lookup_elem
from pybpf.kernel.objs import (
    link_get_fd_by_id,
    link_ids,
    map_get_fd_by_id,
    map_ids,
    obj_get,
    obj_pin,
    prog_get_fd_by_id,
    prog_ids,
)
from pybpf.kernel.perf import (
    perf_event_enable,
    perf_event_open_kprobe,
    perf_event_open_tracepoint,
    perf_event_open_uprobe,
    perf_event_set_bpf,
    tracepoint_id,
)
from pybpf.kernel.progs import prog_get_info_by_fd, prog_load

pytestmark = [requires_root, pytest.mark.kernel]

R0, R1, R2, R6, R7, R10 = (asm.Reg(n) for n in (0, 1, 2, 6, 7, 10))
N = 5  # events triggered per test


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    before = open_fds()
    yield
    assert open_fds() == before


@pytest.fixture
def counters() -> Iterator[Fd]:
    """A 4-slot u64 array: slot 0 counts runs, slot 1 receives a cookie."""
    with map_create(MapType.ARRAY, 4, 8, 4, name="counters") as m:
        yield m


def slot(m: Fd, index: int) -> int:
    raw = map_lookup_elem(m, struct.pack("<I", index), 8)
    assert raw is not None
    return int(struct.unpack("<Q", raw)[0])


def only_this_process(skip: int) -> bytes:
    """``if (bpf_get_current_pid_tgid() >> 32 != getpid()) goto +skip`` (clobbers r0-r5)."""
    return b"".join(
        (
            asm.call(BpfFuncId.BPF_FUNC_get_current_pid_tgid),
            asm.alu64_imm(asm.BPF_RSH, R0, 32),
            asm.jmp_imm(asm.BPF_JNE, R0, os.getpid(), skip),
        )
    )


def counting_program(m: Fd, index: int = 0) -> bytes:
    """Count runs in slot ``index`` for this process only."""
    body = asm.count_in_array(m.fileno(), index)
    return only_this_process(len(body) // 8 - 2) + body


def cookie_program(m: Fd) -> bytes:
    """Count runs in slot 0 and store ``bpf_get_attach_cookie()`` in slot 1."""
    store = b"".join(
        (
            asm.mov64_reg(R1, R6),
            asm.call(BpfFuncId.BPF_FUNC_get_attach_cookie),
            asm.mov64_reg(R7, R0),
            asm.st_mem(asm.BPF_W, R10, -4, 1),
            asm.mov64_reg(R2, R10),
            asm.alu64_imm(asm.BPF_ADD, R2, -4),
            asm.ld_map_fd(R1, m.fileno()),
            asm.call(BpfFuncId.BPF_FUNC_map_lookup_elem),
            asm.jmp_imm(asm.BPF_JEQ, R0, 0, 1),
            asm.stx_mem(asm.BPF_DW, R0, R7, 0),
        )
    )
    count = asm.count_in_array(m.fileno(), 0)
    rest = store + count
    return asm.mov64_reg(R6, R1) + only_this_process(len(rest) // 8 - 2) + rest


def load(prog_type: ProgType, code: bytes, **kw: object) -> Fd:
    return prog_load(prog_type, code, **kw).fd  # type: ignore[arg-type]


def linux_at_least(major: int, minor: int) -> bool:
    """Whether the running kernel (``uname -r``) is at least ``major.minor``."""
    release = os.uname().release.split("-")[0].split(".")
    return (int(release[0]), int(release[1])) >= (major, minor)


def libc_getpid() -> tuple[str, int]:
    """Path of this process's libc and the file offset of ``getpid`` in it."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    maps = Path("/proc/self/maps").read_text().splitlines()
    path = next(line.split()[-1] for line in maps if "/libc.so" in line or "/libc-" in line)
    with open(path, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".dynsym")
        assert isinstance(symtab, SymbolTableSection)
        addr = next(s["st_value"] for s in symtab.iter_symbols() if s.name == "getpid")
        for seg in elf.iter_segments():
            h = seg.header
            if h.p_type == "PT_LOAD" and h.p_vaddr <= addr < h.p_vaddr + h.p_memsz:
                return path, addr - h.p_vaddr + h.p_offset
    raise AssertionError("getpid not in a PT_LOAD segment")


# --- raw tracepoints -----------------------------------------------------------------------


def test_raw_tracepoint_fires_on_syscalls_until_closed(counters: Fd) -> None:
    with load(ProgType.RAW_TRACEPOINT, counting_program(counters)) as prog:
        with raw_tracepoint_open("sys_enter", prog) as link:
            for _ in range(N):
                os.getppid()
            assert slot(counters, 0) >= N
            info = link_get_info_by_fd(link)
            assert info.link_type == LinkType.BPF_LINK_TYPE_RAW_TRACEPOINT
            assert info.tp_name == "sys_enter"
            assert info.prog_id == prog_get_info_by_fd(prog).id
            with pytest.raises(NotSupportedError) as exc:
                link_detach(link)  # raw_tp links can only be closed
            assert exc.value.command == "BPF_LINK_DETACH"
        frozen = slot(counters, 0)
        os.getppid()
        assert slot(counters, 0) == frozen


def test_unknown_raw_tracepoint(counters: Fd) -> None:
    prog = load(ProgType.RAW_TRACEPOINT, counting_program(counters))
    with prog, pytest.raises(KernelError) as exc:
        raw_tracepoint_open("no_such_tracepoint_xyz", prog)
    assert exc.value.command == "BPF_RAW_TRACEPOINT_OPEN"
    assert exc.value.errno == errno.ENOENT


# --- tracepoints through perf events -------------------------------------------------------


def test_tracepoint_perf_link_with_cookie(counters: Fd) -> None:
    prog = load(ProgType.TRACEPOINT, cookie_program(counters))
    with prog, perf_event_open_tracepoint("syscalls", "sys_enter_getpid") as pe:
        with link_create_perf_event(prog, pe, bpf_cookie=0xC0FFEE) as link:
            for _ in range(N):
                os.getpid()
            assert slot(counters, 0) == N
            assert slot(counters, 1) == 0xC0FFEE
            assert link_get_info_by_fd(link).link_type == LinkType.BPF_LINK_TYPE_PERF_EVENT
        os.getpid()
        assert slot(counters, 0) == N  # closing the link detached the program


def test_tracepoint_legacy_ioctl_attach(counters: Fd) -> None:
    prog = load(ProgType.TRACEPOINT, counting_program(counters))
    with prog, perf_event_open_tracepoint("syscalls", "sys_enter_getpid") as pe:
        perf_event_set_bpf(pe, prog)
        perf_event_enable(pe)
        for _ in range(N):
            os.getpid()
    assert slot(counters, 0) == N


def test_unknown_tracepoint_is_enoent() -> None:
    with pytest.raises(KernelError) as exc:
        tracepoint_id("syscalls", "sys_enter_no_such_call")
    assert exc.value.errno == errno.ENOENT
    with pytest.raises(ValueError):
        tracepoint_id("..", "x")


# --- uprobes and kprobes -------------------------------------------------------------------


@pytest.mark.parametrize("retprobe", [False, True])
def test_uprobe_on_libc_getpid(counters: Fd, retprobe: bool) -> None:
    path, offset = libc_getpid()
    prog = load(ProgType.KPROBE, cookie_program(counters))
    probe = perf_event_open_uprobe(path, offset, retprobe=retprobe)
    with prog, probe, link_create_perf_event(prog, probe, bpf_cookie=offset):
        for _ in range(N):
            os.getpid()
    assert slot(counters, 0) == N
    assert slot(counters, 1) == offset


def test_uprobe_multi_link(counters: Fd) -> None:
    path, offset = libc_getpid()
    prog = load(
        ProgType.KPROBE,
        counting_program(counters),
        expected_attach_type=AttachType.TRACE_UPROBE_MULTI,
    )
    with prog:
        try:
            link = link_create_uprobe_multi(prog, path, [offset], pid=os.getpid())
        except KernelError as exc:
            if linux_at_least(6, 6):
                raise
            pytest.skip(f"uprobe_multi links unavailable (Linux 6.6+): {exc}")
        with link:
            for _ in range(N):
                os.getpid()
            assert link_get_info_by_fd(link).link_type == LinkType.BPF_LINK_TYPE_UPROBE_MULTI
    assert slot(counters, 0) == N


def test_kprobe_without_kprobe_support_is_not_supported() -> None:
    """With a kprobe PMU the probe opens; without one (this machine: CONFIG_KPROBE_EVENTS
    unset) the refusal is a NotSupportedError naming perf_event_open and the missing PMU."""
    if Path("/sys/bus/event_source/devices/kprobe/type").exists():
        perf_event_open_kprobe("do_sys_openat2").close()
        return
    with pytest.raises(NotSupportedError) as exc:
        perf_event_open_kprobe("do_sys_openat2")
    assert exc.value.command == "perf_event_open"
    assert "kprobe PMU" in str(exc.value)


# --- network and cgroup links --------------------------------------------------------------


def test_xdp_link_on_loopback() -> None:
    ifindex = socket.if_nametoindex("lo")
    with load(ProgType.XDP, asm.return_imm(XdpAction.XDP_PASS)) as prog:
        try:
            link = link_create_xdp(prog, ifindex)
        except KernelError as exc:
            if exc.errno == errno.EBUSY:
                pytest.skip("another XDP program is attached to lo")
            raise
        with link:
            info = link_get_info_by_fd(link)
            assert info.link_type == LinkType.BPF_LINK_TYPE_XDP
            assert info.ifindex == ifindex


def test_tcx_link_on_loopback() -> None:
    ifindex = socket.if_nametoindex("lo")
    tcx_next = -1  # TCX_NEXT: let the rest of the chain decide
    with load(ProgType.SCHED_CLS, asm.return_imm(tcx_next)) as prog:
        try:
            link = link_create_tcx(prog, ifindex, AttachType.TCX_EGRESS)
        except KernelError as exc:
            if linux_at_least(6, 6):
                raise
            pytest.skip(f"tcx unavailable (Linux 6.6+): {exc}")
        with link:
            info = link_get_info_by_fd(link)
            assert info.link_type == LinkType.BPF_LINK_TYPE_TCX
            assert (info.ifindex, info.attach_type) == (ifindex, AttachType.TCX_EGRESS)
            # traffic still flows through lo
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
            ):
                rx.bind(("127.0.0.1", 0))
                rx.settimeout(2)
                tx.sendto(b"ping", rx.getsockname())
                assert rx.recv(16) == b"ping"


@pytest.fixture
def empty_cgroup() -> Iterator[int]:
    """A descriptor of an empty cgroup v2 directory (mounting a private cgroup2 if needed)."""
    root = Path("/sys/fs/cgroup")
    private: Path | None = None
    if mounted_fs(root) != "cgroup2":
        unified = root / "unified"
        if mounted_fs(unified) == "cgroup2":
            root = unified
        else:
            private = Path(tempfile.mkdtemp(prefix="pybpf-cg2-"))
            try:
                mount("cgroup2", private)
            except KernelError as exc:
                private.rmdir()
                pytest.skip(f"cannot mount cgroup2: {exc}")
            root = private
    group = root / f"pybpf-test-{os.getpid()}"
    group.mkdir()
    fd = os.open(group, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)
        group.rmdir()
        if private is not None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.umount2(str(private).encode(), 0)
            private.rmdir()


def test_cgroup_link_update_and_detach(empty_cgroup: int) -> None:
    ingress = AttachType.CGROUP_INET_INGRESS
    skb = ProgType.CGROUP_SKB
    with load(skb, asm.return_imm(1)) as first, load(skb, asm.return_imm(1)) as second:
        first_id = prog_get_info_by_fd(first).id
        second_id = prog_get_info_by_fd(second).id
        with link_create_cgroup(first, empty_cgroup, ingress) as link:
            link_update(link, second, old_prog_fd=first)
            assert link_get_info_by_fd(link).prog_id == second_id
            assert prog_query(empty_cgroup, ingress).prog_ids == (second_id,)
            with pytest.raises(KernelError) as exc:
                link_update(link, first, old_prog_fd=first)  # 'first' is no longer current
            assert exc.value.errno == errno.EPERM
            link_detach(link)
            assert prog_query(empty_cgroup, ingress).prog_ids == ()
            assert first_id != second_id


def test_cgroup_link_and_legacy_attach(empty_cgroup: int) -> None:
    ingress = AttachType.CGROUP_INET_INGRESS
    allow = asm.return_imm(1)
    with load(ProgType.CGROUP_SKB, allow) as prog:
        with link_create_cgroup(prog, empty_cgroup, ingress) as link:
            info = link_get_info_by_fd(link)
            assert (info.link_type, info.attach_type) == (LinkType.BPF_LINK_TYPE_CGROUP, ingress)
            assert prog_query(empty_cgroup, ingress).prog_ids == (prog_get_info_by_fd(prog).id,)
        assert prog_query(empty_cgroup, ingress).prog_ids == ()
        prog_attach(prog, empty_cgroup, AttachType.CGROUP_INET_EGRESS)
        try:
            ids = prog_query(empty_cgroup, AttachType.CGROUP_INET_EGRESS).prog_ids
            assert ids == (prog_get_info_by_fd(prog).id,)
        finally:
            prog_detach(empty_cgroup, AttachType.CGROUP_INET_EGRESS, prog)
        assert prog_query(empty_cgroup, AttachType.CGROUP_INET_EGRESS).prog_ids == ()


# --- pinning and ids -----------------------------------------------------------------------


def test_pin_and_get_round_trip(counters: Fd) -> None:
    bpffs = ensure_bpffs()
    path = bpffs / f"pybpf_test_{os.getpid()}_map"
    obj_pin(counters, path)
    try:
        with obj_get(path) as again:
            assert map_get_info_by_fd(again).id == map_get_info_by_fd(counters).id
        with obj_get(path, MapFlags.BPF_F_RDONLY) as ro, pytest.raises(KernelError):
            from pybpf.kernel.maps import map_update_elem

            map_update_elem(ro, struct.pack("<I", 0), bytes(8))
        with pytest.raises(KernelError) as exc:
            obj_pin(counters, path)
        assert exc.value.errno == errno.EEXIST
        assert exc.value.command == "BPF_OBJ_PIN"
    finally:
        path.unlink()
    with pytest.raises(KernelError) as exc:
        obj_get(path)
    assert exc.value.errno == errno.ENOENT


def test_pinned_link_outlives_its_fd(counters: Fd) -> None:
    bpffs = ensure_bpffs()
    path = bpffs / f"pybpf_test_{os.getpid()}_link"
    prog = load(ProgType.RAW_TRACEPOINT, counting_program(counters))
    with prog, raw_tracepoint_open("sys_enter", prog) as link:
        obj_pin(link, path)
    try:
        before = slot(counters, 0)
        os.getppid()
        assert slot(counters, 0) > before  # still attached: the pin holds the link
    finally:
        path.unlink()


def test_objects_are_found_by_id(counters: Fd) -> None:
    map_id = map_get_info_by_fd(counters).id
    assert map_id in set(map_ids())
    with map_get_fd_by_id(map_id) as again:
        assert map_get_info_by_fd(again).name == "counters"
    with load(ProgType.RAW_TRACEPOINT, counting_program(counters)) as prog:
        prog_id = prog_get_info_by_fd(prog).id
        assert prog_id in set(prog_ids())
        with prog_get_fd_by_id(prog_id) as again:
            assert prog_get_info_by_fd(again).id == prog_id
        with raw_tracepoint_open("sys_enter", prog) as link:
            link_id = link_get_info_by_fd(link).id
            assert link_id in set(link_ids())
            with link_get_fd_by_id(link_id) as again:
                assert link_get_info_by_fd(again).prog_id == prog_id
    with pytest.raises(KernelError) as exc:
        map_get_fd_by_id(0xFFFFFFF0)
    assert (exc.value.command, exc.value.errno) == ("BPF_MAP_GET_FD_BY_ID", errno.ENOENT)
