"""Replace the pages behind an existing mapping with a BPF map's, at the same address.

Skeleton accessors and ctypes views point into a global-data map's memory before the object is
loaded (an anonymous mapping holding the initial image).  libbpf keeps such pointers valid
across load by mapping the new kernel map over the very same address with ``MAP_FIXED``; this
does the same, so a Python view taken before ``load()`` reads and writes the live map after.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap as _mmap

from pybpf.errors import kernel_error

from .fd import FdLike, raw_fd
from .system import page_size, round_up

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_MAP_FAILED = ctypes.c_void_p(-1).value
_MAP_FIXED = getattr(_mmap, "MAP_FIXED", 0x10)


def buffer_address(buffer: _mmap.mmap) -> int:
    """The address of the first byte of an ``mmap`` object."""
    anchor = ctypes.c_char.from_buffer(buffer)
    try:
        return ctypes.addressof(anchor)
    finally:
        del anchor


def remap_over(buffer: _mmap.mmap, fd: FdLike, *, writable: bool = True) -> None:
    """Map the map ``fd``'s memory over ``buffer``'s pages (``MAP_SHARED | MAP_FIXED``).

    ``buffer`` keeps its Python identity, length and address; from now on its bytes are the
    kernel map's.  Its own ``close()`` unmaps the kernel map's pages.
    """
    length = round_up(max(len(buffer), 1), page_size())
    prot = _mmap.PROT_READ | (_mmap.PROT_WRITE if writable else 0)
    address = buffer_address(buffer)
    result = _libc.mmap(
        address, length, prot, _mmap.MAP_SHARED | _MAP_FIXED, raw_fd(fd), 0
    )
    if result in (None, _MAP_FAILED) or result != address:
        err = ctypes.get_errno() or errno.EINVAL
        raise kernel_error("mmap(MAP_FIXED)", err, f"{length} bytes at {address:#x}")

