"""perf events as BPF attach points: tracepoints, uprobes, kprobes, software events.

A tracing program attaches to a perf event either through ``BPF_LINK_CREATE`` with
``BPF_PERF_EVENT`` (:func:`pybpf.kernel.links.link_create_perf_event`, which also carries a
``bpf_cookie``) or through the older ``PERF_EVENT_IOC_SET_BPF`` ioctl (:func:`perf_event_set_bpf`).
Probes are created through the dynamic ``uprobe``/``kprobe`` PMUs (no tracefs text files to
clean up afterwards); tracepoints need their numeric id from tracefs.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
from pathlib import Path

from pybpf.abi.perf import PERF_FLAG_FD_CLOEXEC, PerfAttrFlags, PerfSampleType, PerfSwIds, PerfType
from pybpf.errors import NotSupportedError, kernel_error

from .buffers import c_string
from .fd import Fd, FdLike, raw_fd
from .fs import ensure_tracefs
from .syscall import perf_event_open

__all__ = [
    "PERF_EVENT_IOC_DISABLE",
    "PERF_EVENT_IOC_ENABLE",
    "PERF_EVENT_IOC_SET_BPF",
    "PerfEventAttr",
    "ensure_tracefs",
    "perf_event_disable",
    "perf_event_enable",
    "perf_event_open_bpf_output",
    "perf_event_open_cpu_clock",
    "perf_event_open_kprobe",
    "perf_event_open_software",
    "perf_event_open_tracepoint",
    "perf_event_open_uprobe",
    "perf_event_set_bpf",
    "pmu_type",
    "tracepoint_id",
]

PMU_DEVICES = Path("/sys/bus/event_source/devices")
PERF_ATTR_SIZE_VER7 = 128

# _IO('$', n) and _IOW('$', 8, __u32), from linux/perf_event.h and asm-generic/ioctl.h.
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_SET_BPF = 0x40042408


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` (``PERF_ATTR_SIZE_VER7``).

    The bit-field word (``disabled``, ``inherit``, ...) is the single ``flags`` field here,
    built from :class:`~pybpf.abi.perf.PerfAttrFlags`.  ``config1``/``config2`` are
    also ``uprobe_path``/``kprobe_func`` and ``probe_offset``/``kprobe_addr`` in the uapi.
    """

    _fields_ = (
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),  # or sample_freq
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32),  # or wakeup_watermark
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
        ("config2", ctypes.c_uint64),
        ("branch_sample_type", ctypes.c_uint64),
        ("sample_regs_user", ctypes.c_uint64),
        ("sample_stack_user", ctypes.c_uint32),
        ("clockid", ctypes.c_int32),
        ("sample_regs_intr", ctypes.c_uint64),
        ("aux_watermark", ctypes.c_uint32),
        ("sample_max_stack", ctypes.c_uint16),
        ("_reserved_2", ctypes.c_uint16),
        ("aux_sample_size", ctypes.c_uint32),
        ("_reserved_3", ctypes.c_uint32),
        ("sig_data", ctypes.c_uint64),
    )


assert ctypes.sizeof(PerfEventAttr) == PERF_ATTR_SIZE_VER7


def _open(attr: PerfEventAttr, pid: int, cpu: int, what: str) -> Fd:
    attr.size = ctypes.sizeof(attr)
    return perf_event_open(attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC, what)


# --- tracepoints ---------------------------------------------------------------------------


def tracepoint_id(category: str, name: str) -> int:
    """The numeric id of tracepoint ``category:name`` (``events/<cat>/<name>/id``).

    Mounts tracefs when it is missing; an unknown tracepoint raises ``KernelError`` ENOENT.
    """
    if "/" in category or "/" in name or category.startswith(".") or name.startswith("."):
        raise ValueError(f"bad tracepoint name {category}:{name}")
    path = ensure_tracefs() / "events" / category / name / "id"
    try:
        return int(path.read_text())
    except FileNotFoundError:
        raise kernel_error(
            "tracepoint_id", errno.ENOENT, f"no tracepoint {category}:{name}"
        ) from None
    except OSError as exc:
        raise kernel_error("tracepoint_id", exc.errno or errno.EIO, str(path)) from exc


def perf_event_open_tracepoint(category: str, name: str, *, pid: int = -1, cpu: int = 0) -> Fd:
    """A perf event on a tracepoint; ``pid=-1, cpu=0`` observes every task (as libbpf)."""
    attr = PerfEventAttr(
        type=PerfType.PERF_TYPE_TRACEPOINT,
        config=tracepoint_id(category, name),
        sample_period=1,
        wakeup_events=1,
    )
    return _open(attr, pid, cpu, f"tracepoint {category}:{name}")


# --- dynamic PMUs: uprobe / kprobe ---------------------------------------------------------


def pmu_type(pmu: str) -> int:
    """``perf_event_attr.type`` of a dynamic PMU; NotSupportedError when the kernel lacks it."""
    try:
        return int((PMU_DEVICES / pmu / "type").read_text())
    except FileNotFoundError:
        raise NotSupportedError(
            "perf_event_open", errno.EOPNOTSUPP, f"no {pmu} PMU in {PMU_DEVICES}"
        ) from None


