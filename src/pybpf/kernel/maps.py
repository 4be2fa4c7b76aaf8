"""BPF map commands: create, element CRUD, batches, freeze, info.

Keys and values are raw bytes here; their meaning (and per-CPU layout) belongs to the layers
above, which pass the *user-space* value size (:func:`~pybpf.kernel.system.percpu_value_size`
for per-CPU maps).  A missing key is an ordinary outcome of lookups and deletes, so those
return ``None``/``False`` instead of raising; every other errno raises a
:class:`~pybpf.errors.KernelError` naming the command.
"""

from __future__ import annotations

import ctypes
import errno
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pybpf.abi.bpf import BpfCmd, BpfMapUpdateFlags, MapFlags, MapType, enum_name
from pybpf.errors import kernel_error

from .attrs import MapBatchAttr, MapCreateAttr, MapElemAttr
from .buffers import Bytes, address, obj_name
from .fd import Fd, FdLike, raw_fd
from .infos import BpfMapInfo, obj_get_info_by_fd
from .syscall import bpf, bpf_at, bpf_fd, bpf_raw


def map_create(
    map_type: MapType | int,
    key_size: int,
    value_size: int,
    max_entries: int,
    *,
    name: str = "",
    map_flags: MapFlags | int = 0,
    inner_map_fd: FdLike | None = None,
    numa_node: int | None = None,
    btf_fd: FdLike | None = None,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    btf_vmlinux_value_type_id: int = 0,
    map_extra: int = 0,
    map_ifindex: int = 0,
) -> Fd:
    """``BPF_MAP_CREATE``; the new map lives as long as the returned descriptor (or a pin)."""
    flags = int(map_flags)
    attr = MapCreateAttr(
        map_type=map_type,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_name=obj_name(name),
        map_ifindex=map_ifindex,
        btf_key_type_id=btf_key_type_id,
        btf_value_type_id=btf_value_type_id,
        btf_vmlinux_value_type_id=btf_vmlinux_value_type_id,
        map_extra=map_extra,
    )
    if inner_map_fd is not None:
        attr.inner_map_fd = raw_fd(inner_map_fd)
    if numa_node is not None:
        attr.numa_node = numa_node
        flags |= MapFlags.BPF_F_NUMA_NODE
    if btf_fd is not None:
        attr.btf_fd = raw_fd(btf_fd)
    attr.map_flags = flags
    what = f"map {name!r}" if name else "map"
    return bpf_fd(BpfCmd.BPF_MAP_CREATE, attr, what, detail=_describe(map_type, name))


def _describe(map_type: MapType | int, name: str) -> str:
    kind = enum_name(MapType, map_type)
    return f"{kind} {name!r}" if name else kind


# --- elements ------------------------------------------------------------------------------
#
# Element commands are the hot path (a skeleton's map access, a profiler's drain loop), and
# building ctypes objects per call costs more than the syscall.  So each thread owns one
# pinned scratch buffer holding the attr, the key and the value side by side: a call is two
# slice copies, one struct.pack_into and the syscall.  Keys or values too large for the
# scratch take the plain path.

_ELEM_ATTR = struct.Struct("<I4xQQQ")  # MapElemAttr: map_fd, key, value, flags
assert _ELEM_ATTR.size == ctypes.sizeof(MapElemAttr)
_SCRATCH_SIZE = 8192
_KEY_OFF = 64
_KEY_MAX = 512
_VALUE_OFF = _KEY_OFF + _KEY_MAX
_VALUE_MAX = _SCRATCH_SIZE - _VALUE_OFF


class _Scratch:
    """Pinned memory for one element command at a time."""

    __slots__ = ("addr", "buf", "pinned", "view")

    def __init__(self) -> None:
        self.buf = bytearray(_SCRATCH_SIZE)
        self.view = memoryview(self.buf)
        self.pinned = (ctypes.c_char * _SCRATCH_SIZE).from_buffer(self.buf)
        self.addr = ctypes.addressof(self.pinned)


_pool: list[_Scratch] = []
"""Idle scratch buffers.  ``list.pop``/``append`` are atomic, so each call (of any thread,
or a signal handler interrupting a call) owns the buffer it popped."""


