"""The BTF type model: one frozen value class per BTF kind.

Types refer to each other by *type id* (an ``int``), exactly as BTF does on disk, instead of
holding Python references.  That keeps decoding lazy (a type is only materialised when asked
for), makes deduplication and re-encoding a matter of rewriting integers, and lets split BTF
(kernel modules) refer into a base BTF without copying it.

Type id 0 is ``void`` and is never materialised; :data:`VOID` stands for it.
"""

from __future__ import annotations

from operator import attrgetter

# The kinds and linkage numbers are linux/btf.h ABI, defined with the other BTF layouts; the
# model re-exports them because every user of a type asks for its kind.
from pybpf.abi.btf import BtfKind as BtfKind
from pybpf.abi.btf import FuncLinkage as FuncLinkage
from pybpf.abi.btf import IntEncoding as IntEncoding
from pybpf.abi.btf import VarLinkage as VarLinkage

TYPE_CHECKING = False
"""``typing`` costs ~7 ms to import; mypy honours any constant named ``TYPE_CHECKING``."""
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_kwargs: object) -> Any:
        return lambda cls: cls


class _ValueFields:
    """``__dataclass_fields__``, built on first use so that the model needs no ``dataclasses``.

    With it, :func:`dataclasses.fields`, :func:`dataclasses.replace`, :func:`dataclasses.asdict`
    and :func:`dataclasses.is_dataclass` work on the model as on any dataclass.
    """

    def __get__(self, instance: object, owner: _ValueType) -> dict[str, Any]:
        import dataclasses

        spec: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for name in owner._fields:
            annotation = owner.__annotations__[name]
            if name in owner._defaults:
                spec.append((name, annotation, dataclasses.field(default=owner._defaults[name])))
            else:
                spec.append((name, annotation))
        shadow = dataclasses.make_dataclass(owner.__name__, spec, frozen=True)
        fields: dict[str, Any] = shadow.__dataclass_fields__  # type: ignore[attr-defined]
        type.__setattr__(owner, "__dataclass_fields__", fields)  # cached for the next call
        return fields


def _make_init(cls: type, fields: tuple[str, ...], defaults: dict[str, object]) -> Any:
    """The ``__init__`` of a value class: stores each argument through its slot descriptor."""
    namespace: dict[str, Any] = {f"_set_{f}": getattr(cls, f).__set__ for f in fields}
    namespace.update({f"_default_{f}": value for f, value in defaults.items()})
    params = ", ".join(f"{f}=_default_{f}" if f in defaults else f for f in fields)
    body = "\n".join(f"    _set_{f}(self, {f})" for f in fields)
    exec(f"def __init__(self, {params}):\n{body}\n", namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


@dataclass_transform(frozen_default=True)
class _ValueType(type):
    """Metaclass of the model: frozen, slotted value classes built from their annotations.

    Why not ``@dataclass(frozen=True, slots=True)``: that decorator generates half a dozen
    methods per class from source text and then builds every class a second time to add slots,
    which made importing this module cost ~11 ms (plus ~6 ms for ``dataclasses`` itself), more
    than a vmlinux lookup; and its frozen ``__init__`` is slow, which every decoded type pays.
    Here a class is built once, gets one generated ``__init__`` that writes the slots directly,
    and shares equality, hashing, ``repr`` and frozen-ness (same semantics as a frozen
    dataclass, :exc:`dataclasses.FrozenInstanceError` included) from :class:`_Value`.
    """

    _fields: tuple[str, ...]
    """The annotated fields, in order (also ``__match_args__``)."""
    _defaults: dict[str, object]
    _values: Callable[[object], tuple[object, ...]]
    """The tuple of an instance's field values, which equality and hashing compare."""

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]
    ) -> _ValueType:
        fields = tuple(namespace.get("__annotations__", ()))
        defaults = {f: namespace.pop(f) for f in fields if f in namespace}
        namespace["__slots__"] = fields
        namespace["__match_args__"] = fields
        cls = super().__new__(mcls, name, bases, namespace)
        cls._fields = fields
        cls._defaults = defaults
        if fields:
            cls._values = attrgetter(*fields) if len(fields) > 1 else _one_tuple(fields[0])
            cls.__init__ = _make_init(cls, fields, defaults)  # type: ignore[misc]
        return cls


def _one_tuple(field: str) -> Callable[[object], tuple[object, ...]]:
    get = attrgetter(field)
    return lambda value: (get(value),)


def _frozen(name: str) -> AttributeError:
    from dataclasses import FrozenInstanceError

    return FrozenInstanceError(f"cannot assign to field {name!r}")


