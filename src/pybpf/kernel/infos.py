"""``BPF_OBJ_GET_INFO_BY_FD``: the kernel's ``bpf_{prog,map,btf,link}_info`` layouts.

Info structures grow with every kernel release.  The kernel copies ``min(info_len, its size)``
bytes and requires any bytes we send beyond its size to be zero, so the structures below may
be newer than the running kernel: fields it does not know simply read back as zero.
"""

from __future__ import annotations

import ctypes
from typing import TypeVar

from pybpf.abi.bpf import BPF_TAG_SIZE, BpfCmd

from .attrs import InfoAttr, ObjName, u32, u64
from .fd import FdLike, raw_fd
from .syscall import bpf


class BpfProgInfo(ctypes.Structure):
    """``struct bpf_prog_info``."""

    _fields_ = (
        ("type", u32),
        ("id", u32),
        ("tag", ctypes.c_uint8 * BPF_TAG_SIZE),
        ("jited_prog_len", u32),
        ("xlated_prog_len", u32),
        ("jited_prog_insns", u64),
        ("xlated_prog_insns", u64),
        ("load_time", u64),
        ("created_by_uid", u32),
        ("nr_map_ids", u32),
        ("map_ids", u64),
        ("name", ObjName),
        ("ifindex", u32),
        ("gpl_compatible", u32),  # bit 0; the other 31 bits are padding
        ("netns_dev", u64),
        ("netns_ino", u64),
        ("nr_jited_ksyms", u32),
        ("nr_jited_func_lens", u32),
        ("jited_ksyms", u64),
        ("jited_func_lens", u64),
        ("btf_id", u32),
        ("func_info_rec_size", u32),
        ("func_info", u64),
        ("nr_func_info", u32),
        ("nr_line_info", u32),
        ("line_info", u64),
        ("jited_line_info", u64),
        ("nr_jited_line_info", u32),
        ("line_info_rec_size", u32),
        ("jited_line_info_rec_size", u32),
        ("nr_prog_tags", u32),
        ("prog_tags", u64),
        ("run_time_ns", u64),
        ("run_cnt", u64),
        ("recursion_misses", u64),
        ("verified_insns", u32),
        ("attach_btf_obj_id", u32),
        ("attach_btf_id", u32),
    )


class BpfMapInfo(ctypes.Structure):
    """``struct bpf_map_info``."""

    _fields_ = (
        ("type", u32),
        ("id", u32),
        ("key_size", u32),
        ("value_size", u32),
        ("max_entries", u32),
        ("map_flags", u32),
        ("name", ObjName),
        ("ifindex", u32),
        ("btf_vmlinux_value_type_id", u32),
        ("netns_dev", u64),
        ("netns_ino", u64),
        ("btf_id", u32),
        ("btf_key_type_id", u32),
        ("btf_value_type_id", u32),
        ("btf_vmlinux_id", u32),
        ("map_extra", u64),
    )


class BpfBtfInfo(ctypes.Structure):
    """``struct bpf_btf_info``."""

    _fields_ = (
        ("btf", u64),
        ("btf_size", u32),
        ("id", u32),
        ("name", u64),
        ("name_len", u32),
        ("kernel_btf", u32),
    )


class LinkInfoRawTracepoint(ctypes.Structure):
    """``bpf_link_info.raw_tracepoint``."""

    _fields_ = (("tp_name", u64), ("tp_name_len", u32), ("_pad", u32), ("cookie", u64))


class LinkInfoTracing(ctypes.Structure):
    """``bpf_link_info.tracing``."""

    _fields_ = (
        ("attach_type", u32),
        ("target_obj_id", u32),
        ("target_btf_id", u32),
        ("_pad", u32),
        ("cookie", u64),
    )


class LinkInfoCgroup(ctypes.Structure):
    """``bpf_link_info.cgroup``."""

    _fields_ = (("cgroup_id", u64), ("attach_type", u32))


class LinkInfoIfindex(ctypes.Structure):
    """``bpf_link_info.xdp`` / ``.tcx`` / ``.netkit`` (``attach_type`` unused for xdp)."""

    _fields_ = (("ifindex", u32), ("attach_type", u32))


class LinkInfoPerfEvent(ctypes.Structure):
    """``bpf_link_info.perf_event``: ``type`` then a per-type union kept as raw words."""

    _fields_ = (("type", u32), ("_pad", u32), ("u", u64 * 5))


class LinkInfoUnion(ctypes.Union):
    """The per-link-type union of ``bpf_link_info`` (sized generously; tail stays zero)."""

    _fields_ = (
        ("raw_tracepoint", LinkInfoRawTracepoint),
        ("tracing", LinkInfoTracing),
        ("cgroup", LinkInfoCgroup),
        ("xdp", LinkInfoIfindex),
        ("tcx", LinkInfoIfindex),
        ("netkit", LinkInfoIfindex),
        ("perf_event", LinkInfoPerfEvent),
        ("_raw", u64 * 8),
    )


class BpfLinkInfo(ctypes.Structure):
    """``struct bpf_link_info``."""

    _fields_ = (("type", u32), ("id", u32), ("prog_id", u32), ("u", LinkInfoUnion))


_Info = TypeVar("_Info", bound=ctypes.Structure)


def obj_get_info_by_fd(fd: FdLike, info: _Info) -> _Info:
    """Fill ``info`` (whose pointer fields the caller may have set) for the object ``fd``."""
    attr = InfoAttr(bpf_fd=raw_fd(fd), info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(BpfCmd.BPF_OBJ_GET_INFO_BY_FD, attr)
    return info
