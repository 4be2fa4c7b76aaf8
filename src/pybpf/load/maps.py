"""Maps in the kernel: creating them from specs, and reading and writing them from Python.

Creation follows libbpf's ``bpf_object__create_map``: BTF key/value type ids when the object
has BTF (dropped for map types whose kernel side rejects them, and retried without BTF
when the kernel refuses), an inner map created only as a template for map-in-map types and
closed right after, ring buffer sizes rounded to a power-of-two number of pages, perf event
arrays sized to the possible CPUs.  Global-data maps get their section image, ``.rodata``
and ``.kconfig`` are frozen, and mmapable ones are memory-mapped so user space reads and
writes the program's variables directly.
"""

from __future__ import annotations

import errno
import mmap as _mmap
from collections.abc import Callable, Iterator, Sequence

from pybpf.abi.bpf import MapFlags, MapType
from pybpf.errors import KernelError, LoadError
from pybpf.kernel import maps as kmaps
from pybpf.kernel.fd import Fd
from pybpf.kernel.mmap import map_mmap
from pybpf.kernel.system import page_size, possible_cpus
from pybpf.load.map_codec import percpu_from_bytes, percpu_slot, percpu_to_bytes, to_bytes
from pybpf.obj.specs import MapKind, MapSpec

_NO_BTF_TYPES = frozenset(
    {
        MapType.PERF_EVENT_ARRAY,
        MapType.CGROUP_ARRAY,
        MapType.STACK_TRACE,
        MapType.ARRAY_OF_MAPS,
        MapType.HASH_OF_MAPS,
        MapType.DEVMAP,
        MapType.DEVMAP_HASH,
        MapType.CPUMAP,
        MapType.XSKMAP,
        MapType.SOCKMAP,
        MapType.SOCKHASH,
        MapType.QUEUE,
        MapType.STACK,
        MapType.ARENA,
    }
)
"""Map types created without BTF key/value ids (the kernel refuses or ignores them)."""

PERCPU_TYPES = frozenset(
    {
        MapType.PERCPU_HASH,
        MapType.PERCPU_ARRAY,
        MapType.LRU_PERCPU_HASH,
        MapType.PERCPU_CGROUP_STORAGE_DEPRECATED,
    }
)
MAP_IN_MAP_TYPES = frozenset({MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS})
FD_VALUE_TYPES = frozenset(
    {*MAP_IN_MAP_TYPES, MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY}
)
"""Maps whose values user space writes as descriptors and reads back as ids."""