class _Value(metaclass=_ValueType):
    """Shared behaviour of the model's classes, as a frozen dataclass would define it."""

    __dataclass_fields__ = _ValueFields()

    def __eq__(self, other: object) -> bool:
        cls = self.__class__
        if other.__class__ is cls:
            return cls._values(self) == cls._values(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.__class__._values(self))

    def __repr__(self) -> str:
        values = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__class__._fields)
        return f"{self.__class__.__qualname__}({values})"

    def __setattr__(self, name: str, value: object) -> None:
        raise _frozen(name)

    def __delattr__(self, name: str) -> None:
        raise _frozen(name)

    def __getstate__(self) -> list[object]:
        return list(self.__class__._values(self))

    def __setstate__(self, state: list[object]) -> None:
        for name, value in zip(self.__class__._fields, state, strict=True):
            object.__setattr__(self, name, value)


VOID = 0
"""The type id of ``void``."""


class BtfInt(_Value):
    name: str
    size: int
    encoding: IntEncoding
    bits_offset: int
    nr_bits: int
    kind = BtfKind.INT


class BtfPtr(_Value):
    type: int
    name: str = ""
    kind = BtfKind.PTR


class BtfArray(_Value):
    type: int
    index_type: int
    nelems: int
    name: str = ""
    kind = BtfKind.ARRAY


class BtfMember(_Value):
    """A struct/union member.  ``offset`` is in *bits*; ``bitfield_size`` is 0 for non-bitfields."""

    name: str
    type: int
    offset: int
    bitfield_size: int = 0


class BtfStruct(_Value):
    """STRUCT.  ``kind_flag`` says members encode bitfield sizes (kernel's bitfield encoding)."""

    name: str
    size: int
    members: tuple[BtfMember, ...]
    kind_flag: bool = False
    kind = BtfKind.STRUCT


class BtfUnion(_Value):
    name: str
    size: int
    members: tuple[BtfMember, ...]
    kind_flag: bool = False
    kind = BtfKind.UNION


class BtfEnumValue(_Value):
    name: str
    value: int


class BtfEnum(_Value):
    """ENUM with 32-bit values; ``signed`` is the kind_flag.  Values are stored as decoded."""

    name: str
    size: int
    values: tuple[BtfEnumValue, ...]
    signed: bool = False
    kind = BtfKind.ENUM


class BtfEnum64(_Value):
    name: str
    size: int
    values: tuple[BtfEnumValue, ...]
    signed: bool = False
    kind = BtfKind.ENUM64


class BtfFwd(_Value):
    name: str
    is_union: bool = False
    kind = BtfKind.FWD


class BtfTypedef(_Value):
    name: str
    type: int
    kind = BtfKind.TYPEDEF


class BtfVolatile(_Value):
    type: int
    name: str = ""
    kind = BtfKind.VOLATILE


class BtfConst(_Value):
    type: int
    name: str = ""
    kind = BtfKind.CONST


class BtfRestrict(_Value):
    type: int
    name: str = ""
    kind = BtfKind.RESTRICT


class BtfFunc(_Value):
    """FUNC: ``type`` is its FUNC_PROTO."""

    name: str
    type: int
    linkage: FuncLinkage = FuncLinkage.STATIC
    kind = BtfKind.FUNC


class BtfParam(_Value):
    name: str
    type: int


class BtfFuncProto(_Value):
    """FUNC_PROTO.  A trailing param with type 0 and no name means ``...``."""

    return_type: int
    params: tuple[BtfParam, ...]
    name: str = ""
    kind = BtfKind.FUNC_PROTO


class BtfVar(_Value):
    name: str
    type: int
    linkage: VarLinkage = VarLinkage.STATIC
    kind = BtfKind.VAR


class BtfVarSecInfo(_Value):
    """One DATASEC entry: VAR (or FUNC for ksyms) ``type`` at byte ``offset``, ``size`` bytes."""

    type: int
    offset: int
    size: int


class BtfDatasec(_Value):
    name: str
    size: int
    vars: tuple[BtfVarSecInfo, ...]
    kind = BtfKind.DATASEC


class BtfFloat(_Value):
    name: str
    size: int
    kind = BtfKind.FLOAT


class BtfDeclTag(_Value):
    """DECL_TAG.  ``component_idx`` is -1 for the whole type, else a member/param index.

    ``kind_flag`` set means the tag is an ``__attribute__`` rather than a btf_decl_tag.
    """

    name: str
    type: int
    component_idx: int
    kind_flag: bool = False
    kind = BtfKind.DECL_TAG


class BtfTypeTag(_Value):
    name: str
    type: int
    kind_flag: bool = False
    kind = BtfKind.TYPE_TAG


BtfType = (
    BtfInt
    | BtfPtr
    | BtfArray
    | BtfStruct
    | BtfUnion
    | BtfEnum
    | BtfEnum64
    | BtfFwd
    | BtfTypedef
    | BtfVolatile
    | BtfConst
    | BtfRestrict
    | BtfFunc
    | BtfFuncProto
    | BtfVar
    | BtfDatasec
    | BtfFloat
    | BtfDeclTag
    | BtfTypeTag
)
"""Any materialised BTF type."""

Composite = BtfStruct | BtfUnion
Modifier = BtfVolatile | BtfConst | BtfRestrict | BtfTypeTag

MODIFIER_KINDS = frozenset({BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG})
"""Kinds that qualify another type without changing its layout."""
