"""Attaching loaded programs: explicit targets, and libbpf's auto-attach by section name.

Each function takes a loaded program's descriptor and returns a :class:`Link` owning the
attachment.  Perf-event based attachments (tracepoints, uprobes, kprobes, perf events) use
``BPF_LINK_CREATE`` with ``BPF_PERF_EVENT`` where the kernel has it (5.15+), else the older
``PERF_EVENT_IOC_SET_BPF`` ioctl, as libbpf does; either way the link also owns the perf
event.  :func:`auto_attach` reads the target from the section name
(``tp/<category>/<name>``, ``raw_tp/<name>``, ``uprobe/<path>:<function>``...).
"""

from __future__ import annotations

import os

from pybpf.abi.bpf import AttachType
from pybpf.errors import KernelError, LoadError
from pybpf.kernel import links as klinks
from pybpf.kernel import perf
from pybpf.kernel.fd import Fd, FdLike, raw_fd
from pybpf.obj.section_defs import AutoAttach
from pybpf.obj.specs import ProgramSpec
from pybpf.object.link import Link
from pybpf.object.uprobe_target import function_offset, parse_uprobe_target, resolve_binary
from pybpf.probes import has_perf_link


def _attach_perf(prog_fd: FdLike, perf_fd: Fd, kind: str, target: str, cookie: int = 0) -> Link:
    """Run ``prog_fd`` on ``perf_fd``'s events; the link takes ownership of ``perf_fd``."""
    try:
        if has_perf_link():
            link_fd = klinks.link_create_perf_event(prog_fd, perf_fd, cookie)
            return Link(link_fd, kind=kind, target=target, perf_fd=perf_fd)
        perf.perf_event_set_bpf(perf_fd, prog_fd)
        perf.perf_event_enable(perf_fd)
        return Link(None, kind=kind, target=target, perf_fd=perf_fd)
    except BaseException:
        perf_fd.close()
        raise


def attach_tracepoint(prog_fd: FdLike, category: str, name: str, cookie: int = 0) -> Link:
    """A TRACEPOINT program on ``category:name`` (tracefs is mounted when missing)."""
    perf_fd = perf.perf_event_open_tracepoint(category, name)
    return _attach_perf(prog_fd, perf_fd, "tracepoint", f"{category}:{name}", cookie)


def attach_raw_tracepoint(prog_fd: FdLike, name: str) -> Link:
    """A RAW_TRACEPOINT program on the raw tracepoint ``name`` (``sys_enter``...)."""
    return Link(klinks.raw_tracepoint_open(name, prog_fd), kind="raw_tracepoint", target=name)


def attach_uprobe(
    prog_fd: FdLike,
    binary: str,
    offset_or_func: int | str,
    *,
    retprobe: bool = False,
    pid: int = -1,
    cookie: int = 0,
) -> Link:
    """A u(ret)probe on a function (by name, ``func+0x10`` allowed) or file offset of
    ``binary`` (a path or a library name such as ``libc.so.6``), for ``pid`` or everyone."""
    path = resolve_binary(binary)
    if isinstance(offset_or_func, str):
        func, _, extra = offset_or_func.partition("+")
        offset = function_offset(path, func) + (int(extra, 0) if extra else 0)
    else:
        offset = offset_or_func
    perf_fd = perf.perf_event_open_uprobe(path, offset, retprobe=retprobe, pid=pid)
    kind = "uretprobe" if retprobe else "uprobe"
    return _attach_perf(prog_fd, perf_fd, kind, f"{path}:{offset_or_func}", cookie)


def attach_kprobe(
    prog_fd: FdLike, func: str, offset: int = 0, *, retprobe: bool = False, cookie: int = 0
) -> Link:
    """A k(ret)probe on ``func+offset`` (needs CONFIG_KPROBES)."""
    perf_fd = perf.perf_event_open_kprobe(func, offset, retprobe=retprobe)
    kind = "kretprobe" if retprobe else "kprobe"
    return _attach_perf(prog_fd, perf_fd, kind, f"{func}+{offset:#x}", cookie)


def attach_perf_event(prog_fd: FdLike, perf_event_fd: FdLike, cookie: int = 0) -> Link:
    """A PERF_EVENT (or any perf-attachable) program on an existing perf event.

    The caller keeps its descriptor; the link owns a duplicate.
    """
    dup = Fd(os.dup(raw_fd(perf_event_fd)), "perf_event")
    return _attach_perf(prog_fd, dup, "perf_event", f"fd {raw_fd(perf_event_fd)}", cookie)


