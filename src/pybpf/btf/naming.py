"""Naming a BTF type for people: in error messages, ``object show`` and skeleton docstrings.

Three spellings, each with its audience:

- :func:`describe`: ``STRUCT 'foo'`` / ``anonymous PTR``, the kind and name parse and layout
  errors use (the kind matters there more than the C spelling);
- :func:`describe_with_id`: ``[12] struct foo``, libbpf's CO-RE log style;
- :func:`c_spelling`: a C-ish spelling (``const struct pair *``, ``char[16]``).

They used to be written four times over (the parser, CO-RE, ``object show`` and the variable
codecs), each slightly different; the differences that users can see (in goldens, messages and
generated skeletons) are kept as the two :func:`c_spelling` styles rather than unified away.
"""

from __future__ import annotations

from pybpf.btf.types import (
    VOID,
    BtfArray,
    BtfConst,
    BtfEnum,
    BtfEnum64,
    BtfFuncProto,
    BtfFwd,
    BtfPtr,
    BtfRestrict,
    BtfStruct,
    BtfTypedef,
    BtfTypeTag,
    BtfUnion,
    BtfVolatile,
)
from pybpf.errors import BpfError, BtfError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pybpf.btf.btf import Btf

MAX_SPELLING_DEPTH = 16
"""Pointer/array/qualifier hops spelled before giving up with ``...`` (a reference cycle)."""

_QUALIFIER_WORDS = {BtfConst: "const", BtfVolatile: "volatile", BtfRestrict: "restrict"}


def describe(btf: Btf, type_id: int) -> str:
    """``STRUCT 'foo'`` or ``anonymous PTR``: how parse and layout errors name a type."""
    name = btf.name_of(type_id)
    kind = btf.kind_of(type_id).name
    return f"{kind} '{name}'" if name else f"anonymous {kind}"


def describe_with_id(btf: Btf, type_id: int) -> str:
    """``[id] kind name`` as libbpf's CO-RE messages name a type (``[7] <invalid>`` if bad)."""
    if type_id == VOID:
        return f"[{type_id}] void"
    try:
        t = btf[type_id]
    except BtfError:
        return f"[{type_id}] <invalid>"
    return f"[{type_id}] {t.kind.name.lower()} {t.name or '<anon>'}"


def c_spelling(btf: Btf | None, type_id: int, *, qualifiers: bool = True) -> str:
    """A C-ish spelling of ``type_id``: ``struct pair``, ``const int *``, ``char[16]``.

    ``qualifiers=True`` is ``object show``'s spelling: it keeps ``const``/``volatile``/
    ``restrict``, spells forward declarations and 64-bit enums with their keyword, says
    ``function`` for prototypes and never fails (``#id`` for what it cannot name, including
    a missing BTF).  ``qualifiers=False`` is the short spelling of variable codecs, shown in
    :class:`~pybpf.errors.VariableError` messages and generated skeletons: qualifiers dropped,
    only ``struct``/``union``/``enum`` keywords, ``(anon)`` for the unnamed; a bad id raises.

    Iterative rather than recursive: pointers, arrays and qualifiers only add words around
    the innermost name, so the spelling is prefixes + name + suffixes in reverse.
    """
    prefixes: list[str] = []
    suffixes: list[str] = []
    depth = 0
    while True:
        if type_id == VOID:
            core = "void"
            break
        if btf is None:
            core = f"#{type_id}"
            break
        if depth > MAX_SPELLING_DEPTH:
            core = "..."
            break
        depth += 1
        if qualifiers:
            try:
                t = btf[type_id]
            except BpfError:
                core = f"#{type_id}"
                break
        else:
            t = btf[type_id]
        if isinstance(t, BtfPtr):
            suffixes.append(" *")
            type_id = t.type
        elif isinstance(t, BtfArray):
            suffixes.append(f"[{t.nelems}]")
            type_id = t.type
        elif isinstance(t, BtfConst | BtfVolatile | BtfRestrict | BtfTypeTag):
            if qualifiers and not isinstance(t, BtfTypeTag):
                prefixes.append(_QUALIFIER_WORDS[type(t)] + " ")
            type_id = t.type
        else:
            core = _spell_named(t, type_id, qualifiers)
            break
    return "".join(prefixes) + core + "".join(reversed(suffixes))


def _spell_named(t: object, type_id: int, qualifiers: bool) -> str:
    """The innermost part of a spelling: a type that is not a pointer, array or qualifier."""
    if isinstance(t, BtfStruct | BtfUnion | BtfEnum) or (qualifiers and isinstance(t, BtfEnum64)):
        keyword = "enum" if isinstance(t, BtfEnum | BtfEnum64) else t.kind.name.lower()
        return f"{keyword} {t.name or '(anon)'}"
    name: str = getattr(t, "name", "")
    if not qualifiers:
        return name or "(anon)"
    if isinstance(t, BtfFwd):
        return f"{'union' if t.is_union else 'struct'} {t.name}"
    if isinstance(t, BtfFuncProto):
        return "function"
    if isinstance(t, BtfTypedef):
        return t.name
    return name or f"#{type_id}"
