"""Keys and values from Python to map bytes and back.

The kernel sees keys and values as fixed-size byte strings.  Users hold ints, ``bytes`` and
ctypes structures; accepting all three (and checking the size *before* the syscall, with a
message naming the map) saves every caller its own ``struct.pack``.  Per-CPU maps are the
odd ones: user space reads and writes one 8-byte-aligned slot per *possible* CPU at once,
which is exposed as a list with one entry per CPU.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from pybpf.btf.value_codec import int_bytes
from pybpf.kernel.system import possible_cpus, round_up

if TYPE_CHECKING:
    CValue: TypeAlias = (
        ctypes._SimpleCData[Any] | ctypes.Structure | ctypes.Union | ctypes.Array[Any]
    )
    MapValue: TypeAlias = bytes | bytearray | memoryview | int | CValue
    """What map methods accept as a key or a value."""


def to_bytes(value: object, size: int, what: str) -> bytes:
    """``value`` as exactly ``size`` bytes; ints are little-endian (negative: two's complement)."""
    if type(value) is bytes and len(value) == size:  # the hot path: no conversion at all
        return value
    if isinstance(value, bool | int):
        if size > 8:
            raise TypeError(f"{what}: an int cannot fill {size} bytes; pass bytes")
        return int_bytes(int(value), size, None, what)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    elif isinstance(value, ctypes._SimpleCData | ctypes.Structure | ctypes.Union | ctypes.Array):
        raw = bytes(memoryview(value).cast("B"))
    else:
        kind = type(value).__name__
        raise TypeError(f"{what}: expected bytes, int or a ctypes value, not {kind}")
    if len(raw) != size:
        raise ValueError(f"{what}: {len(raw)} bytes given, the map wants {size}")
    return raw


def percpu_slot(value_size: int) -> int:
    """Bytes per CPU in a per-CPU value as user space sees it."""
    return round_up(value_size, 8)


def percpu_to_bytes(values: object, value_size: int, what: str) -> bytes:
    """One value per possible CPU (a sequence), or an already packed blob, as the kernel's blob."""
    slot = percpu_slot(value_size)
    ncpus = possible_cpus()
    if isinstance(values, bytes | bytearray | memoryview) and len(values) == slot * ncpus:
        return bytes(values)
    if not isinstance(values, Sequence) or isinstance(values, bytes | bytearray | str):
        raise TypeError(f"{what}: a per-CPU value is a sequence of {ncpus} values, one per CPU")
    if len(values) != ncpus:
        raise ValueError(f"{what}: {len(values)} per-CPU values given, {ncpus} CPUs are possible")
    return b"".join(to_bytes(v, value_size, what).ljust(slot, b"\0") for v in values)


def percpu_from_bytes(blob: bytes, value_size: int) -> list[bytes]:
    """Split a per-CPU blob into one ``value_size`` entry per possible CPU."""
    slot = percpu_slot(value_size)
    return [blob[i * slot : i * slot + value_size] for i in range(len(blob) // slot)]
