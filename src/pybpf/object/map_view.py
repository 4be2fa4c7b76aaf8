"""Typed element access to a loaded map: a mapping of Python keys to Python values.

:class:`MapAccess` is the protocol a user expects of a map (``m[key]``, ``get``, ``in``,
``keys``/``values``/``items``, ``pop``, ``clear``, and batch forms), written once over the
loader's byte-level :class:`~pybpf.load.maps.MapHandle` and two
:class:`~pybpf.btf.value_codec.ValueCodec` s.  A :class:`~pybpf.object.Map` is one with codecs
from its BTF key and value types; ``map.raw`` and ``map.typed(...)`` are :class:`MapView` s of
the same map with bytes or explicit ctypes types.  Per-CPU maps give a :class:`PerCpu` list,
one value per possible CPU, which sums itself the way every histogram tool does by hand.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pybpf.abi.bpf import MapType
from pybpf.btf.value_codec import (
    ValueCodec,
    build_struct,
    field_names,
)
from pybpf.errors import BpfError, MapValueError

if TYPE_CHECKING:
    from pybpf.load.maps import MapHandle

K = TypeVar("K")
V = TypeVar("V")

_MISSING: Any = object()

_NO_DELETE = frozenset(
    {MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY,
     MapType.CGROUP_ARRAY, MapType.ARRAY_OF_MAPS}
)  # fmt: skip
"""Map types whose elements always exist: the kernel refuses deletes (EINVAL)."""


class PerCpu(list[V]):
    """A per-CPU map's value: one item per possible CPU, in CPU order."""

    def sum(self) -> V:
        """The CPUs' values added up: ints and floats, arrays element by element, structs
        field by field (character arrays are taken from CPU 0).  A struct whose sum does not
        fit a field raises :class:`~pybpf.errors.MapValueError`."""
        return sum_values(list(self), "per-CPU sum")  # type: ignore[no-any-return]


def sum_values(items: list[Any], what: str) -> Any:
    first = items[0]
    if isinstance(first, bytes):
        return first
    if isinstance(first, int | float):
        return sum(items)
    if isinstance(first, list | ctypes.Array):
        return [sum_values([item[i] for item in items], f"{what}[{i}]")
                for i in range(len(first))]  # fmt: skip
    if isinstance(first, ctypes.Structure | ctypes.Union):
        ctype = type(first)
        fields = {name: sum_values([getattr(item, name) for item in items], f"{what}.{name}")
                  for name in field_names(ctype)}  # fmt: skip
        return build_struct(ctype, fields, what)
    raise TypeError(f"{what}: cannot add values of type {type(first).__name__}")


class Codecs:
    """A map's key and value codecs, with the names their errors carry (built once)."""

    __slots__ = ("key", "key_what", "value", "value_what")

    def __init__(self, name: str, key: ValueCodec, value: ValueCodec) -> None:
        self.key, self.value = key, value
        self.key_what, self.value_what = f"map '{name}' key", f"map '{name}' value"


