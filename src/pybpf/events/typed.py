"""Typed events: records delivered as ctypes structures instead of raw bytes.

``event_type`` is either a ctypes type (a ``Structure``, ``Union``, array or scalar) or the C
name of a type in the map's object BTF (``"struct event"``, ``"union u"``, a typedef name), which
:class:`~pybpf.btf.to_ctypes.CTypesBuilder` turns into a BTF-exact ctypes structure.

Records are built with ``from_buffer_copy``: one ``memcpy`` of the record, no per-field work
until a field is read.  A zero-copy ``from_buffer`` view is impossible here, and would be unsafe
if it were possible: the ring's data pages are mapped read-only (the kernel refuses writable
mappings of them), ctypes only builds views over writable buffers, and a view that outlived the
callback would read memory the producer has since reused.  The copy is cheaper than
``from_buffer`` on a ``memoryview`` anyway (it skips the buffer-export bookkeeping), and the
delivered value stays valid after the callback returns.
"""

from __future__ import annotations

import ctypes
from typing import Any

from pybpf.btf import Btf, BtfKind
from pybpf.btf.to_ctypes import CTypesBuilder
from pybpf.errors import EventError

_KINDS = {"struct": BtfKind.STRUCT, "union": BtfKind.UNION, "enum": BtfKind.ENUM}


def resolve_event_type(event_type: Any, btf: Btf | None, what: str) -> Any:
    """The ctypes type for ``event_type`` (a ctypes type, or a C type name looked up in BTF)."""
    if event_type is None:
        return None
    if isinstance(event_type, str):
        return _from_btf(event_type, btf, what)
    if isinstance(event_type, type) and issubclass(event_type, _CTYPES):
        return event_type
    raise TypeError(f"{what}: event_type must be a ctypes type or a C type name, "
                    f"not {event_type!r}")


_CTYPES = (ctypes.Structure, ctypes.Union, ctypes.Array, ctypes._SimpleCData)


def _from_btf(name: str, btf: Btf | None, what: str) -> Any:
    if btf is None:
        raise EventError(
            f"{what}: event_type {name!r} is a C type name, but no BTF is known for this map; "
            "pass btf= or a map of an opened BpfObject"
        )
    words = name.split()
    if len(words) == 2 and words[0] in _KINDS:
        found = btf.find(words[1], _KINDS[words[0]])
    elif len(words) == 1:
        found = btf.find(words[0], BtfKind.TYPEDEF)
    else:
        raise EventError(f"{what}: cannot parse event_type {name!r} (expected 'struct NAME')")
    if len(found) != 1:
        hint = (
            " (clang emits BTF only for types that globals or function signatures use: "
            f"add e.g. a global '{name} *unused;' to the program)"
            if not found
            else f": ids {found}"
        )
        raise EventError(f"{what}: {len(found)} types named {name!r} in BTF{hint}")
    return CTypesBuilder(btf).ctype(found[0])


def type_size(ctype: Any) -> int:
    """``sizeof`` the event type: records shorter than this are rejected, not over-read."""
    return ctypes.sizeof(ctype)


RECORD_ATTR = "_pybpf_record"
"""Where a typed event whose record size differs from its type keeps the record's bytes."""


def sized(ctype: Any, record: bytes) -> Any:
    """An ``event_type`` value for a record that is not exactly ``sizeof(ctype)`` bytes.

    Variable-size records are the norm for tools that send only the used part of a trailing
    array (execsnoop's arguments, opensnoop's file name): a short record is zero-filled to the
    type's size, a long one fills the type from its start, and either way the record's own
    bytes stay with the value (:func:`record_bytes`, :func:`record_size`).
    """
    need = ctypes.sizeof(ctype)
    value = ctype.from_buffer_copy(record if len(record) >= need else record.ljust(need, b"\0"))
    setattr(value, RECORD_ATTR, record)
    return value


def record_bytes(event: Any) -> bytes:
    """The bytes the program sent for ``event`` (a typed event or a raw record).

    For a record of exactly the type's size these are the value's own bytes; for a
    variable-size record, the record as sent, which may be shorter or longer than the type.
    """
    kept = getattr(event, RECORD_ATTR, None)
    if kept is not None:
        return bytes(kept)
    return bytes(memoryview(event).cast("B"))


def record_size(event: Any) -> int:
    """How many bytes the program sent for ``event``."""
    return len(record_bytes(event))
