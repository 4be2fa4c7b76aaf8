"""Attaching programs: BPF links (the modern way), raw tracepoints and legacy prog_attach.

A link is a kernel object owning one attachment; closing its last descriptor (and unpinning
it) detaches the program, so an attachment can never outlive its owner by accident.  The
``link_create_*`` helpers fill the per-attach-type tail of ``link_create`` for the common
cases; :func:`link_create` is the general form.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass

from pybpf.abi.bpf import AttachType, BpfAttachFlags, BpfCmd, LinkType, XdpFlags, enum_name

from .attrs import (
    IterCreateAttr,
    LinkCreateAttr,
    LinkDetachAttr,
    LinkUpdateAttr,
    ProgAttachAttr,
    ProgQueryAttr,
    RawTracepointAttr,
    RawTracepointCookieAttr,
)
from .buffers import c_string
from .fd import Fd, FdLike, raw_fd
from .infos import BpfLinkInfo, obj_get_info_by_fd
from .syscall import bpf, bpf_fd

BPF_F_UPROBE_MULTI_RETURN = 1 << 0
"""``link_create.uprobe_multi.flags``: attach uretprobes."""
BPF_F_KPROBE_MULTI_RETURN = 1 << 0
"""``link_create.kprobe_multi.flags``: attach kretprobes."""


def link_create(
    prog_fd: FdLike,
    target_fd: FdLike,
    attach_type: AttachType | int,
    *,
    flags: int = 0,
    attr: LinkCreateAttr | None = None,
    what: str = "",
) -> Fd:
    """``BPF_LINK_CREATE``; ``attr`` may carry a pre-filled per-type tail (``attr.u``).

    ``target_fd`` is an ifindex for XDP/tcx/netkit, a cgroup fd, a perf event fd, or 0.
    """
    attr = attr if attr is not None else LinkCreateAttr()
    attr.prog_fd = raw_fd(prog_fd)
    attr.target_fd = raw_fd(target_fd)
    attr.attach_type = attach_type
    attr.flags = flags
    name = enum_name(AttachType, attach_type)
    return bpf_fd(BpfCmd.BPF_LINK_CREATE, attr, f"link {name}", what or name)


def link_create_perf_event(prog_fd: FdLike, perf_fd: FdLike, bpf_cookie: int = 0) -> Fd:
    """Attach a kprobe/uprobe/tracepoint/perf_event program to a perf event (Linux 5.15+).

    ``bpf_cookie`` is what the program reads with ``bpf_get_attach_cookie()``.
    """
    attr = LinkCreateAttr()
    attr.u.perf_event.bpf_cookie = bpf_cookie
    return link_create(prog_fd, perf_fd, AttachType.PERF_EVENT, attr=attr)


def link_create_tracing(
    prog_fd: FdLike,
    attach_type: AttachType | int,
    *,
    target_btf_id: int = 0,
    cookie: int = 0,
) -> Fd:
    """Attach fentry/fexit/fmod_ret/lsm/tp_btf programs (targets fixed at load time)."""
    attr = LinkCreateAttr()
    attr.u.tracing.target_btf_id = target_btf_id
    attr.u.tracing.cookie = cookie
    return link_create(prog_fd, 0, attach_type, attr=attr)


def link_create_cgroup(
    prog_fd: FdLike, cgroup_fd: FdLike, attach_type: AttachType | int, flags: int = 0
) -> Fd:
    """Attach a cgroup program (``cgroup_fd`` from ``os.open(cgroup_dir, O_RDONLY)``)."""
    return link_create(prog_fd, cgroup_fd, attach_type, flags=flags)


def link_create_xdp(prog_fd: FdLike, ifindex: int, flags: XdpFlags | int = 0) -> Fd:
    """Attach an XDP program to interface ``ifindex`` (``XDP_FLAGS_SKB_MODE``...)."""
    return link_create(prog_fd, ifindex, AttachType.XDP, flags=int(flags))


def link_create_tcx(
    prog_fd: FdLike,
    ifindex: int,
    attach_type: AttachType | int = AttachType.TCX_INGRESS,
    *,
    flags: BpfAttachFlags | int = 0,
    relative_fd: FdLike = 0,
    expected_revision: int = 0,
) -> Fd:
    """Attach a SCHED_CLS program with tcx (Linux 6.6+) at ``BPF_TCX_INGRESS``/``EGRESS``.

    ``flags`` (``BPF_F_BEFORE``/``BPF_F_AFTER``...) and ``relative_fd`` place it among the
    others; ``expected_revision`` guards against concurrent changes.
    """
    attr = LinkCreateAttr()
    attr.u.tcx.relative_fd = raw_fd(relative_fd)
    attr.u.tcx.expected_revision = expected_revision
    return link_create(prog_fd, ifindex, attach_type, flags=int(flags), attr=attr)


def link_create_uprobe_multi(
    prog_fd: FdLike,
    path: str,
    offsets: Sequence[int],
    *,
    ref_ctr_offsets: Sequence[int] | None = None,
    cookies: Sequence[int] | None = None,
    pid: int = 0,
    retprobe: bool = False,
) -> Fd:
    """Attach one KPROBE program to many uprobes of ``path`` in one link (Linux 6.6+)."""
    n = len(offsets)
    if n == 0:
        raise ValueError("uprobe_multi needs at least one offset")
    name = c_string(path)
    offs = (ctypes.c_uint64 * n)(*offsets)
    refs = _u64_array(ref_ctr_offsets, n, "ref_ctr_offsets")
    cooks = _u64_array(cookies, n, "cookies")
    attr = LinkCreateAttr()
    um = attr.u.uprobe_multi
    um.path = ctypes.addressof(name)
    um.offsets = ctypes.addressof(offs)
    um.ref_ctr_offsets = ctypes.addressof(refs) if refs is not None else 0
    um.cookies = ctypes.addressof(cooks) if cooks is not None else 0
    um.cnt = n
    um.flags = BPF_F_UPROBE_MULTI_RETURN if retprobe else 0
    um.pid = pid
    fd = link_create(prog_fd, 0, AttachType.TRACE_UPROBE_MULTI, attr=attr, what=path)
    del name, offs, refs, cooks
    return fd


def link_create_kprobe_multi(
    prog_fd: FdLike,
    *,
    syms: Sequence[str] = (),
    addrs: Sequence[int] = (),
    cookies: Sequence[int] | None = None,
    retprobe: bool = False,
) -> Fd:
    """Attach one KPROBE program to many kernel functions (by symbol or address)."""
    if bool(syms) == bool(addrs):
        raise ValueError("give exactly one of syms and addrs")
    n = len(syms) or len(addrs)
    names = [c_string(s) for s in syms]
    sym_ptrs = (ctypes.c_uint64 * n)(*(ctypes.addressof(s) for s in names)) if syms else None
    addr_arr = (ctypes.c_uint64 * n)(*addrs) if addrs else None
    cooks = _u64_array(cookies, n, "cookies")
    attr = LinkCreateAttr()
    km = attr.u.kprobe_multi
    km.flags = BPF_F_KPROBE_MULTI_RETURN if retprobe else 0
    km.cnt = n
    km.syms = ctypes.addressof(sym_ptrs) if sym_ptrs is not None else 0
    km.addrs = ctypes.addressof(addr_arr) if addr_arr is not None else 0
    km.cookies = ctypes.addressof(cooks) if cooks is not None else 0
    fd = link_create(prog_fd, 0, AttachType.TRACE_KPROBE_MULTI, attr=attr)
    del names, sym_ptrs, addr_arr, cooks
    return fd


def link_create_iter(prog_fd: FdLike, iter_info: bytes = b"") -> Fd:
    """Create a BPF iterator link; :func:`iter_create` then opens readable instances."""
    attr = LinkCreateAttr()
    buf = ctypes.create_string_buffer(iter_info, len(iter_info)) if iter_info else None
    if buf is not None:
        attr.u.iter.iter_info = ctypes.addressof(buf)
        attr.u.iter.iter_info_len = len(iter_info)
    fd = link_create(prog_fd, 0, AttachType.TRACE_ITER, attr=attr)
    del buf
    return fd


def _u64_array(
    values: Sequence[int] | None, n: int, what: str
) -> ctypes.Array[ctypes.c_uint64] | None:
    if values is None:
        return None
    if len(values) != n:
        raise ValueError(f"{what} must have one entry per offset ({n})")
    return (ctypes.c_uint64 * n)(*values)


def link_update(link_fd: FdLike, new_prog_fd: FdLike, *, old_prog_fd: FdLike | None = None) -> None:
    """Swap the program of a link atomically; with ``old_prog_fd``, only if it is current."""
    attr = LinkUpdateAttr(link_fd=raw_fd(link_fd), new_prog_fd=raw_fd(new_prog_fd))
    if old_prog_fd is not None:
        attr.flags = BpfAttachFlags.BPF_F_REPLACE
        attr.old_prog_fd = raw_fd(old_prog_fd)
    bpf(BpfCmd.BPF_LINK_UPDATE, attr)


def link_detach(link_fd: FdLike) -> None:
    """Detach the program now; the link object stays (defunct) until its fds are closed."""
    bpf(BpfCmd.BPF_LINK_DETACH, LinkDetachAttr(link_fd=raw_fd(link_fd)))


def iter_create(link_fd: FdLike) -> Fd:
    """A readable descriptor running the iterator program of ``link_fd`` as it is read."""
    return bpf_fd(BpfCmd.BPF_ITER_CREATE, IterCreateAttr(link_fd=raw_fd(link_fd)), "iter")


def raw_tracepoint_open(name: str | None, prog_fd: FdLike, cookie: int = 0) -> Fd:
    """Attach a RAW_TRACEPOINT program to ``name`` (``None`` for tp_btf/fentry programs).

    ``cookie`` needs Linux 6.10; without one the older, shorter attr is used.
    """
    tp = c_string(name) if name is not None else None
    tp_addr = ctypes.addressof(tp) if tp is not None else 0
    attr: RawTracepointAttr | RawTracepointCookieAttr
    if cookie:
        attr = RawTracepointCookieAttr(name=tp_addr, prog_fd=raw_fd(prog_fd), cookie=cookie)
    else:
        attr = RawTracepointAttr(name=tp_addr, prog_fd=raw_fd(prog_fd))
    fd = bpf_fd(BpfCmd.BPF_RAW_TRACEPOINT_OPEN, attr, f"raw_tp {name}", str(name))
    del tp
    return fd


# --- legacy attach -------------------------------------------------------------------------


def prog_attach(
    prog_fd: FdLike,
    target_fd: FdLike,
    attach_type: AttachType | int,
    *,
    flags: BpfAttachFlags | int = 0,
    replace_prog_fd: FdLike | None = None,
) -> None:
    """``BPF_PROG_ATTACH`` (cgroup, sockmap, flow dissector...): not owned by any fd.

    Prefer links; a legacy attachment stays until :func:`prog_detach` or the target dies.
    """
    attr = ProgAttachAttr(
        target_fd=raw_fd(target_fd),
        attach_bpf_fd=raw_fd(prog_fd),
        attach_type=attach_type,
        attach_flags=int(flags),
    )
    if replace_prog_fd is not None:
        attr.attach_flags |= BpfAttachFlags.BPF_F_REPLACE
        attr.replace_bpf_fd = raw_fd(replace_prog_fd)
    bpf(BpfCmd.BPF_PROG_ATTACH, attr)


def prog_detach(
    target_fd: FdLike, attach_type: AttachType | int, prog_fd: FdLike | None = None
) -> None:
    """``BPF_PROG_DETACH`` (``prog_fd`` selects one program of a multi-attach point)."""
    attr = ProgAttachAttr(target_fd=raw_fd(target_fd), attach_type=attach_type)
    if prog_fd is not None:
        attr.attach_bpf_fd = raw_fd(prog_fd)
    bpf(BpfCmd.BPF_PROG_DETACH, attr)


@dataclass(frozen=True, slots=True)
class ProgQuery:
    """``BPF_PROG_QUERY`` result: the attach flags and the ids of attached programs."""

    attach_flags: int
    prog_ids: tuple[int, ...]


def prog_query(
    target_fd: FdLike, attach_type: AttachType | int, *, query_flags: int = 0, max_progs: int = 64
) -> ProgQuery:
    """Which programs are attached to ``target_fd`` at ``attach_type``."""
    ids = (ctypes.c_uint32 * max_progs)()
    attr = ProgQueryAttr(
        target_fd=raw_fd(target_fd),
        attach_type=attach_type,
        query_flags=query_flags,
        prog_ids=ctypes.addressof(ids),
        prog_cnt=max_progs,
    )
    bpf(BpfCmd.BPF_PROG_QUERY, attr)
    return ProgQuery(attr.attach_flags, tuple(ids[: min(attr.prog_cnt, max_progs)]))


# --- info ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """``struct bpf_link_info``: common fields plus the few per-type ones worth decoding."""

    type: int
    id: int
    prog_id: int
    tp_name: str = ""
    """Raw tracepoint links: the tracepoint."""
    attach_type: int | None = None
    """Tracing, cgroup and tcx links."""
    ifindex: int | None = None
    """XDP and tcx links."""

    @property
    def link_type(self) -> LinkType | int:
        """``type`` as a :class:`LinkType` when this library knows the number."""
        try:
            return LinkType(self.type)
        except ValueError:
            return self.type


_TP_NAME_MAX = 256


def link_get_info_by_fd(fd: FdLike) -> LinkInfo:
    """``BPF_OBJ_GET_INFO_BY_FD`` for a link."""
    info = BpfLinkInfo()
    tp = ctypes.create_string_buffer(_TP_NAME_MAX)
    first = obj_get_info_by_fd(fd, BpfLinkInfo())
    if first.type == LinkType.BPF_LINK_TYPE_RAW_TRACEPOINT:
        info.u.raw_tracepoint.tp_name = ctypes.addressof(tp)
        info.u.raw_tracepoint.tp_name_len = _TP_NAME_MAX
        obj_get_info_by_fd(fd, info)
    else:
        info = first
    kind = info.type
    if kind == LinkType.BPF_LINK_TYPE_RAW_TRACEPOINT:
        return LinkInfo(kind, info.id, info.prog_id, tp_name=tp.value.decode(errors="replace"))
    if kind == LinkType.BPF_LINK_TYPE_TRACING:
        return LinkInfo(kind, info.id, info.prog_id, attach_type=info.u.tracing.attach_type)
    if kind == LinkType.BPF_LINK_TYPE_CGROUP:
        return LinkInfo(kind, info.id, info.prog_id, attach_type=info.u.cgroup.attach_type)
    if kind == LinkType.BPF_LINK_TYPE_XDP:
        return LinkInfo(kind, info.id, info.prog_id, ifindex=info.u.xdp.ifindex)
    if kind in (LinkType.BPF_LINK_TYPE_TCX, LinkType.BPF_LINK_TYPE_NETKIT):
        return LinkInfo(
            kind,
            info.id,
            info.prog_id,
            attach_type=info.u.tcx.attach_type,
            ifindex=info.u.tcx.ifindex,
        )
    return LinkInfo(kind, info.id, info.prog_id)