def _elem(
    cmd: BpfCmd,
    fd: FdLike,
    key: Bytes | None,
    value: Bytes | None,
    out_size: int,
    flags: int,
) -> tuple[int, bytes]:
    """Run an element command; return ``(errno or 0, first out_size bytes of the value)``.

    ``value`` is copied in (update, bloom lookup), ``out_size`` bytes are copied out.
    """
    if type(key) is memoryview:
        key = key.tobytes()  # len() of a memoryview counts items, not bytes
    if type(value) is memoryview:
        value = value.tobytes()
    key_len = len(key) if key is not None else 0
    value_len = len(value) if value is not None else 0
    if key_len > _KEY_MAX or value_len > _VALUE_MAX or out_size > _VALUE_MAX:
        return _elem_unpinned(cmd, fd, key, value, out_size, flags)
    try:
        s = _pool.pop()
    except IndexError:
        s = _Scratch()
    try:
        view, addr = s.view, s.addr
        key_addr = value_addr = 0
        if key is not None:
            view[_KEY_OFF : _KEY_OFF + key_len] = key
            key_addr = addr + _KEY_OFF
        if value is not None:
            view[_VALUE_OFF : _VALUE_OFF + value_len] = value
            value_addr = addr + _VALUE_OFF
        elif out_size:
            value_addr = addr + _VALUE_OFF
        _ELEM_ATTR.pack_into(
            s.buf, 0, fd if isinstance(fd, int) else fd.fileno(), key_addr, value_addr, flags
        )
        ret, err = bpf_at(cmd, s.pinned, _ELEM_ATTR.size)
        if ret < 0:
            return err, b""
        return 0, view[_VALUE_OFF : _VALUE_OFF + out_size].tobytes() if out_size else b""
    finally:
        _pool.append(s)


def _elem_unpinned(
    cmd: BpfCmd,
    fd: FdLike,
    key: bytes | bytearray | None,
    value: bytes | bytearray | None,
    out_size: int,
    flags: int,
) -> tuple[int, bytes]:
    key_addr, key_keep = address(key)
    io = ctypes.create_string_buffer(bytes(value or b""), max(out_size, len(value or b"")))
    value_addr = ctypes.addressof(io) if value is not None or out_size else 0
    attr = MapElemAttr(map_fd=raw_fd(fd), key=key_addr, value=value_addr, flags=flags)
    ret, err = bpf_raw(cmd, attr)
    del key_keep
    if ret < 0:
        return err, b""
    return 0, io.raw[:out_size]


def _check(cmd: BpfCmd, err: int) -> bool:
    """True if the element was found; raise for errors other than ENOENT."""
    if err == 0:
        return True
    if err == errno.ENOENT:
        return False
    raise kernel_error(cmd.name, err)


def map_lookup_elem(
    fd: FdLike, key: Bytes | None, value_size: int, flags: BpfMapUpdateFlags | int = 0
) -> bytes | None:
    """The value at ``key``, or ``None`` if absent (``key=None`` peeks a queue/stack)."""
    cmd = BpfCmd.BPF_MAP_LOOKUP_ELEM
    err, out = _elem(cmd, fd, key, None, value_size, flags)
    return out if _check(cmd, err) else None


def map_lookup_elem_into(
    fd: FdLike, key: Bytes | None, value: bytearray | memoryview, flags: int = 0
) -> bool:
    """Look ``key`` up into a caller's writable buffer; False if absent.

    The buffer is also *input* for maps whose lookup takes a value, such as a bloom filter
    (``key=None``, value = the candidate): True then means 'possibly present'.
    """
    view = memoryview(value).cast("B")
    cmd = BpfCmd.BPF_MAP_LOOKUP_ELEM
    err, out = _elem(cmd, fd, key, view, view.nbytes, flags)
    if not _check(cmd, err):
        return False
    view[:] = out
    return True


def map_update_elem(
    fd: FdLike,
    key: Bytes | None,
    value: Bytes,
    flags: BpfMapUpdateFlags | int = BpfMapUpdateFlags.BPF_ANY,
) -> None:
    """Create or replace the value at ``key`` (``key=None`` pushes to a queue/stack/bloom).

    ``flags`` is ``BPF_ANY``, ``BPF_NOEXIST`` (EEXIST if present) or ``BPF_EXIST`` (ENOENT
    if absent, raised as an error here since the caller demanded presence), optionally with
    ``BPF_F_LOCK``.
    """
    cmd = BpfCmd.BPF_MAP_UPDATE_ELEM
    err, _ = _elem(cmd, fd, key, value, 0, flags)
    if err:
        raise kernel_error(cmd.name, err)


