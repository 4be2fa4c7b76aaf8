"""The two pseudo file systems BPF user space depends on: bpffs and tracefs.

Neither is guaranteed to be mounted (this project's CI machine boots without tracefs), and
pinning or tracepoint attachment fails confusingly without them; these helpers check
``/proc/self/mounts`` and mount them when missing, which needs root.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from pybpf.errors import kernel_error

BPFFS = Path("/sys/fs/bpf")
TRACEFS = Path("/sys/kernel/tracing")
_LEGACY_TRACEFS = Path("/sys/kernel/debug/tracing")
MOUNTS = Path("/proc/self/mounts")

_libc = ctypes.CDLL(None, use_errno=True)
_mount = _libc.mount
_mount.restype = ctypes.c_int
_mount.argtypes = (
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
)


def mounted_fs(path: Path) -> str | None:
    """The file-system type mounted exactly at ``path``, or None."""
    target = str(path)
    found: str | None = None
    for line in MOUNTS.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == target:
            found = fields[2]  # the last mount on a path wins
    return found


def mount(fstype: str, target: Path) -> None:
    """``mount -t fstype fstype target``; raises KernelError('mount', errno)."""
    if _mount(fstype.encode(), str(target).encode(), fstype.encode(), 0, None) != 0:
        raise kernel_error("mount", ctypes.get_errno(), f"{fstype} on {target}")


def ensure_bpffs(path: Path = BPFFS) -> Path:
    """A bpffs mount at ``path`` (default ``/sys/fs/bpf``), mounting one if needed."""
    if mounted_fs(path) != "bpf":
        path.mkdir(parents=True, exist_ok=True)
        mount("bpf", path)
    return path


def ensure_tracefs() -> Path:
    """The tracefs root (``/sys/kernel/tracing``), mounting tracefs if needed."""
    if mounted_fs(TRACEFS) == "tracefs":
        return TRACEFS
    if mounted_fs(_LEGACY_TRACEFS) == "tracefs":
        return _LEGACY_TRACEFS
    mount("tracefs", TRACEFS)
    return TRACEFS
