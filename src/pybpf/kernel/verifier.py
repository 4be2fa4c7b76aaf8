"""Loads that talk back: ``BPF_PROG_LOAD`` and ``BPF_BTF_LOAD`` with their verifier logs.

Both commands share libbpf's log policy, implemented once here:

* with ``log_level == 0`` load without a log first (a log costs the verifier time), and only
  on failure load again with ``log_level = 1`` to capture why;
* when the kernel says ENOSPC the log buffer was too small (since Linux 6.4 it also says how
  big it must be, ``log_true_size``): grow the buffer and load again, up to a cap.

Failures raise :class:`ProgLoadError` / :class:`BtfLoadError`, which are at once a
:class:`~pybpf.errors.LoadError` (carrying the log) and a
:class:`~pybpf.errors.KernelError` (carrying command and errno); EPERM (and, for BTF,
EACCES) and EOPNOTSUPP pick the matching :class:`~pybpf.errors.PermissionDeniedError` /
:class:`~pybpf.errors.NotSupportedError` flavour so that ``except`` clauses written against
either tree work.  The errno table is :func:`pybpf.errors.kernel_error`'s, with the load
families :data:`~pybpf.errors.PROG_LOAD_ERRORS` and :data:`~pybpf.errors.BTF_LOAD_ERRORS`.
"""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Callable
from typing import Final, NamedTuple

from pybpf.abi.bpf import BpfCmd
from pybpf.errors import BtfLoadError as BtfLoadError
from pybpf.errors import BtfLoadNotSupportedError as BtfLoadNotSupportedError
from pybpf.errors import BtfLoadPermissionError as BtfLoadPermissionError
from pybpf.errors import ProgLoadError as ProgLoadError
from pybpf.errors import ProgLoadNotSupportedError as ProgLoadNotSupportedError
from pybpf.errors import ProgLoadPermissionError as ProgLoadPermissionError

from .fd import Fd
from .syscall import bpf_raw

DEFAULT_LOG_SIZE: Final = 64 * 1024
"""First log buffer size; most verifier failures fit."""
MAX_LOG_SIZE: Final = 0xFFFFFFFF >> 8
"""Largest buffer we grow to (16 MiB, libbpf's cap; the kernel allows up to 1 GiB)."""
_EAGAIN_ATTEMPTS: Final = 5


class Loaded(NamedTuple):
    """A loaded object and the log the kernel produced (empty when none was asked for)."""

    fd: Fd
    log: str


class LogFields(NamedTuple):
    """How to reach the log fields of one attr type."""

    set_log: Callable[[ctypes.Structure, int, int, int], None]
    """(attr, buffer address, size, level) -> None."""
    true_size: Callable[[ctypes.Structure], int]
    """attr -> size the kernel says the full log needs (0 before Linux 6.4)."""


def _attempt(cmd: BpfCmd, attr: ctypes.Structure) -> tuple[int, int]:
    for _ in range(_EAGAIN_ATTEMPTS):
        ret, err = bpf_raw(cmd, attr)
        if err != errno.EAGAIN:
            break
    return ret, err


def load_with_log(
    cmd: BpfCmd,
    attr: ctypes.Structure,
    fields: LogFields,
    *,
    log_level: int,
    log_size: int,
) -> tuple[int, int, str]:
    """Run a load command under the log policy above.

    Returns ``(fd or -1, errno, log)``; the caller adopts the fd or raises its own error.
    """
    if log_level == 0:
        ret, err = _attempt(cmd, attr)
        if ret >= 0:
            return ret, 0, ""
    level = max(log_level, 1)
    size = min(max(log_size, 128), MAX_LOG_SIZE)  # the kernel rejects logs under 128 bytes
    while True:
        buf = ctypes.create_string_buffer(size)
        fields.set_log(attr, ctypes.addressof(buf), size, level)
        ret, err = _attempt(cmd, attr)
        fields.set_log(attr, 0, 0, 0)
        log = buf.value.decode(errors="replace")
        if err != errno.ENOSPC or size >= MAX_LOG_SIZE:
            return ret, err, log
        needed = fields.true_size(attr)
        size = min(MAX_LOG_SIZE, needed if needed > size else size * 4)