def map_delete_elem(fd: FdLike, key: Bytes) -> bool:
    """Delete ``key``; False if it was not there."""
    cmd = BpfCmd.BPF_MAP_DELETE_ELEM
    return _check(cmd, _elem(cmd, fd, key, None, 0, 0)[0])


def map_lookup_and_delete_elem(
    fd: FdLike, key: Bytes | None, value_size: int, flags: int = 0
) -> bytes | None:
    """Pop: the value at ``key`` (or the head of a queue/stack for ``None``), then delete it."""
    cmd = BpfCmd.BPF_MAP_LOOKUP_AND_DELETE_ELEM
    err, out = _elem(cmd, fd, key, None, value_size, flags)
    return out if _check(cmd, err) else None


def map_get_next_key(fd: FdLike, key: Bytes | None, key_size: int) -> bytes | None:
    """The key after ``key`` (the first key for ``None``); ``None`` past the last one."""
    cmd = BpfCmd.BPF_MAP_GET_NEXT_KEY
    err, out = _elem(cmd, fd, key, None, key_size, 0)
    return out if _check(cmd, err) else None


def map_keys(fd: FdLike, key_size: int) -> Iterator[bytes]:
    """Iterate over the keys with ``BPF_MAP_GET_NEXT_KEY``.

    Concurrent deletes may restart a hash map walk from the beginning (kernel semantics);
    use the batch commands for a consistent snapshot.
    """
    key = map_get_next_key(fd, None, key_size)
    while key is not None:
        yield key
        key = map_get_next_key(fd, key, key_size)


def map_freeze(fd: FdLike) -> None:
    """``BPF_MAP_FREEZE``: user space may no longer write the map (programs still may)."""
    bpf(BpfCmd.BPF_MAP_FREEZE, MapElemAttr(map_fd=raw_fd(fd)))


