"""Python source for the ctypes classes of a generated skeleton module.

The classes are not laid out anew here: :class:`~pybpf.btf.to_ctypes.CTypesBuilder` builds each
one from BTF (explicit padding, bitfields as descriptors, layout checked against BTF), and this
module writes out what it built, field by field.  So a generated module's structs are by
construction the ones the live runtime uses, and the runtime checks their sizes again against
the *target* object's BTF when a subskeleton is bound.

Each class also gets annotations for its fields (``base: int``), which ctypes ignores and type
checkers read, so ``lib.rodata.cfg.base`` is an ``int`` to mypy.
"""

from __future__ import annotations

import ctypes
import json
import keyword
import re

from pybpf.btf.to_ctypes import CType, _Bitfield

_PRIMITIVES: dict[CType, str] = {
    ctypes.c_int8: "ctypes.c_int8",
    ctypes.c_int16: "ctypes.c_int16",
    ctypes.c_int32: "ctypes.c_int32",
    ctypes.c_int64: "ctypes.c_int64",
    ctypes.c_uint8: "ctypes.c_uint8",
    ctypes.c_uint16: "ctypes.c_uint16",
    ctypes.c_uint32: "ctypes.c_uint32",
    ctypes.c_uint64: "ctypes.c_uint64",
    ctypes.c_bool: "ctypes.c_bool",
    ctypes.c_char: "ctypes.c_char",
    ctypes.c_float: "ctypes.c_float",
    ctypes.c_double: "ctypes.c_double",
}
_PY_TYPES: dict[CType, str] = {
    ctypes.c_bool: "bool",
    ctypes.c_char: "bytes",
    ctypes.c_float: "float",
    ctypes.c_double: "float",
}
_WORD = re.compile(r"[A-Za-z0-9]+")


def camel_case(name: str) -> str:
    """``flow_lib`` -> ``FlowLib``; ``skel_app1`` -> ``SkelApp1`` (a valid class name)."""
    words = _WORD.findall(name)
    result = "".join(w[:1].upper() + w[1:] for w in words) or "Object"
    return "_" + result if result[0].isdigit() else result


def py_identifier(name: str) -> str:
    """A C identifier as a Python attribute name (keywords get a trailing ``_``)."""
    return name + "_" if keyword.iskeyword(name) or keyword.issoftkeyword(name) else name


def is_array(ctype: CType) -> bool:
    return isinstance(ctype, type) and issubclass(ctype, ctypes.Array)


def is_composite(ctype: CType) -> bool:
    return isinstance(ctype, type) and issubclass(ctype, ctypes.Structure | ctypes.Union)


class TypeEmitter:
    """Writes ctypes classes, dependencies first, each under a unique Python name."""

    def __init__(self, taken: set[str]) -> None:
        self._taken = taken
        self._names: dict[CType, str] = {}
        self._arrays: dict[CType, str] = {}
        self._members: dict[CType, list[tuple[str, str]]] = {}
        self.blocks: list[str] = []
        self.aliases: list[str] = []

    def _unique(self, base: str) -> str:
        name, n = base, 1
        while name in self._taken:
            n += 1
            name = f"{base}_{n}"
        self._taken.add(name)
        return name

    def require(self, ctype: CType) -> None:
        """Emit ``ctype``'s class (and every class it contains) unless already done."""
        if is_array(ctype):
            self.require(ctype._type_)
        elif is_composite(ctype) and ctype not in self._names:
            for _, field_type, *_ in ctype._fields_:
                self.require(field_type)
            raw = ctype.__name__
            base = camel_case(raw) if not raw.startswith("anon_") else "Anon"
            self._names[ctype] = self._unique(base)
            self.blocks.append(self._class_source(ctype))

    def expr(self, ctype: CType) -> str:
        """A Python expression that evaluates to ``ctype`` in the generated module."""
        if ctype in _PRIMITIVES:
            return _PRIMITIVES[ctype]
        if is_array(ctype):
            return f"{self.expr(ctype._type_)} * {ctype._length_}"
        if ctype in self._names:
            return self._names[ctype]
        raise ValueError(f"no source for ctypes type {ctype!r}")  # pragma: no cover

    def alias(self, ctype: CType) -> str:
        """A module-level name for ``ctype`` (arrays get one: ``_Array1 = c_int64 * 4``)."""
        if not is_array(ctype):
            return self.expr(ctype)
        if ctype not in self._arrays:
            name = self._unique(f"_Array{len(self._arrays) + 1}")
            self._arrays[ctype] = name
            self.aliases.append(f"{name} = {self.expr(ctype)}")
        return self._arrays[ctype]

    def type_hint(self, ctype: CType) -> str:
        """The static type of a ctypes *object* of ``ctype`` (``ctypes.Array[...]``, a class)."""
        if is_array(ctype):
            return f"ctypes.Array[{self.type_hint(ctype._type_)}]"
        return self.expr(ctype)

    def value_hint(self, ctype: CType, *, field: bool = False) -> str:
        """What Python gets when reading a value of ``ctype`` as an element (``field``: as a
        struct member, where ctypes turns ``char[N]`` into ``bytes``)."""
        if ctype in _PY_TYPES:
            return _PY_TYPES[ctype]
        if ctype in _PRIMITIVES:
            return "int"
        if is_array(ctype):
            if field and ctype._type_ is ctypes.c_char:
                return "bytes"
            return self.type_hint(ctype)
        return self.expr(ctype)

    def _class_source(self, cls: CType) -> str:
        name = self._names[cls]
        base = "ctypes.Union" if issubclass(cls, ctypes.Union) else "ctypes.Structure"
        doc = (cls.__doc__ or cls.__name__).strip()
        lines = [
            f"class {name}({base}):",
            f'    """{doc} ({ctypes.sizeof(cls)} bytes)."""',
            "",
            "    _pack_ = 1",
            f'    _layout_ = "{getattr(cls, "_layout_", "ms")}"',
        ]
        anonymous = list(getattr(cls, "_anonymous_", ()))
        if anonymous:
            lines.append(f"    _anonymous_ = ({', '.join(json.dumps(a) for a in anonymous)},)")
        lines.append("    _fields_ = [")
        members: list[tuple[str, str]] = []
        for field_name, field_type, *_ in cls._fields_:
            lines.append(f'        ("{field_name}", {self.expr(field_type)}),')
            if field_name in anonymous:
                members.extend(self._members.get(field_type, []))
            elif not field_name.startswith("_pad") and field_name != "_size":
                members.append((field_name, self.value_hint(field_type, field=True)))
        lines.append("    ]")
        for attr, value in vars(cls).items():
            if isinstance(value, _Bitfield):
                lines.append(
                    f"    {attr} = Bitfield({json.dumps(attr)}, {value.bit_offset}, {value.bits}, "
                    f"{value.signed})"
                )
        self._members[cls] = members
        if members:
            lines.append("")
            lines.extend(f"    {member}: {hint}" for member, hint in members)
        return "\n".join(lines)
