"""Attribute access to the global variables of one memory-mappable data section.

``skel.data.counter += 1`` and ``subskel.rodata.threshold = 5`` go through a
:class:`DataSection`.  It never caches the section's memory: it asks its map each time, so an
accessor obtained before load reads and writes live kernel memory after load, and it asks the
map whether writes are still allowed (``.rodata`` is frozen at load; ``.kconfig`` is filled by
the loader from the kernel configuration and never writable).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from pybpf.skel.values import Buffer, VarCodec, VariableError


class SectionMemory(Protocol):
    """What a data section accessor needs from the map that holds the section."""

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


class DataSection:
    """The variables of one data section as attributes."""

    __slots__ = ("_codecs", "_map")
    _codecs: dict[str, VarCodec]
    _map: SectionMemory

    def __init__(self, section_map: SectionMemory, codecs: Mapping[str, VarCodec]) -> None:
        object.__setattr__(self, "_map", section_map)
        object.__setattr__(self, "_codecs", dict(codecs))

    def _codec(self, name: str) -> VarCodec:
        try:
            return self._codecs[name]
        except KeyError:
            known = ", ".join(sorted(self._codecs)) or "none"
            raise VariableError(
                f"section {self._map.section_name} has no variable '{name}' (variables: {known})"
            ) from None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        section_map = self._map
        return self._codec(name).read(section_map.memory, live=section_map.memory_is_live)

    def __setattr__(self, name: str, value: Any) -> None:
        codec = self._codec(name)
        refusal = self._map.write_refusal()
        if refusal is not None:
            raise VariableError(f"cannot set {self._map.section_name} variable '{name}': {refusal}")
        codec.write(self._map.memory, value)

    def __dir__(self) -> list[str]:
        return sorted(self._codecs)

    def __iter__(self) -> Iterator[str]:
        return iter(self._codecs)

    def __contains__(self, name: object) -> bool:
        return name in self._codecs

    def variables(self) -> dict[str, VarCodec]:
        """Each variable's codec (offset, size, type name) by name."""
        return dict(self._codecs)

    def snapshot(self) -> dict[str, Any]:
        """Every variable's current value, with aggregates copied (not live)."""
        memory = self._map.memory
        return {name: codec.read(memory, live=False) for name, codec in self._codecs.items()}

    def __repr__(self) -> str:
        names = ", ".join(self._codecs)
        return f"<DataSection {self._map.section_name}: {names}>"
