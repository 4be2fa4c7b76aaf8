"""Turning what the user hands us (a live map object, an Fd, a raw number) into a checked map.

Readers accept any of: a loaded :class:`pybpf.object.Map` (or anything with a ``.fd`` that is
an ``int`` or :class:`~pybpf.kernel.fd.Fd`), an ``Fd``, an object with ``fileno()``, or a bare
descriptor number.  Whatever it is, the kernel is asked what the map really is
(``BPF_OBJ_GET_INFO_BY_FD``), so that a wrong map type is reported by name before any mmap,
and the descriptor is duplicated so the reader's lifetime does not depend on the caller's.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from typing import Any

from pybpf.abi.bpf import MapType, enum_name
from pybpf.btf import Btf
from pybpf.errors import EventError, MapTypeError
from pybpf.kernel.fd import Fd
from pybpf.kernel.maps import map_get_info_by_fd


@dataclass(slots=True)
class MapSource:
    """A map a reader owns a duplicate descriptor of, with what the kernel says it is."""

    fd: Fd
    name: str
    map_type: int
    max_entries: int
    btf: Btf | None
    """The BTF of the object the map came from, when known: resolves ``event_type`` names."""

    @property
    def what(self) -> str:
        """How messages name this map: ``map 'events' (BPF_MAP_TYPE_RINGBUF)``."""
        return f"map '{self.name}' ({enum_name(MapType, self.map_type)})"


def _raw_number(obj: Any, label: str) -> int:
    fd = getattr(obj, "fd", obj)
    if fd is None:
        raise EventError(f"map '{label}' has no file descriptor: load its object first")
    if isinstance(fd, Fd):
        return fd.fileno()
    if isinstance(fd, int) and not isinstance(fd, bool):
        return fd
    fileno = getattr(fd, "fileno", None)
    if callable(fileno):
        number = fileno()
        if isinstance(number, int):
            return number
    raise TypeError(f"expected a map, an Fd or a descriptor number, not {type(obj).__name__}")


def _object_btf(obj: Any) -> Btf | None:
    """The BTF of a :class:`pybpf.object.Map`'s object, found by duck typing (no import)."""
    owner = getattr(obj, "obj", None)
    spec = getattr(owner, "spec", None)
    btf = getattr(spec, "btf", None)
    return btf if isinstance(btf, Btf) else None


def open_map(obj: Any, expected: MapType, reader: str) -> MapSource:
    """Check ``obj`` is a live map of type ``expected`` and take a descriptor of our own."""
    label = str(getattr(obj, "name", "") or "?")
    number = _raw_number(obj, label)
    info = map_get_info_by_fd(number)
    name = info.name or label
    if info.type != expected:
        kind = enum_name(MapType, info.type)
        raise MapTypeError(
            f"{reader} needs a {expected.name} map, but map '{name}' is a {kind}"
        )
    fd = Fd.adopt(fcntl.fcntl(number, fcntl.F_DUPFD_CLOEXEC, 3), f"map {name!r}")
    return MapSource(fd, name, info.type, info.max_entries, _object_btf(obj))