def attach_xdp(prog_fd: FdLike, ifindex: int, flags: int = 0) -> Link:
    """An XDP program on interface ``ifindex`` through an XDP link."""
    return Link(klinks.link_create_xdp(prog_fd, ifindex, flags), kind="xdp",
                target=f"ifindex {ifindex}")


def attach_cgroup(prog_fd: FdLike, cgroup_fd: FdLike, attach_type: AttachType | int) -> Link:
    """A cgroup program on the cgroup open as ``cgroup_fd`` (``os.open(dir, O_RDONLY)``)."""
    return Link(klinks.link_create_cgroup(prog_fd, cgroup_fd, attach_type), kind="cgroup",
                target=f"cgroup fd {raw_fd(cgroup_fd)} {AttachType(attach_type).name}")


def attach_tracing(prog_fd: FdLike, prog: ProgramSpec) -> Link:
    """fentry/fexit/fmod_ret/lsm/tp_btf: the target was fixed at load (BTF id)."""
    attach_type = prog.expected_attach_type
    if attach_type == AttachType.TRACE_RAW_TP:
        fd = klinks.raw_tracepoint_open(None, prog_fd)
    else:
        fd = klinks.link_create_tracing(prog_fd, prog.expected_attach_type_value)
    return Link(fd, kind="tracing", target=prog.attach_target)


def attach_iter(prog_fd: FdLike, prog: ProgramSpec) -> Link:
    """An iterator program (``iter/task``...): :func:`read_iterator` then runs it."""
    return Link(klinks.link_create_iter(prog_fd), kind="iter", target=prog.attach_target)


def read_iterator(link: Link, chunk: int = 65536) -> bytes:
    """Run an iterator link once (``BPF_ITER_CREATE``) and return everything it printed."""
    if link.kind != "iter" or link.fd is None:
        raise LoadError(f"{link!r} is not an iterator link")
    out = bytearray()
    with klinks.iter_create(link.fd) as fd:
        while data := os.read(fd.fileno(), chunk):
            out += data
    return bytes(out)


def _uprobe_from_section(prog_fd: FdLike, prog: ProgramSpec) -> Link | None:
    if not prog.attach_target:
        return None  # libbpf too: "uprobe" alone needs explicit attach
    binary, func, offset = parse_uprobe_target(prog.attach_target)
    retprobe = prog.section_name.startswith("uretprobe")
    where: int | str = offset if func is None else (f"{func}+{offset}" if offset else func)
    return attach_uprobe(prog_fd, binary, where, retprobe=retprobe)


def _kprobe_from_section(prog_fd: FdLike, prog: ProgramSpec) -> Link | None:
    if not prog.attach_target:
        return None
    func, plus, extra = prog.attach_target.partition("+")
    retprobe = prog.section_name.startswith("kretprobe")
    return attach_kprobe(prog_fd, func, int(extra, 0) if plus else 0, retprobe=retprobe)


def auto_attach(prog_fd: FdLike, prog: ProgramSpec) -> Link | None:
    """Attach as the section name says; ``None`` when it names no target (XDP, cgroup...).

    Failures raise :class:`~pybpf.errors.LoadError` naming the program and target.
    """
    how = prog.sec_def.auto_attach if prog.sec_def is not None else AutoAttach.NONE
    target = prog.attach_target
    try:
        if how is AutoAttach.TRACEPOINT:
            if not target:
                return None  # "SEC("tp")" alone: attach it with attach_tracepoint()
            category, sep, name = target.partition("/")
            if not sep:
                raise LoadError(f"program '{prog.name}': tracepoint '{target}' is not "
                                "'category/name'", program=prog.name)
            return attach_tracepoint(prog_fd, category, name)
        if how is AutoAttach.RAW_TRACEPOINT:
            return attach_raw_tracepoint(prog_fd, target) if target else None
        if how is AutoAttach.UPROBE:
            return _uprobe_from_section(prog_fd, prog)
        if how is AutoAttach.KPROBE:
            return _kprobe_from_section(prog_fd, prog)
        if how in (AutoAttach.TRACING, AutoAttach.LSM):
            return attach_tracing(prog_fd, prog)
        if how is AutoAttach.ITER:
            return attach_iter(prog_fd, prog)
    except KernelError as exc:
        raise LoadError(f"program '{prog.name}': attaching {how.value} '{target}': {exc}",
                        program=prog.name) from exc
    return None