def _format_shift(pmu: str, field: str) -> int:
    """First bit of ``field`` in ``config``, from ``format/<field>`` (``config:32-63``)."""
    text = (PMU_DEVICES / pmu / "format" / field).read_text().strip()
    where, _, bits = text.partition(":")
    if where != "config":
        raise NotSupportedError("perf_event_open", errno.EOPNOTSUPP, f"{pmu} {field}: {text}")
    return int(bits.split("-")[0])


def perf_event_open_uprobe(
    path: str,
    offset: int,
    *,
    retprobe: bool = False,
    pid: int = -1,
    ref_ctr_offset: int = 0,
) -> Fd:
    """A u(ret)probe at file ``offset`` of the ELF file ``path``, for ``pid`` or everyone.

    ``offset`` is a file offset, not a virtual address (see the ELF program headers).
    """
    pmu = "uprobe"
    config = 0
    if retprobe:
        config |= 1 << _format_shift(pmu, "retprobe")
    if ref_ctr_offset:
        config |= ref_ctr_offset << _format_shift(pmu, "ref_ctr_offset")
    name = c_string(path)
    attr = PerfEventAttr(
        type=pmu_type(pmu),
        config=config,
        config1=ctypes.addressof(name),
        config2=offset,
        sample_period=1,
        wakeup_events=1,
    )
    kind = "uretprobe" if retprobe else "uprobe"
    return _open(attr, pid, 0 if pid == -1 else -1, f"{kind} {path}+{offset:#x}")


def perf_event_open_kprobe(
    func: str | None, offset: int = 0, *, retprobe: bool = False, addr: int = 0
) -> Fd:
    """A k(ret)probe on ``func+offset`` (or on the raw ``addr`` when ``func`` is None)."""
    pmu = "kprobe"
    kind = pmu_type(pmu)
    config = 1 << _format_shift(pmu, "retprobe") if retprobe else 0
    name = c_string(func) if func is not None else None
    attr = PerfEventAttr(
        type=kind,
        config=config,
        config1=ctypes.addressof(name) if name is not None else 0,
        config2=offset if name is not None else addr,
        sample_period=1,
        wakeup_events=1,
    )
    where = f"{func}+{offset:#x}" if func is not None else f"{addr:#x}"
    return _open(attr, -1, 0, f"{'kretprobe' if retprobe else 'kprobe'} {where}")


# --- software events -----------------------------------------------------------------------


def perf_event_open_software(
    config: PerfSwIds | int,
    *,
    cpu: int,
    pid: int = -1,
    sample_period: int = 1,
    sample_type: PerfSampleType | int = 0,
    freq: bool = False,
    flags: PerfAttrFlags | int = 0,
) -> Fd:
    """A ``PERF_TYPE_SOFTWARE`` event (``sample_period`` is a frequency when ``freq``)."""
    attr = PerfEventAttr(
        type=PerfType.PERF_TYPE_SOFTWARE,
        config=config,
        sample_period=sample_period,
        sample_type=sample_type,
        flags=int(flags) | (PerfAttrFlags.freq if freq else 0),
        wakeup_events=1,
    )
    return _open(attr, pid, cpu, f"{PerfSwIds(config).name} cpu {cpu}")


def perf_event_open_bpf_output(cpu: int) -> Fd:
    """The per-CPU event a ``PERF_EVENT_ARRAY`` slot needs for ``bpf_perf_event_output``."""
    return perf_event_open_software(
        PerfSwIds.PERF_COUNT_SW_BPF_OUTPUT, cpu=cpu, sample_type=PerfSampleType.PERF_SAMPLE_RAW
    )


def perf_event_open_cpu_clock(cpu: int, *, frequency: int = 0, period_ns: int = 0) -> Fd:
    """A cpu-clock sampling event for PERF_EVENT programs (profilers): by Hz or by period."""
    if (frequency > 0) == (period_ns > 0):
        raise ValueError("give exactly one of frequency and period_ns")
    return perf_event_open_software(
        PerfSwIds.PERF_COUNT_SW_CPU_CLOCK,
        cpu=cpu,
        sample_period=frequency or period_ns,
        freq=frequency > 0,
    )


# --- ioctls --------------------------------------------------------------------------------


def _ioctl(fd: FdLike, request: int, arg: int, name: str) -> None:
    try:
        fcntl.ioctl(raw_fd(fd), request, arg)
    except OSError as exc:
        raise kernel_error(f"ioctl({name})", exc.errno or errno.EIO) from None


def perf_event_set_bpf(perf_fd: FdLike, prog_fd: FdLike) -> None:
    """Legacy attach: run ``prog_fd`` on ``perf_fd`` events until the perf fd is closed."""
    _ioctl(perf_fd, PERF_EVENT_IOC_SET_BPF, raw_fd(prog_fd), "PERF_EVENT_IOC_SET_BPF")


def perf_event_enable(perf_fd: FdLike) -> None:
    """``PERF_EVENT_IOC_ENABLE``."""
    _ioctl(perf_fd, PERF_EVENT_IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE")


def perf_event_disable(perf_fd: FdLike) -> None:
    """``PERF_EVENT_IOC_DISABLE``."""
    _ioctl(perf_fd, PERF_EVENT_IOC_DISABLE, 0, "PERF_EVENT_IOC_DISABLE")
