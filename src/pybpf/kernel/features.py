"""What the running kernel supports, found by trying (and cached for the process).

Version numbers lie (distributions backport, configs differ), so like libbpf we probe: load a
tiny BTF blob using the kind in question, create the map, load the program calling the
helper.  Each probe returns a bool, never raises for 'unsupported', closes everything it
opened, and runs at most once per process.

System facts (CPUs, page size, kernel version) live in :mod:`.system` and are re-exported.
"""

from __future__ import annotations

import errno
import functools
import struct
from dataclasses import dataclass

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
from pybpf.abi.btf import BtfKind, FuncLinkage, IntEncoding, VarLinkage, pack_header
from pybpf.errors import KernelError

from .attrs import MapCreateAttr
from .btf import btf_load
from .links import link_create
from .maps import map_create
from .progs import prog_load
from .syscall import bpf_raw
from .system import kernel_version, page_size, possible_cpus

__all__ = [
    "KernelFeatures",
    "btf_kind_supported",
    "has_bpf_cookie",
    "has_bpf_syscall",
    "has_btf",
    "has_global_data",
    "has_mmapable_arrays",
    "has_perf_link",
    "has_ringbuf",
    "kernel_features",
    "kernel_version",
    "map_type_supported",
    "page_size",
    "possible_cpus",
    "prog_type_supported",
]

# --- a minimal BTF encoder for probe blobs -------------------------------------------------

_U32X3 = struct.Struct("<III")


def _type(name_off: int, kind: int, vlen: int, size_or_type: int) -> bytes:
    return _U32X3.pack(name_off, (kind << 24) | vlen, size_or_type)


def _int32(name_off: int) -> bytes:
    # INT extra word: encoding << 24 | offset << 16 | bits
    return _type(name_off, BtfKind.INT, 0, 4) + struct.pack("<I", (IntEncoding.SIGNED << 24) | 32)


def _blob(types: bytes, strings: bytes) -> bytes:
    header = pack_header(len(types), len(strings))
    return header + types + strings


def _btf_loads(data: bytes) -> bool:
    try:
        btf_fd, _ = btf_load(data)
    except KernelError:
        return False
    btf_fd.close()
    return True


# Strings shared by the probes: offsets 1 "int", 5 "x", 7 ".data", 13 "tag", 17 "e".
_STRS = b"\0int\0x\0.data\0tag\0e\0"
_INT, _X, _DATA, _TAG, _E = 1, 5, 7, 13, 17

_KIND_PROBES: dict[str, bytes] = {
    "int": _int32(_INT),
    "func": (
        _int32(_INT)  # [1] int
        + _type(0, BtfKind.FUNC_PROTO, 1, 1)  # [2] int (int x)
        + struct.pack("<II", _X, 1)
        + _type(_X, BtfKind.FUNC, FuncLinkage.STATIC, 2)  # [3] static func x (pre-5.6 safe)
    ),
    "datasec": (
        _int32(_INT)  # [1]
        + _type(_X, BtfKind.VAR, 0, 1)  # [2] int x
        + struct.pack("<I", VarLinkage.GLOBAL_ALLOCATED)
        + _type(_DATA, BtfKind.DATASEC, 1, 4)  # [3] .data { x }
        + struct.pack("<III", 2, 0, 4)
    ),
    "float": _type(_INT, BtfKind.FLOAT, 0, 4),
    "decl_tag": (
        _int32(_INT)  # [1]
        + _type(_X, BtfKind.VAR, 0, 1)  # [2]
        + struct.pack("<I", VarLinkage.GLOBAL_ALLOCATED)
        + _type(_TAG, BtfKind.DECL_TAG, 0, 2)  # [3] tag on x
        + struct.pack("<i", -1)
    ),
    "type_tag": (
        _int32(_INT)  # [1]
        + _type(_TAG, BtfKind.TYPE_TAG, 0, 1)  # [2] int __tag
        + _type(0, BtfKind.PTR, 0, 2)  # [3] int __tag *
    ),
    "enum64": (
        _type(_E, BtfKind.ENUM64, 1, 8)  # [1] enum e : 8 bytes { x = 1 << 40 }
        + struct.pack("<III", _X, 0, 1 << 8)
    ),
}
BTF_KINDS = tuple(_KIND_PROBES)
"""Names accepted by :func:`btf_kind_supported`."""


@functools.cache
def btf_kind_supported(kind: str) -> bool:
    """Whether the kernel accepts BTF using ``kind`` (one of :data:`BTF_KINDS`)."""
    if kind not in _KIND_PROBES:
        raise ValueError(f"no probe for BTF kind {kind!r}; known: {', '.join(BTF_KINDS)}")
    return _btf_loads(_blob(_KIND_PROBES[kind], _STRS))


def has_btf() -> bool:
    """Whether ``BPF_BTF_LOAD`` works at all (an ``int`` type)."""
    return btf_kind_supported("int")


# --- maps and programs ---------------------------------------------------------------------


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
    """``BPF_F_MMAPABLE`` arrays (Linux 5.5): global variables without syscalls."""
    return _map_ok(MapType.ARRAY, 4, 4, 1, MapFlags.BPF_F_MMAPABLE)


@functools.cache
def has_ringbuf() -> bool:
    """``BPF_MAP_TYPE_RINGBUF`` (Linux 5.8)."""
    return map_type_supported(MapType.RINGBUF)


@functools.cache
def has_global_data() -> bool:
    """``BPF_PSEUDO_MAP_VALUE`` loads (Linux 5.2): programs address map values directly."""
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
    """``bpf_get_attach_cookie()`` for tracing programs (Linux 5.15)."""
    code = asm.call(BpfFuncId.BPF_FUNC_get_attach_cookie) + asm.exit_insn()
    return _prog_ok(ProgType.TRACEPOINT, code)


@functools.cache
def has_perf_link() -> bool:
    """``BPF_LINK_CREATE`` with ``BPF_PERF_EVENT`` (Linux 5.15).

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


@dataclass(frozen=True, slots=True)
class KernelFeatures:
    """A snapshot of every probe, for loaders deciding how to sanitize an object."""

    kernel_version: int
    btf: bool
    btf_func: bool
    btf_datasec: bool
    btf_float: bool
    btf_decl_tag: bool
    btf_type_tag: bool
    btf_enum64: bool
    global_data: bool
    mmapable_arrays: bool
    ringbuf: bool
    bpf_cookie: bool
    perf_link: bool


@functools.cache
def kernel_features() -> KernelFeatures:
    """Run (once) every probe of this module."""
    return KernelFeatures(
        kernel_version=kernel_version(),
        btf=has_btf(),
        btf_func=btf_kind_supported("func"),
        btf_datasec=btf_kind_supported("datasec"),
        btf_float=btf_kind_supported("float"),
        btf_decl_tag=btf_kind_supported("decl_tag"),
        btf_type_tag=btf_kind_supported("type_tag"),
        btf_enum64=btf_kind_supported("enum64"),
        global_data=has_global_data(),
        mmapable_arrays=has_mmapable_arrays(),
        ringbuf=has_ringbuf(),
        bpf_cookie=has_bpf_cookie(),
        perf_link=has_perf_link(),
    )
