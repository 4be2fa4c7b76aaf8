"""BTF objects in the kernel: load raw BTF, find BTF by id, read it back."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from pybpf.abi.bpf import BpfCmd
from pybpf.errors import BTF_LOAD_ERRORS, kernel_error

from .attrs import BtfLoadAttr
from .buffers import Bytes, address
from .fd import Fd, FdLike
from .infos import BpfBtfInfo, obj_get_info_by_fd
from .verifier import DEFAULT_LOG_SIZE, Loaded, LogFields, load_with_log


def _set_log(attr: ctypes.Structure, buf: int, size: int, level: int) -> None:
    assert isinstance(attr, BtfLoadAttr)
    attr.btf_log_buf, attr.btf_log_size, attr.btf_log_level = buf, size, level


def _true_size(attr: ctypes.Structure) -> int:
    assert isinstance(attr, BtfLoadAttr)
    return int(attr.btf_log_true_size)


_BTF_LOG = LogFields(_set_log, _true_size)


def btf_load(
    data: Bytes, *, log_level: int = 0, log_size: int = DEFAULT_LOG_SIZE, btf_flags: int = 0
) -> Loaded:
    """``BPF_BTF_LOAD`` of a raw BTF blob (header, types, strings: the ``.BTF`` section).

    Failures raise :class:`~pybpf.kernel.verifier.BtfLoadError` with the kernel's BTF log.
    """
    addr, keep = address(data)
    attr = BtfLoadAttr(btf=addr, btf_size=len(data), btf_flags=btf_flags)
    ret, err, log = load_with_log(
        BpfCmd.BPF_BTF_LOAD, attr, _BTF_LOG, log_level=log_level, log_size=log_size
    )
    del keep
    if ret < 0:
        raise kernel_error(
            BpfCmd.BPF_BTF_LOAD.name, err, "BTF", family=BTF_LOAD_ERRORS, program=None, log=log
        )
    return Loaded(Fd.adopt(ret, "btf"), log)


@dataclass(frozen=True, slots=True)
class BtfInfo:
    """``struct bpf_btf_info``: id, name (``vmlinux``, a module's, or empty) and raw size."""

    id: int
    name: str
    btf_size: int
    kernel_btf: bool


_NAME_MAX = 64


def btf_get_info_by_fd(fd: FdLike) -> BtfInfo:
    """Id, name and size of a BTF object."""
    name = ctypes.create_string_buffer(_NAME_MAX)
    info = obj_get_info_by_fd(fd, BpfBtfInfo(name=ctypes.addressof(name), name_len=_NAME_MAX))
    return BtfInfo(
        id=info.id,
        name=name.value.decode(errors="replace"),
        btf_size=info.btf_size,
        kernel_btf=bool(info.kernel_btf),
    )


def btf_get_data(fd: FdLike) -> bytes:
    """The raw BTF bytes of a loaded BTF object (what ``bpftool btf dump id N`` reads)."""
    size = obj_get_info_by_fd(fd, BpfBtfInfo()).btf_size
    buf = ctypes.create_string_buffer(max(size, 1))
    info = obj_get_info_by_fd(fd, BpfBtfInfo(btf=ctypes.addressof(buf), btf_size=size))
    return buf.raw[: info.btf_size]
