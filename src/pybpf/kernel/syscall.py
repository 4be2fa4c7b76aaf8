"""The single door to ``bpf(2)``.

Every BPF command in pybpf goes through :func:`bpf` (or :func:`bpf_fd` for commands that
create a descriptor): one place that knows the syscall number, reads ``errno`` and turns it
into a typed :class:`~pybpf.errors.KernelError` naming the command, so that no caller can
forget either.  ``perf_event_open(2)`` is the other syscall of this package; its door is here
too, for the same reasons.
"""

from __future__ import annotations

import ctypes
import errno
import platform
from typing import Final

from pybpf.abi.bpf import BpfCmd
from pybpf.errors import kernel_error

from .fd import Fd

_SYSCALL_NUMBERS: Final = {
    # machine: (bpf, perf_event_open), from arch/*/entry/syscalls and asm-generic/unistd.h
    "x86_64": (321, 298),
    "aarch64": (280, 241),
    "arm64": (280, 241),
    "riscv64": (280, 241),
    "loongarch64": (280, 241),
    "ppc64le": (361, 319),
    "s390x": (351, 331),
}

_EAGAIN_ATTEMPTS: Final = 5
"""``BPF_PROG_LOAD`` can fail with EAGAIN under memory pressure; libbpf retries 5 times."""


def _syscall_numbers() -> tuple[int, int]:
    machine = platform.machine()
    try:
        return _SYSCALL_NUMBERS[machine]
    except KeyError:
        raise NotImplementedError(f"bpf() syscall number unknown for {machine}") from None


NR_BPF, NR_PERF_EVENT_OPEN = _syscall_numbers()

_libc = ctypes.CDLL(None, use_errno=True)
# Separate function objects so each can carry its own prototype.  bpf() has none on purpose:
# ctypes' per-call argtypes conversion costs more than the syscall (≈300 of ≈700 ns), so the
# arguments are passed as ready-made ctypes objects (the syscall number as a c_long, the attr
# by reference) or as small Python ints, which libffi widens to full registers.
_sys_bpf = _libc["syscall"]
_sys_bpf.restype = ctypes.c_long
_NR_BPF_ARG = ctypes.c_long(NR_BPF)
_sys_perf = _libc["syscall"]
_sys_perf.restype = ctypes.c_long
_sys_perf.argtypes = (
    ctypes.c_long,
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_ulong,
)


def bpf_raw(cmd: int, attr: ctypes.Structure) -> tuple[int, int]:
    """Issue ``bpf(cmd, &attr, sizeof(attr))``; return ``(result, errno)`` without raising.

    For callers that must inspect errno themselves (feature probes, retries on ENOSPC).
    ``attr`` is passed with its own size: each attr structure in :mod:`.attrs` ends at the
    last field its command uses, so the kernel's tail-must-be-zero check holds on kernels
    older than our headers.
    """
    ret: int = _sys_bpf(_NR_BPF_ARG, int(cmd), ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        return ret, ctypes.get_errno()
    return ret, 0


def bpf_at(cmd: int, attr: ctypes.Array[ctypes.c_char], size: int) -> tuple[int, int]:
    """Like :func:`bpf_raw` for an attr already packed into the first ``size`` bytes of a
    pinned buffer (the per-thread fast path of map element commands)."""
    ret: int = _sys_bpf(_NR_BPF_ARG, cmd, attr, size)
    if ret < 0:
        return ret, ctypes.get_errno()
    return ret, 0


def bpf(cmd: BpfCmd, attr: ctypes.Structure, detail: str = "") -> int:
    """Issue a bpf() command; raise a :class:`~pybpf.errors.KernelError` naming it on failure."""
    ret: int = _sys_bpf(_NR_BPF_ARG, int(cmd), ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        raise kernel_error(cmd.name, ctypes.get_errno(), detail)
    return ret


def bpf_fd(cmd: BpfCmd, attr: ctypes.Structure, what: str, detail: str = "") -> Fd:
    """Issue a descriptor-creating bpf() command and return the new descriptor, owned.

    EAGAIN is retried a few times (the kernel reports it for transient allocation failures
    during program load).
    """
    err = errno.EAGAIN
    for _ in range(_EAGAIN_ATTEMPTS):
        ret: int = _sys_bpf(_NR_BPF_ARG, int(cmd), ctypes.byref(attr), ctypes.sizeof(attr))
        if ret >= 0:
            return Fd.adopt(ret, what)
        err = ctypes.get_errno()
        if err != errno.EAGAIN:
            break
    raise kernel_error(cmd.name, err, detail)


def perf_event_open(
    attr: ctypes.Structure, pid: int, cpu: int, group_fd: int, flags: int, what: str
) -> Fd:
    """``perf_event_open(2)``; failures raise a KernelError naming ``perf_event_open``."""
    ret = _sys_perf(NR_PERF_EVENT_OPEN, ctypes.byref(attr), pid, cpu, group_fd, flags)
    if ret < 0:
        raise kernel_error("perf_event_open", ctypes.get_errno(), what)
    return Fd.adopt(int(ret), what)