class MapAccess(Generic[K, V]):
    """The mapping protocol over :attr:`handle`, converting with :meth:`_codecs`."""

    __slots__ = ()

    @property
    def handle(self) -> MapHandle:
        raise NotImplementedError

    def _codecs(self) -> Codecs:
        raise NotImplementedError

    # ----------------------------------------------------------------------- conversions

    def _key_in(self, key: object) -> object:
        if key is None:
            return None  # queues and stacks have no keys
        c = self._codecs()
        return c.key.encode(key, c.key_what)

    def _value_in(self, value: object) -> object:
        c = self._codecs()
        if self.handle.percpu:
            if not isinstance(value, Sequence) or isinstance(value, bytes | bytearray | str):
                raise MapValueError(f"{c.value_what}: a per-CPU value is a sequence, one per CPU")
            return [c.value.encode(v, f"{c.value_what} (CPU {i})") for i, v in enumerate(value)]
        return c.value.encode(value, c.value_what)

    def _value_out(self, raw: bytes | list[bytes]) -> V:
        codec = self._codecs().value
        if isinstance(raw, list):
            return PerCpu(codec.decode(r) for r in raw)  # type: ignore[return-value]
        return codec.decode(raw)  # type: ignore[no-any-return]

    def _key_out(self, raw: bytes) -> K:
        return self._codecs().key.decode(raw)  # type: ignore[no-any-return]

    # ----------------------------------------------------------------------- elements

    def lookup(self, key: K | bytes | None) -> V | None:
        """The value at ``key``, or ``None`` when there is none."""
        c = self._codecs()
        raw = self.handle.lookup(None if key is None else c.key.encode(key, c.key_what))
        if raw is None:
            return None
        if type(raw) is bytes:
            return c.value.decode(raw)  # type: ignore[no-any-return]
        return self._value_out(raw)

    def update(self, key: K | bytes | None, value: object, flags: int = 0) -> None:
        """Store ``value`` at ``key`` (``flags``: BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK)."""
        self.handle.update(self._key_in(key), self._value_in(value), flags)

    def delete(self, key: K | bytes) -> bool:
        """Remove ``key``; False if it was not there."""
        return self.handle.delete(self._key_in(key))

    def __getitem__(self, key: K | bytes) -> V:
        value = self.lookup(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: K | bytes, default: Any = None) -> V | Any:
        value = self.lookup(key)
        return default if value is None else value

    def __setitem__(self, key: K | bytes, value: object) -> None:
        self.update(key, value)

    def __delitem__(self, key: K | bytes) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return self.lookup(key) is not None  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[K]:
        return self.keys()

    def keys(self) -> Iterator[K]:
        """Every key (``BPF_MAP_GET_NEXT_KEY``; keys deleted meanwhile are skipped)."""
        return (self._key_out(k) for k in self.handle.keys())  # noqa: SIM118 - a map walk

    def values(self) -> Iterator[V]:
        return (self._value_out(v) for _, v in self.handle.items())

    def items(self) -> Iterator[tuple[K, V]]:
        return ((self._key_out(k), self._value_out(v)) for k, v in self.handle.items())

    def pop(self, key: K | bytes | None = None, default: Any = _MISSING) -> V | Any:
        """Remove ``key`` and return its value in one step (``BPF_MAP_LOOKUP_AND_DELETE_ELEM``);
        with no key, the head of a queue or stack."""
        raw = self.handle.pop(self._key_in(key))
        if raw is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return self._value_out(raw)

    def clear(self) -> None:
        """Delete every element (arrays cannot: their elements always exist)."""
        handle = self.handle
        if handle.type in _NO_DELETE:
            raise BpfError(f"map '{handle.name}' is a {handle.type.name} map: its elements "
                           "cannot be deleted (store zeros instead)")  # fmt: skip
        for raw in list(handle.keys()):
            handle.delete(raw)

    # ----------------------------------------------------------------------- batches

    def lookup_batch(self, count: int = 256) -> list[tuple[K, V]]:
        """Every entry, fetched ``count`` at a time with ``BPF_MAP_LOOKUP_BATCH``."""
        return [(self._key_out(k), self._value_out(v)) for k, v in self.handle.lookup_batch(count)]

    def lookup_and_delete_batch(self, count: int = 256) -> list[tuple[K, V]]:
        """Every entry, deleted as it is read (``BPF_MAP_LOOKUP_AND_DELETE_BATCH``)."""
        pairs = self.handle.lookup_and_delete_batch(count)
        return [(self._key_out(k), self._value_out(v)) for k, v in pairs]

    def update_batch(self, keys: Sequence[object], values: Sequence[object], flags: int = 0) -> int:
        """Write ``keys[i] -> values[i]`` with one ``BPF_MAP_UPDATE_BATCH``; returns the count."""
        if len(keys) != len(values):
            raise MapValueError(f"map '{self.handle.name}': {len(keys)} keys, {len(values)} values")
        return self.handle.update_batch(
            [self._key_in(k) for k in keys], [self._value_in(v) for v in values], flags
        )

    def delete_batch(self, keys: Sequence[object]) -> int:
        """Delete ``keys`` with one ``BPF_MAP_DELETE_BATCH``; returns the count."""
        return self.handle.delete_batch([self._key_in(k) for k in keys])


class MapView(MapAccess[K, V]):
    """One map seen through explicit codecs: ``map.raw`` (bytes) or ``map.typed(...)``."""

    __slots__ = ("_codec_pair", "_map")

    def __init__(self, source: Any, key: ValueCodec, value: ValueCodec) -> None:
        self._map = source
        self._codec_pair = Codecs(source.name, key, value)

    @property
    def handle(self) -> MapHandle:
        handle: MapHandle = self._map.handle
        return handle

    def _codecs(self) -> Codecs:
        return self._codec_pair

    def __repr__(self) -> str:
        c = self._codec_pair
        return f"<MapView of {self._map!r}: {type(c.key).__name__} -> {type(c.value).__name__}>"
