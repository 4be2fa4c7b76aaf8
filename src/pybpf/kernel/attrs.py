"""ctypes layouts of the ``union bpf_attr`` variants pybpf issues.

The kernel accepts an attr of any size as long as every byte beyond the part it knows is zero
(``bpf_check_uarg_tail_zero``).  Rather than one huge union, each command gets its own
structure ending at the last field that command uses, exactly like libbpf's
``offsetofend(union bpf_attr, <last field>)``: fields a caller leaves unset stay zero, so a
structure newer than the running kernel still works when its newer fields are unused.

Field names are the kernel's.  Pointer fields are ``__aligned_u64`` in the uapi; they are
``c_uint64`` here and receive addresses from :func:`pybpf.kernel.buffers.address`.
"""

from __future__ import annotations

import ctypes

from pybpf.abi.bpf import BPF_OBJ_NAME_LEN

u32 = ctypes.c_uint32
s32 = ctypes.c_int32
u64 = ctypes.c_uint64
ObjName = ctypes.c_char * BPF_OBJ_NAME_LEN


class MapCreateAttr(ctypes.Structure):
    """``BPF_MAP_CREATE``."""

    _fields_ = (
        ("map_type", u32),
        ("key_size", u32),
        ("value_size", u32),
        ("max_entries", u32),
        ("map_flags", u32),
        ("inner_map_fd", u32),
        ("numa_node", u32),
        ("map_name", ObjName),
        ("map_ifindex", u32),
        ("btf_fd", u32),
        ("btf_key_type_id", u32),
        ("btf_value_type_id", u32),
        ("btf_vmlinux_value_type_id", u32),
        ("map_extra", u64),
        ("value_type_btf_obj_fd", s32),
        ("map_token_fd", s32),
    )


class MapElemAttr(ctypes.Structure):
    """``BPF_MAP_{LOOKUP,UPDATE,DELETE}_ELEM``, ``GET_NEXT_KEY``, ``LOOKUP_AND_DELETE``, ``FREEZE``.

    ``value`` doubles as ``next_key`` (a union in the uapi).
    """

    _fields_ = (
        ("map_fd", u32),
        ("key", u64),
        ("value", u64),
        ("flags", u64),
    )


class MapBatchAttr(ctypes.Structure):
    """``BPF_MAP_*_BATCH`` (``attr.batch``)."""

    _fields_ = (
        ("in_batch", u64),
        ("out_batch", u64),
        ("keys", u64),
        ("values", u64),
        ("count", u32),
        ("map_fd", u32),
        ("elem_flags", u64),
        ("flags", u64),
    )


class ProgLoadAttr(ctypes.Structure):
    """``BPF_PROG_LOAD``.

    ``attach_prog_fd`` and ``attach_btf_obj_fd`` share one slot in the uapi; only
    ``attach_btf_obj_fd`` is named here, and the loader writes whichever applies into it.
    """

    _fields_ = (
        ("prog_type", u32),
        ("insn_cnt", u32),
        ("insns", u64),
        ("license", u64),
        ("log_level", u32),
        ("log_size", u32),
        ("log_buf", u64),
        ("kern_version", u32),
        ("prog_flags", u32),
        ("prog_name", ObjName),
        ("prog_ifindex", u32),
        ("expected_attach_type", u32),
        ("prog_btf_fd", u32),
        ("func_info_rec_size", u32),
        ("func_info", u64),
        ("func_info_cnt", u32),
        ("line_info_rec_size", u32),
        ("line_info", u64),
        ("line_info_cnt", u32),
        ("attach_btf_id", u32),
        ("attach_btf_obj_fd", u32),
        ("core_relo_cnt", u32),
        ("fd_array", u64),
        ("core_relos", u64),
        ("core_relo_rec_size", u32),
        ("log_true_size", u32),
        ("prog_token_fd", s32),
        ("fd_array_cnt", u32),
    )


class ObjAttr(ctypes.Structure):
    """``BPF_OBJ_PIN`` / ``BPF_OBJ_GET``."""

    _fields_ = (
        ("pathname", u64),
        ("bpf_fd", u32),
        ("file_flags", u32),
        ("path_fd", s32),
    )


class ProgAttachAttr(ctypes.Structure):
    """``BPF_PROG_ATTACH`` / ``BPF_PROG_DETACH`` (``target_fd`` doubles as ``target_ifindex``)."""

    _fields_ = (
        ("target_fd", u32),
        ("attach_bpf_fd", u32),
        ("attach_type", u32),
        ("attach_flags", u32),
        ("replace_bpf_fd", u32),
        ("relative_fd", u32),
        ("expected_revision", u64),
    )


class ProgQueryAttr(ctypes.Structure):
    """``BPF_PROG_QUERY`` (``attr.query``)."""

    _fields_ = (
        ("target_fd", u32),
        ("attach_type", u32),
        ("query_flags", u32),
        ("attach_flags", u32),
        ("prog_ids", u64),
        ("prog_cnt", u32),
        ("_pad", u32),
        ("prog_attach_flags", u64),
    )


class TestRunAttr(ctypes.Structure):
    """``BPF_PROG_TEST_RUN`` (``attr.test``)."""

    __test__ = False  # not a pytest class, whatever its name says

    _fields_ = (
        ("prog_fd", u32),
        ("retval", u32),
        ("data_size_in", u32),
        ("data_size_out", u32),
        ("data_in", u64),
        ("data_out", u64),
        ("repeat", u32),
        ("duration", u32),
        ("ctx_size_in", u32),
        ("ctx_size_out", u32),
        ("ctx_in", u64),
        ("ctx_out", u64),
        ("flags", u32),
        ("cpu", u32),
        ("batch_size", u32),
    )


