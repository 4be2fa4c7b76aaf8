"""BTF-defined map definitions, as far as the linker must compare them.

A map declared in two files (an ``extern`` declaration and its definition, or two ``__weak``
definitions) must describe the same map, or the program using the extern would be verified
against a map it does not get.  The definition is a VAR whose type is a struct of marker
members, decoded here the way libbpf's ``parse_btf_map_def`` reads them:
``__uint(name, N)`` is a pointer to an array of N elements, ``__type(name, T)`` a pointer to
T, ``__array(values, T)`` an array of pointers to T (for map-in-map, T is the inner map's
definition).  Comparison follows libbpf's ``map_defs_match``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pybpf.btf.btf import Btf
from pybpf.btf.types import BtfArray, BtfPtr, BtfStruct, BtfVar
from pybpf.errors import BpfError
from pybpf.linker.btf_match import btf_types_match

_UINT_FIELDS = (
    "type",
    "max_entries",
    "map_flags",
    "numa_node",
    "pinning",
    "map_extra",
    "key_size",
    "value_size",
)


@dataclass(frozen=True, slots=True)
class MapDef:
    """The parts of a map definition that must agree between files (type ids in ``btf``)."""

    btf: Btf
    uints: dict[str, int]
    key_type: int
    value_type: int
    inner: MapDef | None

    def key_size(self) -> int | None:
        if self.key_type:
            return self.btf.size_of(self.key_type)
        return self.uints.get("key_size")

    def value_size(self) -> int | None:
        if self.value_type:
            return self.btf.size_of(self.value_type)
        return self.uints.get("value_size")


def parse_map_def(btf: Btf, var_type_id: int) -> MapDef:
    """Decode the map definition behind VAR ``var_type_id``; raises ``ValueError`` if it is
    not one."""
    var = btf[var_type_id]
    if not isinstance(var, BtfVar):
        raise ValueError(f"type {var_type_id} is not a VAR")
    return _parse_struct(btf, var.type, inner_allowed=True)


def _parse_struct(btf: Btf, type_id: int, *, inner_allowed: bool) -> MapDef:
    t = btf[btf.resolve(type_id)]
    if not isinstance(t, BtfStruct):
        raise ValueError(f"map definition is a {t.kind.name}, not a struct")
    uints: dict[str, int] = {}
    key_type = value_type = 0
    inner: MapDef | None = None
    for m in t.members:
        mt = btf[btf.resolve(m.type)]
        if m.name in _UINT_FIELDS:
            arr = btf[btf.resolve(mt.type)] if isinstance(mt, BtfPtr) else None
            if not isinstance(arr, BtfArray):
                raise ValueError(f"map field {m.name!r} is not __uint()")
            uints[m.name] = arr.nelems
        elif m.name in ("key", "value"):
            if not isinstance(mt, BtfPtr):
                raise ValueError(f"map field {m.name!r} is not __type()")
            if m.name == "key":
                key_type = mt.type
            else:
                value_type = mt.type
        elif m.name == "values":
            if not isinstance(mt, BtfArray):
                raise ValueError("map field 'values' is not __array()")
            ptr = btf[btf.resolve(mt.type)]
            if not isinstance(ptr, BtfPtr):
                raise ValueError("map field 'values' is not an array of pointers")
            pointee = btf[btf.resolve(ptr.type)] if ptr.type else None
            if isinstance(pointee, BtfStruct) and inner_allowed:
                inner = _parse_struct(btf, ptr.type, inner_allowed=False)
        else:
            raise ValueError(f"unknown map field {m.name!r}")
    return MapDef(btf, uints, key_type, value_type, inner)


def map_defs_differ(a: MapDef, b: MapDef) -> str | None:
    """``None`` if ``a`` and ``b`` define the same map, else which part differs."""
    if a.uints.get("type", 0) != b.uints.get("type", 0):
        return f"type {a.uints.get('type', 0)} vs {b.uints.get('type', 0)}"
    try:
        sizes = (a.key_size(), b.key_size(), a.value_size(), b.value_size())
    except BpfError as exc:
        return f"key/value size cannot be computed: {exc}"
    if sizes[0] != sizes[1]:
        return f"key_size {sizes[0]} vs {sizes[1]}"
    for what, ida, idb in (("key", a.key_type, b.key_type), ("value", a.value_type, b.value_type)):
        if bool(ida) != bool(idb):
            return f"{what} type given in one definition only"
        if ida:
            reason = btf_types_match(a.btf, ida, b.btf, idb, exact=True)
            if reason:
                return f"{what} type: {reason}"
    if sizes[2] != sizes[3]:
        return f"value_size {sizes[2]} vs {sizes[3]}"
    for name in ("max_entries", "map_flags", "numa_node", "pinning", "map_extra"):
        if a.uints.get(name, 0) != b.uints.get(name, 0):
            return f"{name} {a.uints.get(name, 0)} vs {b.uints.get(name, 0)}"
    if (a.inner is None) != (b.inner is None):
        return "inner map given in one definition only"
    if a.inner is not None and b.inner is not None:
        reason = map_defs_differ(a.inner, b.inner)
        if reason:
            return f"inner map {reason}"
    return None
