"""Map, program and link probes: create the object in question and see if the kernel agrees.

Each probe is the smallest request that only a kernel with the feature accepts, as libbpf
probes (``libbpf_probe_bpf_map_type``, ``probe_kern_*``); programs are assembled with
:mod:`pybpf.abi.insn`.
"""

from __future__ import annotations

import errno
import functools

from pybpf.abi import insn as asm
from pybpf.abi.bpf import (
    AttachType,
    BpfCmd,
    BpfFuncId,
    BpfProgLoadFlags,
    MapFlags,
    MapType,
    ProgType,
)
from pybpf.errors import KernelError
from pybpf.kernel.attrs import MapCreateAttr
from pybpf.kernel.links import link_create
from pybpf.kernel.maps import map_create
from pybpf.kernel.progs import prog_load
from pybpf.kernel.syscall import bpf_raw
from pybpf.kernel.system import page_size


def _map_ok(map_type: MapType, key: int, value: int, entries: int, flags: int = 0) -> bool:
    try:
        fd = map_create(map_type, key, value, entries, map_flags=flags)
    except KernelError:
        return False
    fd.close()
    return True


def _prog_ok(prog_type: ProgType, code: bytes, attach: AttachType | int = 0) -> bool:
    flags = BpfProgLoadFlags.BPF_F_SLEEPABLE if prog_type == ProgType.SYSCALL else 0
    try:
        fd, _ = prog_load(prog_type, code, expected_attach_type=attach, prog_flags=flags)
    except KernelError:
        return False
    fd.close()
    return True


_MAP_SHAPES: dict[MapType, tuple[int, int, int, int]] = {
    # key size, value size, max entries, flags; what libbpf_probe_bpf_map_type uses
    MapType.RINGBUF: (0, 0, 0, 0),  # max_entries: a page, filled in below
    MapType.USER_RINGBUF: (0, 0, 0, 0),
    MapType.QUEUE: (0, 4, 1, 0),
    MapType.STACK: (0, 4, 1, 0),
    MapType.BLOOM_FILTER: (0, 4, 1, 0),
    MapType.STACK_TRACE: (4, 8, 1, 0),
    MapType.LPM_TRIE: (8, 8, 1, MapFlags.BPF_F_NO_PREALLOC),
    MapType.CGROUP_STORAGE_DEPRECATED: (16, 8, 0, 0),
    MapType.PERCPU_CGROUP_STORAGE_DEPRECATED: (16, 8, 0, 0),
}


@functools.cache
def map_type_supported(map_type: MapType) -> bool:
    """Whether a plain map of ``map_type`` can be created (maps needing BTF or an inner map
    — storages, struct_ops, map-in-map — report False here; probe those in context)."""
    key, value, entries, flags = _MAP_SHAPES.get(map_type, (4, 4, 1, 0))
    if map_type in (MapType.RINGBUF, MapType.USER_RINGBUF):
        entries = page_size()
    return _map_ok(map_type, key, value, entries, flags)


_EXPECTED_ATTACH: dict[ProgType, AttachType] = {
    ProgType.CGROUP_SOCK_ADDR: AttachType.CGROUP_INET4_CONNECT,
    ProgType.CGROUP_SOCKOPT: AttachType.CGROUP_GETSOCKOPT,
    ProgType.SK_LOOKUP: AttachType.SK_LOOKUP,
    ProgType.NETFILTER: AttachType.NETFILTER,
}


@functools.cache
def prog_type_supported(prog_type: ProgType) -> bool:
    """Whether a trivial ``return 0`` program of ``prog_type`` loads.

    Types that need a BTF attach target (tracing, LSM, ext, struct_ops) report False.
    """
    return _prog_ok(prog_type, asm.return_imm(0), _EXPECTED_ATTACH.get(prog_type, 0))


@functools.cache
def has_mmapable_arrays() -> bool:
    """``BPF_F_MMAPABLE`` arrays: global variables without syscalls."""
    return _map_ok(MapType.ARRAY, 4, 4, 1, MapFlags.BPF_F_MMAPABLE)


@functools.cache
def has_ringbuf() -> bool:
    """``BPF_MAP_TYPE_RINGBUF``."""
    return map_type_supported(MapType.RINGBUF)


@functools.cache
def has_global_data() -> bool:
    """``BPF_PSEUDO_MAP_VALUE`` loads: programs address map values directly."""
    try:
        array = map_create(MapType.ARRAY, 4, 32, 1)
    except KernelError:
        return False
    with array:
        code = b"".join(
            (
                asm.ld_map_value(asm.Reg.R1, array.fileno(), 16),
                asm.st_mem(asm.BPF_DW, asm.Reg.R1, 0, 42),
                asm.return_imm(0),
            )
        )
        return _prog_ok(ProgType.SOCKET_FILTER, code)


@functools.cache
def has_bpf_cookie() -> bool:
    """``bpf_get_attach_cookie()`` for tracing programs."""
    code = asm.call(BpfFuncId.BPF_FUNC_get_attach_cookie) + asm.exit_insn()
    return _prog_ok(ProgType.TRACEPOINT, code)


@functools.cache
def has_perf_link() -> bool:
    """``BPF_LINK_CREATE`` with ``BPF_PERF_EVENT``.

    As libbpf does: with a bogus perf fd, a kernel that knows the attach type says EBADF.
    """
    try:
        prog, _ = prog_load(ProgType.TRACEPOINT, asm.return_imm(0))
    except KernelError:
        return False
    with prog:
        try:
            link_create(prog, -1, AttachType.PERF_EVENT).close()
        except KernelError as exc:
            return exc.errno == errno.EBADF
        return True  # pragma: no cover - an fd -1 cannot succeed


@functools.cache
def has_bpf_syscall() -> bool:
    """Whether ``bpf()`` exists and this process may use it (root or unprivileged BPF)."""
    ret, err = bpf_raw(BpfCmd.BPF_MAP_CREATE, MapCreateAttr())
    return not (ret < 0 and err in (errno.ENOSYS, errno.EPERM))
