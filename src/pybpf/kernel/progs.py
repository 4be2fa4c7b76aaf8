"""BPF program commands: load, test run, info, map binding."""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Sequence
from dataclasses import dataclass

from pybpf.abi.bpf import AttachType, BpfCmd, BpfProgLoadFlags, ProgType
from pybpf.abi.insn import INSN_SIZE
from pybpf.errors import PROG_LOAD_ERRORS, kernel_error

from .attrs import ProgBindMapAttr, ProgLoadAttr, TestRunAttr
from .buffers import Bytes, address, obj_name
from .fd import Fd, FdLike, raw_fd
from .infos import BpfProgInfo, obj_get_info_by_fd
from .syscall import bpf, bpf_raw
from .verifier import DEFAULT_LOG_SIZE, Loaded, LogFields, load_with_log


def _set_log(attr: ctypes.Structure, buf: int, size: int, level: int) -> None:
    assert isinstance(attr, ProgLoadAttr)
    attr.log_buf, attr.log_size, attr.log_level = buf, size, level


def _true_size(attr: ctypes.Structure) -> int:
    assert isinstance(attr, ProgLoadAttr)
    return int(attr.log_true_size)


_PROG_LOG = LogFields(_set_log, _true_size)


def prog_load(
    prog_type: ProgType | int,
    insns: Bytes,
    *,
    license: str = "GPL",
    name: str = "",
    kern_version: int = 0,
    prog_flags: BpfProgLoadFlags | int = 0,
    expected_attach_type: AttachType | int = 0,
    prog_btf_fd: FdLike | None = None,
    func_info: Bytes | None = None,
    func_info_rec_size: int = 0,
    line_info: Bytes | None = None,
    line_info_rec_size: int = 0,
    attach_btf_id: int = 0,
    attach_btf_obj_fd: FdLike | None = None,
    attach_prog_fd: FdLike | None = None,
    fd_array: Sequence[FdLike] | None = None,
    prog_ifindex: int = 0,
    log_level: int = 0,
    log_size: int = DEFAULT_LOG_SIZE,
) -> Loaded:
    """``BPF_PROG_LOAD``: verify and load ``insns`` (raw ``struct bpf_insn`` bytes).

    ``func_info``/``line_info`` are the raw ``bpf_func_info``/``bpf_line_info`` records
    (their counts follow from the record sizes) and need ``prog_btf_fd``.  ``fd_array``
    backs ``BPF_PSEUDO_MAP_IDX`` references and kfunc module BTFs.

    With ``log_level=0`` the verifier log is fetched only if the load fails (then it is in
    the raised :class:`~pybpf.kernel.verifier.ProgLoadError`); a positive ``log_level``
    returns the log of a successful load too.
    """
    if len(insns) % INSN_SIZE:
        raise ValueError(f"instructions are {len(insns)} bytes, not a multiple of 8")
    if attach_btf_obj_fd is not None and attach_prog_fd is not None:
        raise ValueError("attach_btf_obj_fd and attach_prog_fd are exclusive")
    insns_addr, insns_keep = address(insns)
    license_buf = ctypes.create_string_buffer(license.encode())
    attr = ProgLoadAttr(
        prog_type=prog_type,
        insn_cnt=len(insns) // INSN_SIZE,
        insns=insns_addr,
        license=ctypes.addressof(license_buf),
        kern_version=kern_version,
        prog_flags=prog_flags,
        prog_name=obj_name(name),
        prog_ifindex=prog_ifindex,
        expected_attach_type=expected_attach_type,
        attach_btf_id=attach_btf_id,
    )
    if prog_btf_fd is not None:
        attr.prog_btf_fd = raw_fd(prog_btf_fd)
    keep: list[object] = [insns_keep, license_buf]
    if func_info:
        _records(attr, "func_info", func_info, func_info_rec_size, keep)
    if line_info:
        _records(attr, "line_info", line_info, line_info_rec_size, keep)
    target = attach_btf_obj_fd if attach_btf_obj_fd is not None else attach_prog_fd
    if target is not None:
        attr.attach_btf_obj_fd = raw_fd(target)
    if fd_array:
        fds = (ctypes.c_int32 * len(fd_array))(*(raw_fd(fd) for fd in fd_array))
        attr.fd_array = ctypes.addressof(fds)
        keep.append(fds)
    ret, err, log = load_with_log(
        BpfCmd.BPF_PROG_LOAD, attr, _PROG_LOG, log_level=log_level, log_size=log_size
    )
    if ret < 0:
        what = f"program {name!r}" if name else "program"
        raise kernel_error(
            BpfCmd.BPF_PROG_LOAD.name,
            err,
            what,
            family=PROG_LOAD_ERRORS,
            program=name or None,
            log=log,
        )
    return Loaded(Fd.adopt(ret, f"prog {name!r}" if name else "prog"), log)


