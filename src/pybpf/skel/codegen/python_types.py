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
import keyword
import re
from collections.abc import Iterable

from pybpf.btf.to_ctypes import CBitfield, CType, python_name

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


SOFT_KEYWORDS = frozenset({"_", "case", "match"})
"""Python 3.11's soft keywords, pinned: ``keyword.softkwlist`` grows with the interpreter (3.12
adds ``type``), and generated output must depend only on the object."""


def py_identifier(name: str, reserved: frozenset[str] = frozenset()) -> str:
    """An object's name as an attribute of a generated class: a checked identifier.

    :func:`~pybpf.btf.to_ctypes.python_name` makes it an identifier (soft keywords get a
    ``_`` too, as keywords do); on top of that, a name starting with ``__`` (which Python
    mangles inside a class body, or a dunder with a meaning) or with ``_pybpf`` (the runtime's
    own attributes) has its leading underscores moved to the end: ``__x`` -> ``x__``.
    """
    base = python_name(name)
    if base.startswith(("__", "_pybpf")):
        core = base.lstrip("_")
        base = core + "_" * (len(base) - len(core)) if core else "_"
    return python_name(base, reserved | SOFT_KEYWORDS)


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``... whichever is first neither taken nor a keyword
    (a camel-cased ``none`` is ``None``); the result is taken from then on."""
    name, n = base, 1
    while name in taken or keyword.iskeyword(name):
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def assign_identifiers(
    names: Iterable[str], reserved: frozenset[str] = frozenset()
) -> dict[str, str]:
    """An attribute for each of ``names`` (distinct strings), unique among them.

    A name that is a usable identifier as it is keeps it; then, in the order given, every other
    name gets :func:`py_identifier`'s form, numbered when that is already taken (``a-b``
    becomes ``a_b_2`` next to a real ``a_b``).  Same names in, same identifiers out.
    """
    ordered = list(names)
    result = {n: n for n in ordered if py_identifier(n, reserved) == n}
    taken = set(result)
    for n in ordered:
        if n not in result:
            result[n] = unique_name(py_identifier(n, reserved), taken)
    return result


def py_string(text: str) -> str:
    """``text`` as a Python string literal that evaluates to exactly ``text``.

    ``repr`` escapes quotes, backslashes, line breaks and everything unprintable (a name that
    was not UTF-8 keeps its ``surrogateescape`` code points as ``\\udcXX``); double quotes are
    used where that needs no escape, as in the rest of the module.
    """
    literal = repr(text)
    if literal[0] == "'" and '"' not in text:
        return f'"{literal[1:-1]}"'
    return literal


def doc_text(text: str) -> str:
    """``text`` for a docstring or a comment, where nothing may end either early.

    Docstrings and comments only describe: quotes, backslashes and unprintable characters
    (line breaks among them) become ``?`` rather than escapes.
    """
    return "".join(c if c.isprintable() and c not in '"\\' else "?" for c in text)


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

    def require(self, ctype: CType) -> None:
        """Emit ``ctype``'s class (and every class it contains) unless already done."""
        if is_array(ctype):
            self.require(ctype._type_)
        elif is_composite(ctype) and ctype not in self._names:
            for _, field_type, *_ in ctype._fields_:
                self.require(field_type)
            raw = ctype.__name__
            base = camel_case(raw) if not raw.startswith("anon_") else "Anon"
            self._names[ctype] = unique_name(base, self._taken)
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
            name = unique_name(f"_Array{len(self._arrays) + 1}", self._taken)
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
        """The class statement of ``cls``.

        Field and bitfield names are :func:`~pybpf.btf.to_ctypes.python_name` identifiers, and
        still written as string literals where a string will do.  A bitfield whose name Python
        would mangle in a class body (``__x``) is set on the class after it, by name.
        """
        name = self._names[cls]
        base = "ctypes.Union" if issubclass(cls, ctypes.Union) else "ctypes.Structure"
        doc = doc_text((cls.__doc__ or cls.__name__).strip())
        lines = [
            f"class {name}({base}):",
            f'    """{doc} ({ctypes.sizeof(cls)} bytes)."""',
            "",
            "    _pack_ = 1",
            f"    _layout_ = {py_string(getattr(cls, '_layout_', 'ms'))}",
        ]
        anonymous = list(getattr(cls, "_anonymous_", ()))
        if anonymous:
            lines.append(f"    _anonymous_ = ({', '.join(py_string(a) for a in anonymous)},)")
        lines.append("    _fields_ = [")
        members: list[tuple[str, str]] = []
        for field_name, field_type, *_ in cls._fields_:
            lines.append(f"        ({py_string(field_name)}, {self.expr(field_type)}),")
            if field_name in anonymous:
                members.extend(self._members.get(field_type, []))
            elif not field_name.startswith("_pad") and field_name != "_size":
                members.append((field_name, self.value_hint(field_type, field=True)))
        lines.append("    ]")
        after: list[str] = []
        for attr, value in vars(cls).items():
            if isinstance(value, CBitfield):
                make = (
                    f"Bitfield({py_string(attr)}, {value.bit_offset}, {value.bits}, {value.signed})"
                )
                if _mangled(attr):
                    after.append(f"setattr({name}, {py_string(attr)}, {make})")
                else:
                    lines.append(f"    {attr} = {make}")
        self._members[cls] = members
        annotated = [(member, hint) for member, hint in members if not _mangled(member)]
        if annotated:
            lines.append("")
            lines.extend(f"    {member}: {hint}" for member, hint in annotated)
        return "\n".join([*lines, *after])


def _mangled(name: str) -> bool:
    """Whether Python rewrites ``name`` inside a class body (``__x`` -> ``_Class__x``)."""
    return name.startswith("__") and not name.endswith("__")
