"""Attribute access to the global variables of one memory-mappable data section.

``skel.data.counter += 1`` and ``subskel.rodata.threshold = 5`` go through a
:class:`DataSection` (live runtime) or a generated subclass of :class:`SectionCore`.  Neither
holds on to the section's memory for good: each access asks the map, so an accessor obtained
before load reads and writes live kernel memory after load, and the map decides whether
writes are still allowed (``.rodata`` is frozen at load; ``.kconfig`` is filled by the loader
from the kernel configuration and never writable).

Asking costs, and accessors are on hot paths, so :class:`SectionCore` remembers the map's
answers (its memory object, whether views may alias it, why writes are refused) for as long
as neither the memory object nor the owner's loaded state changes, and it keeps one ctypes
view per aggregate variable over memory that is live (its address never changes while the
memory object is the same).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from pybpf.skel.values import Buffer, ValueKind, VarCodec, VariableError


class _Owner(Protocol):
    @property
    def loaded(self) -> bool: ...


class SectionMemory(Protocol):
    """What a data section accessor needs from the map that holds the section."""

    @property
    def obj(self) -> _Owner: ...

    @property
    def section_name(self) -> str: ...

    @property
    def memory(self) -> Buffer:
        """The section's bytes: the initial image before load, the live mmap after."""
        ...

    def write_refusal(self) -> str | None:
        """Why the section cannot be written now, or ``None`` when it can."""
        ...

    @property
    def memory_is_live(self) -> bool:
        """True where views may alias the memory (it will not be replaced or discarded)."""
        ...


_Unpack = Callable[[Any, int], tuple[Any, ...]]


class SectionCore:
    """Fast reads and writes of one section's variables by name (no attribute magic).

    Internal names start with ``_pybpf_`` so that no BPF variable can shadow them.
    """

    __slots__ = (
        "_pybpf_codecs",
        "_pybpf_map",
        "_pybpf_memory",
        "_pybpf_readers",
        "_pybpf_state",
        "_pybpf_views",
    )
    _pybpf_codecs: dict[str, VarCodec]
    _pybpf_map: SectionMemory
    _pybpf_memory: object
    _pybpf_readers: dict[str, tuple[_Unpack, int, bool]]
    _pybpf_state: tuple[bool, bool, str | None]
    _pybpf_views: dict[str, Any]

    def __init__(self, section_map: SectionMemory, codecs: Mapping[str, VarCodec]) -> None:
        readers = {
            name: (codec.packer.unpack_from, codec.offset, codec.kind is ValueKind.BOOL)
            for name, codec in codecs.items()
            if codec.packer is not None
        }
        setter = object.__setattr__
        setter(self, "_pybpf_codecs", dict(codecs))
        setter(self, "_pybpf_map", section_map)
        setter(self, "_pybpf_readers", readers)
        setter(self, "_pybpf_memory", None)
        setter(self, "_pybpf_state", (False, False, None))
        setter(self, "_pybpf_views", {})

    def _pybpf_sync(self) -> tuple[Buffer, bool, str | None]:
        """The memory and, cached while it and the load state stay the same, whether views
        may alias it and why writes are refused."""
        section_map = self._pybpf_map
        memory = section_map.memory
        loaded = section_map.obj.loaded
        state = self._pybpf_state
        if memory is not self._pybpf_memory or state[0] is not loaded:
            state = (loaded, section_map.memory_is_live, section_map.write_refusal())
            object.__setattr__(self, "_pybpf_memory", memory)
            object.__setattr__(self, "_pybpf_state", state)
            self._pybpf_views.clear()
        return memory, state[1], state[2]

    def _pybpf_get(self, name: str) -> Any:
        reader = self._pybpf_readers.get(name)
        if reader is not None:
            value = reader[0](self._pybpf_map.memory, reader[1])[0]
            return bool(value) if reader[2] else value
        codec = self._pybpf_codec(name)
        memory, live, _ = self._pybpf_sync()
        if codec.ctype is None:
            return codec.read(memory)
        if not live:
            return codec.read(memory, live=False)
        view = self._pybpf_views.get(name)
        if view is None:
            view = self._pybpf_views[name] = codec.read(memory, live=True)
        return view

    def _pybpf_set(self, name: str, value: object) -> None:
        codec = self._pybpf_codec(name)
        memory, _, refusal = self._pybpf_sync()
        if refusal is not None:
            raise VariableError(
                f"cannot set {self._pybpf_map.section_name} variable '{name}': {refusal}"
            )
        codec.write(memory, value)

    def _pybpf_codec(self, name: str) -> VarCodec:
        try:
            return self._pybpf_codecs[name]
        except KeyError:
            known = ", ".join(sorted(self._pybpf_codecs)) or "none"
            raise VariableError(
                f"section {self._pybpf_map.section_name} has no variable '{name}' "
                f"(variables: {known})"
            ) from None

    def variables(self) -> dict[str, VarCodec]:
        """Each variable's codec (offset, size, type name) by name."""
        return dict(self._pybpf_codecs)

    def snapshot(self) -> dict[str, Any]:
        """Every variable's current value, with aggregates copied (not live)."""
        memory = self._pybpf_map.memory
        return {name: codec.read(memory, live=False) for name, codec in self._pybpf_codecs.items()}

    def __repr__(self) -> str:
        names = ", ".join(self._pybpf_codecs)
        return f"<{type(self).__name__} {self._pybpf_map.section_name}: {names}>"


class DataSection(SectionCore):
    """The variables of one data section as dynamic attributes (the live runtime's)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._pybpf_get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._pybpf_set(name, value)

    def __dir__(self) -> list[str]:
        return sorted(self._pybpf_codecs)

    def __iter__(self) -> Iterator[str]:
        return iter(self._pybpf_codecs)

    def __contains__(self, name: object) -> bool:
        return name in self._pybpf_codecs
