"""Facts about the running system that BPF user space needs: CPUs, page size, kernel version.

These read sysfs/procfs/uname only (no bpf() calls) and are cached: they cannot change while
the process runs (CPU *possible* masks are fixed at boot).
"""

from __future__ import annotations

import functools
import mmap
import os
import re
from pathlib import Path

POSSIBLE_CPUS = Path("/sys/devices/system/cpu/possible")
UBUNTU_VERSION_SIGNATURE = Path("/proc/version_signature")


def parse_cpu_list(text: str) -> list[int]:
    """Parse a kernel CPU list such as ``0-3,5,7-8`` into ``[0, 1, 2, 3, 5, 7, 8]``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


@functools.cache
def possible_cpus() -> int:
    """Number of possible CPUs: the slot count of per-CPU map values (libbpf's rule)."""
    return max(parse_cpu_list(POSSIBLE_CPUS.read_text())) + 1


@functools.cache
def page_size() -> int:
    """The MMU page size: the granule of BPF map ``mmap`` and ring buffers."""
    return mmap.PAGESIZE


def round_up(value: int, align: int) -> int:
    """``value`` rounded up to a multiple of ``align``."""
    return (value + align - 1) // align * align


def percpu_value_size(value_size: int) -> int:
    """Bytes of a per-CPU map value as user space sees it: one 8-aligned slot per CPU."""
    return round_up(value_size, 8) * possible_cpus()


def kernel_version_code(major: int, minor: int, patch: int) -> int:
    """``KERNEL_VERSION(a, b, c)``; the patch level saturates at 255 as the kernel's does."""
    return (major << 16) + (minor << 8) + min(patch, 255)


def parse_kernel_version(release: str, version: str = "", signature: str = "") -> int:
    """LINUX_VERSION_CODE the way libbpf's ``get_kernel_version`` derives it.

    Ubuntu's ``/proc/version_signature`` (``Ubuntu 5.15.0-91.101-generic 5.15.131``) and
    Debian's ``uname -v`` (``... Debian 6.1.76-1 ...``) carry the upstream version the kernel
    was built from, which ``uname -r`` does not (Ubuntu) or only partially (Debian) reflect;
    kprobe programs of old kernels must pass exactly that number.  Returns 0 if unparsable.
    """
    if signature:
        fields = signature.split()
        if len(fields) >= 3:
            m = re.match(r"(\d+)\.(\d+)\.(\d+)", fields[2])
            if m:
                return kernel_version_code(*map(int, m.groups()))
    m = re.search(r"Debian (\d+)\.(\d+)\.(\d+)", version)
    if m:
        return kernel_version_code(*map(int, m.groups()))
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", release)
    if m:
        return kernel_version_code(*map(int, m.groups()))
    return 0


@functools.cache
def kernel_version() -> int:
    """The running kernel's LINUX_VERSION_CODE (``kern_version``, ``LINUX_KERNEL_VERSION``)."""
    try:
        signature = UBUNTU_VERSION_SIGNATURE.read_text()
    except OSError:
        signature = ""
    uts = os.uname()
    return parse_kernel_version(uts.release, uts.version, signature)
