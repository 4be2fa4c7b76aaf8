"""Addresses of Python buffers for the pointer fields of bpf() attrs.

The kernel reads and writes user memory through the ``__aligned_u64`` pointers of an attr.
These helpers turn Python objects into such addresses while returning the ctypes object that
owns (or pins) the memory: the caller keeps that object alive until the syscall returns, which
is the whole contract.
"""

from __future__ import annotations

import ctypes
from typing import Any

Bytes = bytes | bytearray | memoryview
"""What the kernel layer accepts as input bytes (keys, values, instructions, BTF blobs)."""


def address(data: Bytes | None) -> tuple[int, Any]:
    """``(address, keepalive)`` of read-only input bytes; ``(0, None)`` for ``None``.

    ``bytes`` are addressed in place (the kernel only reads them); writable buffers are
    pinned with ``from_buffer``; anything else (read-only memoryviews) is copied.
    """
    if data is None:
        return 0, None
    if isinstance(data, bytes):
        keep: Any = ctypes.c_char_p(data)
        return ctypes.cast(keep, ctypes.c_void_p).value or 0, keep
    view = memoryview(data)
    if not view.readonly and view.contiguous:
        keep = (ctypes.c_char * view.nbytes).from_buffer(view)
        return ctypes.addressof(keep), keep
    keep = ctypes.create_string_buffer(view.tobytes(), view.nbytes)
    return ctypes.addressof(keep), keep


def out_buffer(size: int) -> ctypes.Array[ctypes.c_char]:
    """A zeroed buffer the kernel will write into."""
    return ctypes.create_string_buffer(size)


def c_string(text: str | bytes) -> ctypes.Array[ctypes.c_char]:
    """A NUL-terminated copy of ``text`` (UTF-8) for path and name pointers."""
    raw = text.encode() if isinstance(text, str) else text
    if b"\0" in raw:
        raise ValueError(f"embedded NUL in {raw!r}")
    return ctypes.create_string_buffer(raw)


def obj_name(name: str | bytes) -> bytes:
    """``name`` truncated to fit ``char[BPF_OBJ_NAME_LEN]`` with its NUL, as libbpf does."""
    raw = name.encode() if isinstance(name, str) else name
    return raw[:15]
