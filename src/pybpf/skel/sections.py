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

A ctypes view outlives the access that made it, so the views handed out are *guarded*: a
subclass of the variable's ctypes class that asks the section before each member or item
access.  Once the object is closed or the skeleton destroyed, that raises; once a frozen map's
memory has become the kernel's read-only mapping, a view taken before load reads what the
kernel holds and refuses writes, where a plain view would silently write a stale copy.
"""

from __future__ import annotations

import ctypes
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
        """The section's bytes: the initial image before load, the live mapping after.

        Raises a :class:`~pybpf.errors.BpfError` once the memory is gone (object closed,
        skeleton destroyed), which is how every accessor and view learns of it.
        """
        ...

    def write_refusal(self) -> str | None:
        """Why the section cannot be written now, or ``None`` when it can."""
        ...

    @property
    def memory_is_live(self) -> bool:
        """True where views may alias the memory and see every later change through it."""
        ...


_Unpack = Callable[[Any, int], tuple[Any, ...]]

_AGGREGATES = (ctypes.Structure, ctypes.Union, ctypes.Array)
_PLAIN = frozenset({int, float, bytes, bool})
"""Member values that never alias memory (a fast exit from :func:`_wrapped`)."""


class _Guard:
    """Where a guarded view comes from: its section (as a :class:`SectionMemory`), the memory
    object it was made over, its offset there, and whether it is a copy rather than an alias."""

    __slots__ = ("copy", "memory", "name", "offset", "refusal", "section")

    def __init__(self, section: SectionMemory, memory: object, offset: int, name: str,
                 copy: bool, refusal: str | None) -> None:  # fmt: skip
        self.section = section
        self.memory = memory
        self.offset = offset
        self.name = name
        self.copy = copy
        self.refusal = refusal
        """Why the section refused writes when the view was made (see :func:`_check_write`)."""


def _current(view: Any, guard: _Guard, memory: object) -> Any:
    """What ``view`` reads from once its section's memory is not the one it was made over
    (a frozen map after load): a copy of what the memory holds now at the view's offset."""
    return type(view)._pybpf_base.from_buffer_copy(memory, guard.offset)


def _wrapped(value: Any, source: Any, view: Any, guard: _Guard, memory: object) -> Any:
    """``value`` read from ``source``, with nested structs and arrays guarded like ``view``."""
    if isinstance(value, list):
        return [_wrapped(item, source, view, guard, memory) for item in value]
    if not isinstance(value, _AGGREGATES):
        return value
    offset = guard.offset + ctypes.addressof(value) - ctypes.addressof(source)
    nested = guarded_class(type(value)).from_buffer(value)
    copy = guard.copy or source is not view
    nested._pybpf_guard = _Guard(guard.section, memory, offset, guard.name, copy, guard.refusal)
    return nested


def _check_write(view: Any, kind: str, key: object) -> None:
    """Raise unless ``view`` may write its section's memory now.

    While the section's memory is the object the view was made over, the answer is the one
    recorded when the view was made: every change that could alter it (load of a frozen map,
    close, destroy) replaces that object or makes asking for it raise.
    """
    guard: _Guard = view._pybpf_guard
    section = guard.section
    memory = section.memory  # raises once the object is closed or the skeleton destroyed
    if memory is guard.memory and not guard.copy:
        refusal = guard.refusal
    else:
        refusal = section.write_refusal() or "this view no longer aliases the section's memory"
    if refusal is not None:
        raise VariableError(
            f"cannot set {section.section_name} variable '{guard.name}' ({kind} {key}): {refusal}"
        )


def _guarded_member(name: str, member: Any) -> property:
    """A property standing in for the struct member descriptor ``member`` of a view.

    Each access asks the section for its memory (which raises once the object is closed or
    the skeleton destroyed); a view whose memory was replaced reads the current memory.
    """
    read = member.__get__
    write = member.__set__

    def get(view: Any) -> Any:
        guard: _Guard = view._pybpf_guard
        memory = guard.section.memory
        source = view if memory is guard.memory else _current(view, guard, memory)
        value = read(source)
        if type(value) in _PLAIN:
            return value
        return _wrapped(value, source, view, guard, memory)

    def put(view: Any, value: Any) -> None:
        _check_write(view, "member", name)
        write(view, value)

    return property(get, put, doc=f"Member {name}, checked against its section on each use.")


def _guarded_items(ctype: Any) -> dict[str, Any]:
    """``__getitem__``/``__setitem__`` of a guarded array view, as :func:`_guarded_member`."""
    read = ctype.__getitem__
    write = ctype.__setitem__

    def get(view: Any, index: Any) -> Any:
        guard: _Guard = view._pybpf_guard
        memory = guard.section.memory
        source = view if memory is guard.memory else _current(view, guard, memory)
        value = read(source, index)
        if type(value) in _PLAIN:
            return value
        return _wrapped(value, source, view, guard, memory)

    def put(view: Any, index: Any, value: Any) -> None:
        _check_write(view, "item", index)
        write(view, index, value)

    return {"__getitem__": get, "__setitem__": put}


def _members(ctype: Any) -> dict[str, Any]:
    """The data descriptors a struct/union class adds over ctypes' own (fields, bitfields)."""
    found: dict[str, Any] = {}
    for klass in reversed(ctype.__mro__):
        if klass.__module__ in ("_ctypes", "builtins"):
            continue
        for name, attr in vars(klass).items():
            ours = name.startswith("_pybpf_") or (name.startswith("__") and name.endswith("__"))
            if not ours and hasattr(type(attr), "__set__"):
                found[name] = attr
    return found


def guarded_class(ctype: Any) -> Any:
    """The guarded subclass of a struct, union or array ctypes class, made once and kept on the
    class itself (a table keyed by class would keep every object's classes alive)."""
    made = ctype.__dict__.get("_pybpf_guarded")
    if made is not None:
        return made
    namespace: dict[str, Any] = {
        "__slots__": ("_pybpf_guard",),
        "__module__": ctype.__module__,
        "_pybpf_base": ctype,
    }
    if issubclass(ctype, ctypes.Array):
        namespace |= _guarded_items(ctype)
    else:
        namespace |= {name: _guarded_member(name, m) for name, m in _members(ctype).items()}
    made = type(ctype)(ctype.__name__, (ctype,), namespace)
    ctype._pybpf_guarded = made
    return made


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
        memory, live, refusal = self._pybpf_sync()
        if codec.ctype is None:
            return codec.read(memory)
        if not live:
            return self._pybpf_guarded(codec, memory, True, refusal)
        view = self._pybpf_views.get(name)
        if view is None:
            view = self._pybpf_guarded(codec, memory, False, refusal)
            self._pybpf_views[name] = view
        return view

    def _pybpf_guarded(
        self, codec: VarCodec, memory: Buffer, copy: bool, refusal: str | None
    ) -> Any:
        """A guarded view of ``codec``'s variable: over ``memory``, or over a copy of it."""
        cls = guarded_class(codec.ctype)
        view = (cls.from_buffer_copy if copy else cls.from_buffer)(memory, codec.offset)
        guard = _Guard(self._pybpf_map, memory, codec.offset, codec.name, copy, refusal)
        view._pybpf_guard = guard
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
