"""Object-wide commands: pin/get in bpffs, and walking kernel objects by id."""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Iterator
from os import PathLike

from pybpf.abi.bpf import BpfCmd
from pybpf.errors import kernel_error

from .attrs import GetIdAttr, ObjAttr
from .buffers import c_string
from .fd import Fd, FdLike, raw_fd
from .syscall import bpf, bpf_fd, bpf_raw


def obj_pin(fd: FdLike, path: str | PathLike[str]) -> None:
    """``BPF_OBJ_PIN``: keep the object alive under ``path`` on a bpffs mount."""
    name = c_string(str(path))
    bpf(BpfCmd.BPF_OBJ_PIN, ObjAttr(pathname=ctypes.addressof(name), bpf_fd=raw_fd(fd)), str(path))


def obj_get(path: str | PathLike[str], file_flags: int = 0) -> Fd:
    """``BPF_OBJ_GET``: open a pinned object (``file_flags``: ``BPF_F_RDONLY``/``WRONLY``)."""
    name = c_string(str(path))
    attr = ObjAttr(pathname=ctypes.addressof(name), file_flags=file_flags)
    return bpf_fd(BpfCmd.BPF_OBJ_GET, attr, f"pinned {path}", str(path))


def _next_id(cmd: BpfCmd, start_id: int) -> int | None:
    attr = GetIdAttr(start_id=start_id)
    ret, err = bpf_raw(cmd, attr)
    if ret < 0:
        if err == errno.ENOENT:
            return None
        raise kernel_error(cmd.name, err)
    return int(attr.next_id)


def prog_get_next_id(start_id: int = 0) -> int | None:
    """The smallest program id above ``start_id``, or None."""
    return _next_id(BpfCmd.BPF_PROG_GET_NEXT_ID, start_id)


def map_get_next_id(start_id: int = 0) -> int | None:
    """The smallest map id above ``start_id``, or None."""
    return _next_id(BpfCmd.BPF_MAP_GET_NEXT_ID, start_id)


def btf_get_next_id(start_id: int = 0) -> int | None:
    """The smallest BTF id above ``start_id``, or None."""
    return _next_id(BpfCmd.BPF_BTF_GET_NEXT_ID, start_id)


def link_get_next_id(start_id: int = 0) -> int | None:
    """The smallest link id above ``start_id``, or None."""
    return _next_id(BpfCmd.BPF_LINK_GET_NEXT_ID, start_id)


def _ids(cmd: BpfCmd) -> Iterator[int]:
    current = _next_id(cmd, 0)
    while current is not None:
        yield current
        current = _next_id(cmd, current)


def prog_ids() -> Iterator[int]:
    """Ids of every loaded program (a live walk: objects may come and go meanwhile)."""
    return _ids(BpfCmd.BPF_PROG_GET_NEXT_ID)


def map_ids() -> Iterator[int]:
    """Ids of every map."""
    return _ids(BpfCmd.BPF_MAP_GET_NEXT_ID)


def btf_ids() -> Iterator[int]:
    """Ids of every BTF object (vmlinux, modules, programs')."""
    return _ids(BpfCmd.BPF_BTF_GET_NEXT_ID)


def link_ids() -> Iterator[int]:
    """Ids of every link."""
    return _ids(BpfCmd.BPF_LINK_GET_NEXT_ID)


def prog_get_fd_by_id(prog_id: int) -> Fd:
    """A descriptor for the program with this id (ENOENT if it is gone)."""
    attr = GetIdAttr(start_id=prog_id)
    return bpf_fd(BpfCmd.BPF_PROG_GET_FD_BY_ID, attr, f"prog #{prog_id}", f"id {prog_id}")


def map_get_fd_by_id(map_id: int, open_flags: int = 0) -> Fd:
    """A descriptor for the map with this id (``open_flags``: ``BPF_F_RDONLY``/``WRONLY``)."""
    attr = GetIdAttr(start_id=map_id, open_flags=open_flags)
    return bpf_fd(BpfCmd.BPF_MAP_GET_FD_BY_ID, attr, f"map #{map_id}", f"id {map_id}")


def btf_get_fd_by_id(btf_id: int) -> Fd:
    """A descriptor for the BTF object with this id."""
    attr = GetIdAttr(start_id=btf_id)
    return bpf_fd(BpfCmd.BPF_BTF_GET_FD_BY_ID, attr, f"btf #{btf_id}", f"id {btf_id}")


def link_get_fd_by_id(link_id: int) -> Fd:
    """A descriptor for the link with this id."""
    attr = GetIdAttr(start_id=link_id)
    return bpf_fd(BpfCmd.BPF_LINK_GET_FD_BY_ID, attr, f"link #{link_id}", f"id {link_id}")