def _records(
    attr: ProgLoadAttr, field: str, data: Bytes, rec_size: int, keep: list[object]
) -> None:
    if rec_size <= 0 or len(data) % rec_size:
        raise ValueError(f"{field}: {len(data)} bytes are not whole {rec_size}-byte records")
    addr, pinned = address(data)
    keep.append(pinned)
    setattr(attr, field, addr)
    setattr(attr, f"{field}_rec_size", rec_size)
    setattr(attr, f"{field}_cnt", len(data) // rec_size)


# --- test run ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TestRunResult:
    """Outcome of ``BPF_PROG_TEST_RUN``: return value, mean ns per run, output data/ctx."""

    __test__ = False  # not a pytest class, whatever its name says

    retval: int
    duration: int
    data_out: bytes
    ctx_out: bytes


_OUT_HEADROOM = 256
"""Extra output room: XDP/tc programs may grow the packet (``bpf_xdp_adjust_head``)."""


def prog_test_run(
    fd: FdLike,
    data_in: Bytes | None = None,
    *,
    ctx_in: Bytes | None = None,
    data_size_out: int | None = None,
    ctx_size_out: int | None = None,
    repeat: int = 1,
    flags: int = 0,
    cpu: int = 0,
    batch_size: int = 0,
) -> TestRunResult:
    """Run a program on ``data_in``/``ctx_in`` ``repeat`` times in the kernel.

    Output buffers default to the input size plus headroom; if the kernel reports they are
    too small (ENOSPC, with the size it needs) the run is repeated once with that size.
    """
    data_cap = data_size_out if data_size_out is not None else _cap(data_in)
    ctx_cap = ctx_size_out if ctx_size_out is not None else _cap(ctx_in)
    for _ in range(2):
        data_out = ctypes.create_string_buffer(data_cap)
        ctx_out = ctypes.create_string_buffer(ctx_cap)
        data_addr, data_keep = address(data_in)
        ctx_addr, ctx_keep = address(ctx_in)
        attr = TestRunAttr(
            prog_fd=raw_fd(fd),
            data_size_in=len(data_in) if data_in is not None else 0,
            data_in=data_addr,
            data_size_out=data_cap,
            data_out=ctypes.addressof(data_out) if data_cap else 0,
            ctx_size_in=len(ctx_in) if ctx_in is not None else 0,
            ctx_in=ctx_addr,
            ctx_size_out=ctx_cap,
            ctx_out=ctypes.addressof(ctx_out) if ctx_cap else 0,
            repeat=repeat,
            flags=flags,
            cpu=cpu,
            batch_size=batch_size,
        )
        ret, err = bpf_raw(BpfCmd.BPF_PROG_TEST_RUN, attr)
        del data_keep, ctx_keep
        if ret >= 0:
            return TestRunResult(
                retval=attr.retval,
                duration=attr.duration,
                data_out=data_out.raw[: attr.data_size_out] if data_cap else b"",
                ctx_out=ctx_out.raw[: attr.ctx_size_out] if ctx_cap else b"",
            )
        if err != errno.ENOSPC:
            break
        data_cap = max(data_cap, attr.data_size_out)
        ctx_cap = max(ctx_cap, attr.ctx_size_out)
    raise kernel_error(BpfCmd.BPF_PROG_TEST_RUN.name, err)


def _cap(data: Bytes | None) -> int:
    return len(data) + _OUT_HEADROOM if data is not None else 0


# --- info ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProgInfo:
    """What the kernel reports about a program (``struct bpf_prog_info``).

    ``xlated_insns`` (the instructions after verifier rewrites) is fetched only on request.
    """

    type: int
    id: int
    tag: bytes
    name: str
    map_ids: tuple[int, ...]
    xlated_prog_len: int
    jited_prog_len: int
    xlated_insns: bytes | None
    load_time: int
    created_by_uid: int
    gpl_compatible: bool
    btf_id: int
    nr_func_info: int
    nr_line_info: int
    run_time_ns: int
    run_cnt: int
    recursion_misses: int
    verified_insns: int
    attach_btf_obj_id: int
    attach_btf_id: int

    @property
    def prog_type(self) -> ProgType | int:
        """``type`` as a :class:`ProgType` when this library knows the number."""
        try:
            return ProgType(self.type)
        except ValueError:
            return self.type

    @property
    def xlated_insn_cnt(self) -> int:
        """Instructions after the verifier's rewrites (what ``bpftool prog dump xlated`` shows)."""
        return self.xlated_prog_len // INSN_SIZE


def prog_get_info_by_fd(fd: FdLike, *, xlated_insns: bool = False) -> ProgInfo:
    """``BPF_OBJ_GET_INFO_BY_FD`` for a program, with its map ids and, optionally, insns.

    Two calls, as with libbpf: the first learns the array sizes, the second fills them.
    """
    first = obj_get_info_by_fd(fd, BpfProgInfo())
    info = BpfProgInfo()
    map_ids = (ctypes.c_uint32 * max(first.nr_map_ids, 1))()
    info.nr_map_ids = first.nr_map_ids
    info.map_ids = ctypes.addressof(map_ids)
    xlated = ctypes.create_string_buffer(max(first.xlated_prog_len, 1))
    if xlated_insns:
        info.xlated_prog_len = first.xlated_prog_len
        info.xlated_prog_insns = ctypes.addressof(xlated)
    obj_get_info_by_fd(fd, info)
    return ProgInfo(
        type=info.type,
        id=info.id,
        tag=bytes(info.tag),
        name=info.name.decode(errors="replace"),
        map_ids=tuple(map_ids[: min(info.nr_map_ids, first.nr_map_ids)]),
        xlated_prog_len=info.xlated_prog_len,
        jited_prog_len=info.jited_prog_len,
        xlated_insns=xlated.raw[: info.xlated_prog_len] if xlated_insns else None,
        load_time=info.load_time,
        created_by_uid=info.created_by_uid,
        gpl_compatible=bool(info.gpl_compatible & 1),
        btf_id=info.btf_id,
        nr_func_info=info.nr_func_info,
        nr_line_info=info.nr_line_info,
        run_time_ns=info.run_time_ns,
        run_cnt=info.run_cnt,
        recursion_misses=info.recursion_misses,
        verified_insns=info.verified_insns,
        attach_btf_obj_id=info.attach_btf_obj_id,
        attach_btf_id=info.attach_btf_id,
    )


def prog_bind_map(prog_fd: FdLike, map_fd: FdLike) -> None:
    """``BPF_PROG_BIND_MAP``: keep a map alive as long as the program, unreferenced or not."""
    bpf(BpfCmd.BPF_PROG_BIND_MAP, ProgBindMapAttr(prog_fd=raw_fd(prog_fd), map_fd=raw_fd(map_fd)))