def ringbuf_size(size: int) -> int:
    """libbpf's ``adjust_ringbuf_sz``: the next power-of-two number of pages (0 stays 0)."""
    page = page_size()
    if size == 0 or (size % page == 0 and ((size // page) & (size // page - 1)) == 0):
        return size
    pages = 1
    while pages * page <= size:
        pages <<= 1
    return pages * page


def effective_max_entries(spec: MapSpec) -> int:
    """``max_entries`` as created: ring buffers rounded, CPU-indexed arrays sized."""
    if spec.type in (MapType.RINGBUF, MapType.USER_RINGBUF):
        return ringbuf_size(spec.max_entries)
    if spec.type == MapType.PERF_EVENT_ARRAY and spec.max_entries == 0:
        return possible_cpus()
    return spec.max_entries


def create_map(spec: MapSpec, btf_fd: Fd | None, *, name: str | None = None) -> Fd:
    """``BPF_MAP_CREATE`` for ``spec``; refusals raise :class:`LoadError` naming the map."""
    inner_fd: Fd | None = None
    try:
        if spec.type in MAP_IN_MAP_TYPES and spec.inner is not None:
            inner_fd = create_map(spec.inner, btf_fd, name=f"{spec.name}.inner")
        use_btf = btf_fd is not None and spec.type not in _NO_BTF_TYPES
        key_id = spec.key_type_id if use_btf else 0
        value_id = (spec.value_type_id or _datasec_id(spec)) if use_btf else 0

        def attempt(with_btf: bool) -> Fd:
            return kmaps.map_create(
                spec.type,
                spec.key_size,
                spec.value_size,
                effective_max_entries(spec),
                name=spec.name if name is None else name,
                map_flags=int(spec.flags),
                inner_map_fd=inner_fd,
                numa_node=spec.numa_node if spec.flags & _NUMA_NODE else None,
                btf_fd=btf_fd if with_btf else None,
                btf_key_type_id=key_id if with_btf else 0,
                btf_value_type_id=value_id if with_btf else 0,
                map_extra=spec.map_extra,
            )

        try:
            return attempt(use_btf and bool(key_id or value_id))
        except KernelError as first:
            if not (use_btf and (key_id or value_id)):
                raise LoadError(f"map '{spec.name}': {first}") from first
            try:  # as libbpf: a kernel may reject the BTF types but not the map itself
                return attempt(False)
            except KernelError as exc:
                raise LoadError(f"map '{spec.name}': {exc}") from exc
    finally:
        if inner_fd is not None:
            inner_fd.close()


_NUMA_NODE = 1 << 2


def _datasec_id(spec: MapSpec) -> int:
    return spec.btf_var_type_id if spec.is_internal else 0


def populate_global_data(
    spec: MapSpec, fd: Fd, image: bytes, map_memory: bool = True
) -> _mmap.mmap | None:
    """Write a global-data map's image, freeze ``.rodata``/``.kconfig``, mmap if mmapable.

    Returns the mapping (read-only once frozen), or ``None`` for non-mmapable maps and
    when ``map_memory`` is off.
    """
    if len(image) != spec.value_size:
        raise LoadError(f"map '{spec.name}': image is {len(image)} bytes, map value "
                        f"{spec.value_size}")
    frozen = spec.kind in (MapKind.RODATA, MapKind.KCONFIG)
    try:
        if spec.value_size:
            kmaps.map_update_elem(fd, b"\0\0\0\0", image)
        if frozen:
            kmaps.map_freeze(fd)
        if map_memory and spec.flags & MapFlags.BPF_F_MMAPABLE:
            return map_mmap(fd, spec.value_size, 1, writable=not frozen)
    except KernelError as exc:
        raise LoadError(f"map '{spec.name}': initializing global data: {exc}") from exc
    return None


class MapHandle:
    """Element access to a live map: bytes, ints or ctypes values in, ``bytes`` out.

    For per-CPU maps a value is a list with one entry per possible CPU.  For maps holding
    descriptors (prog arrays, map-in-map, perf event arrays) updates take the fd (an int or
    anything with ``fileno()``) and lookups return the kernel's id of the referenced object
    as 4 bytes, as the kernel reports it.
    """

    __slots__ = ("fd", "key_size", "name", "percpu", "type", "value_size")

    def __init__(self, fd: Fd, spec: MapSpec) -> None:
        self.fd = fd
        self.name = spec.name
        self.type = spec.type
        self.key_size = spec.key_size
        self.value_size = spec.value_size
        self.percpu = spec.type in PERCPU_TYPES

    # --------------------------------------------------------------------- conversions

    def _key(self, key: object) -> bytes | None:
        if type(key) is bytes and len(key) == self.key_size and key:
            return key
        if self.key_size == 0:
            if key is not None:
                raise ValueError(f"map '{self.name}' has no keys")
            return None
        return to_bytes(key, self.key_size, f"map '{self.name}' key")

    def _value_in(self, value: object) -> bytes:
        if type(value) is bytes and len(value) == self.value_size and not self.percpu:
            return value
        if self.percpu:
            return percpu_to_bytes(value, self.value_size, f"map '{self.name}' value")
        if self.type in FD_VALUE_TYPES and hasattr(value, "fileno"):
            value = value.fileno()
        return to_bytes(value, self.value_size, f"map '{self.name}' value")

    @property
    def user_value_size(self) -> int:
        """Bytes the kernel copies per value to or from user space."""
        if self.percpu:
            return percpu_slot(self.value_size) * possible_cpus()
        return self.value_size

    def _value_out(self, raw: bytes) -> bytes | list[bytes]:
        return percpu_from_bytes(raw, self.value_size) if self.percpu else raw

    # --------------------------------------------------------------------- elements

    def lookup(self, key: object) -> bytes | list[bytes] | None:
        """The value at ``key``, or ``None`` when absent."""
        raw = kmaps.map_lookup_elem(self.fd, self._key(key), self.user_value_size)
        return None if raw is None else self._value_out(raw)

    def update(self, key: object, value: object, flags: int = 0) -> None:
        """Create or replace (``flags``: ``BPF_ANY``/``BPF_NOEXIST``/``BPF_EXIST``)."""
        kmaps.map_update_elem(self.fd, self._key(key), self._value_in(value), flags)

    def delete(self, key: object) -> bool:
        """Delete ``key``; False when it was absent (arrays refuse deletes: EINVAL)."""
        raw = self._key(key)
        if raw is None:
            raise ValueError(f"map '{self.name}' has no keys to delete")
        return kmaps.map_delete_elem(self.fd, raw)

    def keys(self) -> Iterator[bytes]:
        """Every key, walked with ``BPF_MAP_GET_NEXT_KEY``."""
        return kmaps.map_keys(self.fd, self.key_size)

    def items(self) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        """``(key, value)`` pairs; keys deleted during the walk are skipped."""
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def pop(self, key: object) -> bytes | list[bytes] | None:
        """Look up and delete in one step (``None`` key: the head of a queue or stack)."""
        raw = kmaps.map_lookup_and_delete_elem(self.fd, self._key(key), self.user_value_size)
        return None if raw is None else self._value_out(raw)

    def lookup_batch(self, count: int = 256) -> list[tuple[bytes, bytes | list[bytes]]]:
        """Every entry with ``BPF_MAP_LOOKUP_BATCH``, ``count`` per syscall."""
        return self._batches(kmaps.map_lookup_batch, count)

    def lookup_and_delete_batch(
        self, count: int = 256
    ) -> list[tuple[bytes, bytes | list[bytes]]]:
        """Every entry, deleted as it is read (``BPF_MAP_LOOKUP_AND_DELETE_BATCH``)."""
        return self._batches(kmaps.map_lookup_and_delete_batch, count)

    def _batches(
        self, command: Callable[..., kmaps.BatchResult], count: int
    ) -> list[tuple[bytes, bytes | list[bytes]]]:
        out: list[tuple[bytes, bytes | list[bytes]]] = []
        token: bytes | None = None
        while True:
            try:
                step = command(self.fd, self.key_size, self.user_value_size, count, token)
            except KernelError as exc:
                if exc.errno == errno.ENOSPC:  # a hash bucket bigger than count
                    count *= 2
                    continue
                raise
            out.extend((k, self._value_out(v)) for k, v in zip(step.keys, step.values,
                                                              strict=True))
            if step.next_batch is None:
                return out
            token = step.next_batch

    def delete_batch(self, keys: Sequence[object]) -> int:
        """Delete ``keys`` with one ``BPF_MAP_DELETE_BATCH``; returns the count."""
        raw_keys = [to_bytes(k, self.key_size, f"map '{self.name}' key") for k in keys]
        return kmaps.map_delete_batch(self.fd, raw_keys)

    def update_batch(
        self, keys: Sequence[object], values: Sequence[object], flags: int = 0
    ) -> int:
        """Write ``keys[i] -> values[i]`` with one ``BPF_MAP_UPDATE_BATCH``."""
        raw_keys = [to_bytes(k, self.key_size, f"map '{self.name}' key") for k in keys]
        raw_values = [self._value_in(v) for v in values]
        return kmaps.map_update_batch(self.fd, raw_keys, raw_values, elem_flags=flags)

    def freeze(self) -> None:
        kmaps.map_freeze(self.fd)
