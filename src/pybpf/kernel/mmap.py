"""Memory-mapping ``BPF_F_MMAPABLE`` array maps.

An mmapable array's values are laid out back to back, each rounded up to 8 bytes, so user
space reads and writes them with plain memory access: this is how skeletons expose global
variables (``.data``, ``.bss``, ``.rodata``) without a syscall per access.
"""

from __future__ import annotations

import errno
import mmap as _mmap

from pybpf.errors import kernel_error

from .fd import FdLike, raw_fd
from .remap import remap_over
from .system import page_size, round_up


def array_mmap_size(value_size: int, max_entries: int) -> int:
    """Bytes to map for an array map: 8-aligned values, whole pages (libbpf's rule)."""
    return round_up(round_up(value_size, 8) * max_entries, page_size())


def map_mmap(fd: FdLike, value_size: int, max_entries: int, *, writable: bool = True) -> _mmap.mmap:
    """Map the values of an mmapable array (``PROT_READ``, plus ``PROT_WRITE`` if writable).

    A frozen map (``.rodata`` after load) can only be mapped read-only: the kernel refuses
    writable mappings of it with EPERM.  The mapping keeps the map alive on its own; close it
    with ``.close()``.
    """
    size = array_mmap_size(value_size, max_entries)
    prot = _mmap.PROT_READ | (_mmap.PROT_WRITE if writable else 0)
    try:
        return _mmap.mmap(raw_fd(fd), size, flags=_mmap.MAP_SHARED, prot=prot)
    except OSError as exc:
        raise kernel_error("mmap", exc.errno or errno.EINVAL, f"{size} bytes") from None


def map_read_only(fd: FdLike, length: int) -> _mmap.mmap:
    """A read-only ``mmap`` object (``ACCESS_READ``) of an mmapable map's first ``length`` bytes.

    Python refuses every write to it (item assignment, writable memoryviews,
    ``ctypes.from_buffer``, ``struct.pack_into``) instead of faulting on the ``PROT_READ``
    pages, which is what a frozen map needs.  Unlike ``mmap.mmap(fd)`` it keeps no duplicate of
    the descriptor, so closing the object's descriptors and mappings releases the map.
    """
    anchor = _mmap.mmap(
        -1, max(length, 1), flags=_mmap.MAP_SHARED | _mmap.MAP_ANONYMOUS, prot=_mmap.PROT_READ
    )
    try:
        remap_over(anchor, fd, writable=False)
    except BaseException:
        anchor.close()
        raise
    return anchor