# --- batches -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One ``BPF_MAP_LOOKUP[_AND_DELETE]_BATCH`` step.

    ``next_batch`` is the opaque token to pass as ``in_batch`` for the following step, or
    ``None`` once the map has been walked to its end.
    """

    keys: list[bytes]
    values: list[bytes]
    next_batch: bytes | None


def _token_size(key_size: int) -> int:
    # Hash maps use a u32 bucket index as the token, arrays a key: cover both.
    return max(key_size, 8)


def _lookup_batch(
    cmd: BpfCmd,
    fd: FdLike,
    key_size: int,
    value_size: int,
    count: int,
    in_batch: bytes | None,
    elem_flags: int,
) -> BatchResult:
    if count <= 0:
        raise ValueError("batch count must be positive")
    keys = ctypes.create_string_buffer(key_size * count)
    values = ctypes.create_string_buffer(value_size * count)
    token = ctypes.create_string_buffer(_token_size(key_size))
    in_addr, in_keep = address(in_batch)
    attr = MapBatchAttr(
        in_batch=in_addr,
        out_batch=ctypes.addressof(token),
        keys=ctypes.addressof(keys),
        values=ctypes.addressof(values),
        count=count,
        map_fd=raw_fd(fd),
        elem_flags=elem_flags,
    )
    ret, err = bpf_raw(cmd, attr)
    del in_keep
    if ret < 0 and err != errno.ENOENT:
        raise kernel_error(cmd.name, err)
    n = attr.count
    raw_keys, raw_values = keys.raw, values.raw
    return BatchResult(
        keys=[raw_keys[i * key_size : (i + 1) * key_size] for i in range(n)],
        values=[raw_values[i * value_size : (i + 1) * value_size] for i in range(n)],
        next_batch=None if ret < 0 else token.raw,
    )


def map_lookup_batch(
    fd: FdLike,
    key_size: int,
    value_size: int,
    count: int,
    in_batch: bytes | None = None,
    *,
    elem_flags: int = 0,
) -> BatchResult:
    """Up to ``count`` entries starting at ``in_batch`` (the beginning for ``None``).

    Hash maps copy whole buckets: a ``count`` smaller than a bucket raises ENOSPC.
    """
    return _lookup_batch(
        BpfCmd.BPF_MAP_LOOKUP_BATCH, fd, key_size, value_size, count, in_batch, elem_flags
    )


def map_lookup_and_delete_batch(
    fd: FdLike,
    key_size: int,
    value_size: int,
    count: int,
    in_batch: bytes | None = None,
    *,
    elem_flags: int = 0,
) -> BatchResult:
    """Like :func:`map_lookup_batch`, deleting what it returns (not for arrays)."""
    return _lookup_batch(
        BpfCmd.BPF_MAP_LOOKUP_AND_DELETE_BATCH,
        fd,
        key_size,
        value_size,
        count,
        in_batch,
        elem_flags,
    )


def map_lookup_all(
    fd: FdLike, key_size: int, value_size: int, chunk: int = 256
) -> Iterator[tuple[bytes, bytes]]:
    """Every ``(key, value)`` of the map, fetched ``chunk`` entries per syscall."""
    token: bytes | None = None
    while True:
        step = map_lookup_batch(fd, key_size, value_size, chunk, token)
        yield from zip(step.keys, step.values, strict=True)
        if step.next_batch is None:
            return
        token = step.next_batch


def _joined(items: Sequence[Bytes], size: int, what: str) -> bytes:
    blob = b"".join(bytes(item) for item in items)
    if len(blob) != size * len(items):
        raise ValueError(f"every {what} must be {size} bytes")
    return blob


def map_update_batch(
    fd: FdLike,
    keys: Sequence[Bytes],
    values: Sequence[Bytes],
    *,
    elem_flags: BpfMapUpdateFlags | int = 0,
) -> int:
    """Write ``keys[i] -> values[i]`` in one syscall; returns how many were written.

    On failure the error is raised; entries before the failing one have been written.
    """
    if len(keys) != len(values):
        raise ValueError("keys and values differ in length")
    if not keys:
        return 0
    key_blob = _joined(keys, len(keys[0]), "key")
    value_blob = _joined(values, len(values[0]), "value")
    attr = MapBatchAttr(
        keys=ctypes.cast(ctypes.c_char_p(key_blob), ctypes.c_void_p).value,
        values=ctypes.cast(ctypes.c_char_p(value_blob), ctypes.c_void_p).value,
        count=len(keys),
        map_fd=raw_fd(fd),
        elem_flags=elem_flags,
    )
    bpf(BpfCmd.BPF_MAP_UPDATE_BATCH, attr)
    del key_blob, value_blob
    return int(attr.count)


def map_delete_batch(fd: FdLike, keys: Sequence[Bytes], *, elem_flags: int = 0) -> int:
    """Delete ``keys`` in one syscall; returns how many were deleted (ENOENT raises)."""
    if not keys:
        return 0
    key_blob = _joined(keys, len(keys[0]), "key")
    attr = MapBatchAttr(
        keys=ctypes.cast(ctypes.c_char_p(key_blob), ctypes.c_void_p).value,
        count=len(keys),
        map_fd=raw_fd(fd),
        elem_flags=elem_flags,
    )
    bpf(BpfCmd.BPF_MAP_DELETE_BATCH, attr)
    del key_blob
    return int(attr.count)


# --- info ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MapInfo:
    """What the kernel reports about a map (``struct bpf_map_info``)."""

    type: int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    name: str
    ifindex: int
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    btf_vmlinux_value_type_id: int
    map_extra: int

    @property
    def map_type(self) -> MapType | int:
        """``type`` as a :class:`MapType` when this library knows the number."""
        try:
            return MapType(self.type)
        except ValueError:
            return self.type


def map_get_info_by_fd(fd: FdLike) -> MapInfo:
    """``BPF_OBJ_GET_INFO_BY_FD`` for a map."""
    info = obj_get_info_by_fd(fd, BpfMapInfo())
    return MapInfo(
        type=info.type,
        id=info.id,
        key_size=info.key_size,
        value_size=info.value_size,
        max_entries=info.max_entries,
        map_flags=info.map_flags,
        name=info.name.decode(errors="replace"),
        ifindex=info.ifindex,
        btf_id=info.btf_id,
        btf_key_type_id=info.btf_key_type_id,
        btf_value_type_id=info.btf_value_type_id,
        btf_vmlinux_value_type_id=info.btf_vmlinux_value_type_id,
        map_extra=info.map_extra,
    )