class GetIdAttr(ctypes.Structure):
    """``BPF_*_GET_NEXT_ID`` and ``BPF_*_GET_FD_BY_ID``.

    ``start_id`` is also ``prog_id``/``map_id``/``btf_id``/``link_id`` in the uapi union.
    """

    _fields_ = (
        ("start_id", u32),
        ("next_id", u32),
        ("open_flags", u32),
    )


class InfoAttr(ctypes.Structure):
    """``BPF_OBJ_GET_INFO_BY_FD`` (``attr.info``)."""

    _fields_ = (
        ("bpf_fd", u32),
        ("info_len", u32),
        ("info", u64),
    )


class RawTracepointAttr(ctypes.Structure):
    """``BPF_RAW_TRACEPOINT_OPEN`` without the 6.10 ``cookie`` (kept off older kernels)."""

    _fields_ = (
        ("name", u64),
        ("prog_fd", u32),
    )


class RawTracepointCookieAttr(ctypes.Structure):
    """``BPF_RAW_TRACEPOINT_OPEN`` with ``cookie`` (Linux 6.10+)."""

    _fields_ = (
        ("name", u64),
        ("prog_fd", u32),
        ("_pad", u32),
        ("cookie", u64),
    )


class BtfLoadAttr(ctypes.Structure):
    """``BPF_BTF_LOAD``."""

    _fields_ = (
        ("btf", u64),
        ("btf_log_buf", u64),
        ("btf_size", u32),
        ("btf_log_size", u32),
        ("btf_log_level", u32),
        ("btf_log_true_size", u32),
        ("btf_flags", u32),
        ("btf_token_fd", s32),
    )


class TaskFdQueryAttr(ctypes.Structure):
    """``BPF_TASK_FD_QUERY``: what BPF program and probe a perf/raw-tp fd of a task holds."""

    _fields_ = (
        ("pid", u32),
        ("fd", u32),
        ("flags", u32),
        ("buf_len", u32),
        ("buf", u64),
        ("prog_id", u32),
        ("fd_type", u32),
        ("probe_offset", u64),
        ("probe_addr", u64),
    )


# --- BPF_LINK_CREATE: a fixed head and a per-attach-type tail ------------------------------


class LinkPerfEvent(ctypes.Structure):
    """``link_create.perf_event``."""

    _fields_ = (("bpf_cookie", u64),)


class LinkKprobeMulti(ctypes.Structure):
    """``link_create.kprobe_multi``."""

    _fields_ = (
        ("flags", u32),
        ("cnt", u32),
        ("syms", u64),
        ("addrs", u64),
        ("cookies", u64),
    )


class LinkTracing(ctypes.Structure):
    """``link_create.tracing`` (``target_btf_id`` overlays ``link_create.target_btf_id``)."""

    _fields_ = (
        ("target_btf_id", u32),
        ("cookie", u64),
    )


class LinkIter(ctypes.Structure):
    """``link_create.iter_info`` / ``iter_info_len``."""

    _fields_ = (
        ("iter_info", u64),
        ("iter_info_len", u32),
    )


class LinkNetfilter(ctypes.Structure):
    """``link_create.netfilter``."""

    _fields_ = (
        ("pf", u32),
        ("hooknum", u32),
        ("priority", s32),
        ("flags", u32),
    )


class LinkRelative(ctypes.Structure):
    """``link_create.tcx``, ``.netkit`` and ``.cgroup`` share this shape."""

    _fields_ = (
        ("relative_fd", u32),
        ("expected_revision", u64),
    )


class LinkUprobeMulti(ctypes.Structure):
    """``link_create.uprobe_multi``."""

    _fields_ = (
        ("path", u64),
        ("offsets", u64),
        ("ref_ctr_offsets", u64),
        ("cookies", u64),
        ("cnt", u32),
        ("flags", u32),
        ("pid", u32),
        ("path_fd", u32),
    )


class LinkCreateTail(ctypes.Union):
    """The anonymous union at the end of ``link_create``."""

    _fields_ = (
        ("target_btf_id", u32),
        ("iter", LinkIter),
        ("perf_event", LinkPerfEvent),
        ("kprobe_multi", LinkKprobeMulti),
        ("tracing", LinkTracing),
        ("netfilter", LinkNetfilter),
        ("tcx", LinkRelative),
        ("uprobe_multi", LinkUprobeMulti),
        ("netkit", LinkRelative),
        ("cgroup", LinkRelative),
    )


class LinkCreateAttr(ctypes.Structure):
    """``BPF_LINK_CREATE`` (``target_fd`` doubles as ``target_ifindex``)."""

    _fields_ = (
        ("prog_fd", u32),
        ("target_fd", u32),
        ("attach_type", u32),
        ("flags", u32),
        ("u", LinkCreateTail),
    )


class LinkUpdateAttr(ctypes.Structure):
    """``BPF_LINK_UPDATE``."""

    _fields_ = (
        ("link_fd", u32),
        ("new_prog_fd", u32),
        ("flags", u32),
        ("old_prog_fd", u32),
    )


class LinkDetachAttr(ctypes.Structure):
    """``BPF_LINK_DETACH``."""

    _fields_ = (("link_fd", u32),)


class EnableStatsAttr(ctypes.Structure):
    """``BPF_ENABLE_STATS``."""

    _fields_ = (("type", u32),)


class IterCreateAttr(ctypes.Structure):
    """``BPF_ITER_CREATE``."""

    _fields_ = (
        ("link_fd", u32),
        ("flags", u32),
    )


class ProgBindMapAttr(ctypes.Structure):
    """``BPF_PROG_BIND_MAP``."""

    _fields_ = (
        ("prog_fd", u32),
        ("map_fd", u32),
        ("flags", u32),
    )
