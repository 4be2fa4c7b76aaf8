"""Replace the pages behind an existing mapping, keeping its address.

Skeleton accessors and ctypes views point into a global-data map's memory before the object is
loaded (an anonymous mapping holding the initial image).  libbpf keeps such pointers valid
across load by mapping the new kernel map over the very same address with ``MAP_FIXED``; this
does the same, so a Python view taken before ``load()`` reads and writes the live map after.

The reverse matters as much: when the object is closed, a Python view may still alias the
map's pages, and the ``mmap`` object under it cannot be closed while it does (``BufferError``).
:func:`retire_pages` then swaps fresh anonymous pages in at that address, so the kernel map is
released now and the stale view reads zeros instead of live map memory or unmapped memory.
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


class _PyBuffer(ctypes.Structure):
    """CPython's ``Py_buffer`` (part of the stable ABI since 3.11)."""

    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]
_release_buffer.restype = None
_PYBUF_SIMPLE = 0


def buffer_address(buffer: _mmap.mmap) -> int:
    """The address of the first byte of an ``mmap`` object, read-only ones included.

    ``ctypes.addressof(c_char.from_buffer(...))`` would refuse a read-only mapping, so this
    asks the buffer protocol directly.
    """
    view = _PyBuffer()
    _get_buffer(buffer, ctypes.byref(view), _PYBUF_SIMPLE)
    try:
        return view.buf or 0
    finally:
        _release_buffer(ctypes.byref(view))


def _map_fixed(buffer: _mmap.mmap, prot: int, flags: int, fd: int, what: str) -> None:
    length = round_up(max(len(buffer), 1), page_size())
    address = buffer_address(buffer)
    result = _libc.mmap(address, length, prot, flags | _MAP_FIXED, fd, 0)
    if result in (None, _MAP_FAILED) or result != address:
        err = ctypes.get_errno() or errno.EINVAL
        raise kernel_error(what, err, f"{length} bytes at {address:#x}")


def remap_over(buffer: _mmap.mmap, fd: FdLike, *, writable: bool = True) -> None:
    """Map the map ``fd``'s memory over ``buffer``'s pages (``MAP_SHARED | MAP_FIXED``).

    ``buffer`` keeps its Python identity, length and address; from now on its bytes are the
    kernel map's.  Its own ``close()`` unmaps the kernel map's pages.  A read-only mapping
    (``writable=False``, the only kind a frozen map allows) belongs under a read-only
    ``buffer``: Python refuses writes to that object instead of faulting on the pages.
    """
    prot = _mmap.PROT_READ | (_mmap.PROT_WRITE if writable else 0)
    _map_fixed(buffer, prot, _mmap.MAP_SHARED, raw_fd(fd), "mmap(MAP_FIXED)")


def retire_pages(buffer: _mmap.mmap) -> None:
    """Put private zero pages where ``buffer``'s are, dropping what was mapped there.

    For a mapping that cannot be closed yet because Python views still alias it: the kernel
    map goes away with its last mapping and descriptor, and those views keep valid memory
    (read and written harmlessly) until they are gone and ``buffer`` unmaps the address.
    """
    _map_fixed(
        buffer,
        _mmap.PROT_READ | _mmap.PROT_WRITE,
        _mmap.MAP_PRIVATE | _mmap.MAP_ANONYMOUS,
        -1,
        "mmap(MAP_FIXED|MAP_ANONYMOUS)",
    )
