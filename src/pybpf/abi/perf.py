"""``linux/perf_event.h``: the ``perf_event_open`` numbers BPF users need.

Spelled as in the header; pure data, like the rest of :mod:`pybpf.abi`.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class PerfType(IntEnum):
    """``enum perf_type_id``: ``perf_event_attr.type`` (dynamic PMUs read theirs from sysfs)."""

    PERF_TYPE_HARDWARE = 0
    PERF_TYPE_SOFTWARE = 1
    PERF_TYPE_TRACEPOINT = 2
    PERF_TYPE_HW_CACHE = 3
    PERF_TYPE_RAW = 4
    PERF_TYPE_BREAKPOINT = 5


class PerfSwIds(IntEnum):
    """``enum perf_sw_ids``: ``config`` of ``PERF_TYPE_SOFTWARE`` events."""

    PERF_COUNT_SW_CPU_CLOCK = 0
    PERF_COUNT_SW_TASK_CLOCK = 1
    PERF_COUNT_SW_PAGE_FAULTS = 2
    PERF_COUNT_SW_CONTEXT_SWITCHES = 3
    PERF_COUNT_SW_CPU_MIGRATIONS = 4
    PERF_COUNT_SW_PAGE_FAULTS_MIN = 5
    PERF_COUNT_SW_PAGE_FAULTS_MAJ = 6
    PERF_COUNT_SW_ALIGNMENT_FAULTS = 7
    PERF_COUNT_SW_EMULATION_FAULTS = 8
    PERF_COUNT_SW_DUMMY = 9
    PERF_COUNT_SW_BPF_OUTPUT = 10
    PERF_COUNT_SW_CGROUP_SWITCHES = 11


class PerfSampleType(IntFlag):
    """``enum perf_event_sample_format`` (the bits BPF users need)."""

    PERF_SAMPLE_IP = 1 << 0
    PERF_SAMPLE_TID = 1 << 1
    PERF_SAMPLE_TIME = 1 << 2
    PERF_SAMPLE_ADDR = 1 << 3
    PERF_SAMPLE_READ = 1 << 4
    PERF_SAMPLE_CALLCHAIN = 1 << 5
    PERF_SAMPLE_ID = 1 << 6
    PERF_SAMPLE_CPU = 1 << 7
    PERF_SAMPLE_PERIOD = 1 << 8
    PERF_SAMPLE_STREAM_ID = 1 << 9
    PERF_SAMPLE_RAW = 1 << 10


class PerfAttrFlags(IntFlag):
    """The leading bit-field word of ``struct perf_event_attr`` (``disabled``, ``inherit``...)."""

    disabled = 1 << 0
    inherit = 1 << 1
    pinned = 1 << 2
    exclusive = 1 << 3
    exclude_user = 1 << 4
    exclude_kernel = 1 << 5
    exclude_hv = 1 << 6
    exclude_idle = 1 << 7
    mmap = 1 << 8
    comm = 1 << 9
    freq = 1 << 10
    inherit_stat = 1 << 11
    enable_on_exec = 1 << 12
    task = 1 << 13
    watermark = 1 << 14
    sample_id_all = 1 << 18


PERF_FLAG_FD_CLOEXEC = 1 << 3
"""``flags`` argument of ``perf_event_open``: the new fd is close-on-exec."""
