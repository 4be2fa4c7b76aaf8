"""Map keys and values as Python values, typed by BTF or by a ctypes type.

The kernel moves keys and values as fixed-size bytes; a user holds ints, structs and arrays.
A :class:`ValueCodec` converts one way and the other for one type:

* integers, enums and pointers are ``int``; floats are ``float``;
* structs and unions are BTF-exact ctypes objects (:class:`~pybpf.btf.to_ctypes.CTypesBuilder`),
  so fields read by attribute with the compiler's layout, bitfields included;
* ``char`` arrays are ``bytes`` of their full length (a C string's NUL and what follows it are
  part of the value); other arrays are lists of their elements' values.

Encoding accepts what a user naturally has: an ``int``, a ctypes instance, ``bytes`` of the
exact size, a mapping (field name to value) or a tuple (fields in order) for a struct, a
sequence for an array.  Nothing is truncated or wrapped: an integer that does not fit its
field, an unknown field name or a sequence of the wrong length is a :class:`MapValueError`
naming the field.  ctypes itself would silently keep the low bits of ``1 << 70``.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from pybpf.btf.btf import Btf
from pybpf.btf.to_ctypes import CBitfield, CTypesBuilder
from pybpf.btf.types import BtfArray, BtfEnum, BtfEnum64, BtfFloat, BtfInt, BtfPtr, IntEncoding
from pybpf.errors import MapValueError

CType = Any
"""A ctypes type object (typeshed has no public name for ``type[_CData]``)."""

_CTYPES_VALUES = (ctypes._SimpleCData, ctypes.Structure, ctypes.Union, ctypes.Array)
_SIMPLE_INTS = {
    ctypes.c_int8: True, ctypes.c_int16: True, ctypes.c_int32: True, ctypes.c_int64: True,
    ctypes.c_uint8: False, ctypes.c_uint16: False, ctypes.c_uint32: False,
    ctypes.c_uint64: False, ctypes.c_bool: False,
}
"""The fixed-width ctypes integers (platform aliases such as ``c_long`` are among them)."""


def ctypes_bytes(value: Any) -> bytes:
    """The raw bytes of a ctypes instance."""
    return bytes(memoryview(value).cast("B"))


class ValueCodec:
    """Converts values of one type to and from their ``size`` bytes."""

    size: int
    python_type: str = "bytes"
    """How the decoded value is spelled in a type annotation (for error messages)."""

    def decode(self, raw: bytes) -> Any:
        raise NotImplementedError

    def encode(self, value: object, what: str) -> bytes:
        """``value`` as exactly :attr:`size` bytes; ``what`` names it in errors."""
        if isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value)
        elif isinstance(value, _CTYPES_VALUES):
            raw = ctypes_bytes(value)
        else:
            raise MapValueError(
                f"{what}: expected {self.python_type}, bytes or a ctypes value, "
                f"not {type(value).__name__}"
            )
        if len(raw) != self.size:
            raise MapValueError(f"{what}: {len(raw)} bytes given, the type has {self.size}")
        return raw


class BytesCodec(ValueCodec):
    """Untyped: bytes out; bytes, ints (little-endian, range-checked) or ctypes in."""

    def __init__(self, size: int) -> None:
        self.size = size

    def decode(self, raw: bytes) -> bytes:
        return raw

    def encode(self, value: object, what: str) -> bytes:
        if type(value) is bytes and len(value) == self.size:
            return value
        if isinstance(value, int):
            if self.size > 8:
                raise MapValueError(f"{what}: an int cannot fill {self.size} bytes; pass bytes")
            return int_bytes(int(value), self.size, None, what)
        return super().encode(value, what)


def int_bytes(value: int, size: int, signed: bool | None, what: str) -> bytes:
    """``value`` in ``size`` little-endian bytes, refused when it does not fit.

    ``signed=None`` (untyped bytes) takes either reading: -1 and 2**32 - 1 both fill a u32.
    """
    bits = 8 * size
    low = -(1 << (bits - 1)) if signed or signed is None else 0
    high = (1 << (bits - 1 if signed else bits)) - 1
    if not low <= value <= high:
        kind = "untyped" if signed is None else ("signed" if signed else "unsigned")
        raise MapValueError(f"{what}: {value} does not fit {size} bytes ({kind})")
    return (value % (1 << bits)).to_bytes(size, "little")


class IntCodec(ValueCodec):
    python_type = "int"

    def __init__(self, size: int, signed: bool) -> None:
        self.size = size
        self.signed = signed

    def decode(self, raw: bytes) -> int:
        return int.from_bytes(raw, "little", signed=self.signed)

    def encode(self, value: object, what: str) -> bytes:
        if isinstance(value, int):
            return int_bytes(int(value), self.size, self.signed, what)
        if hasattr(value, "fileno") and not isinstance(value, _CTYPES_VALUES):
            # Prog arrays and map-in-map take file descriptors as their values.
            return int_bytes(value.fileno(), self.size, self.signed, what)
        return super().encode(value, what)


class FloatCodec(ValueCodec):
    python_type = "float"

    def __init__(self, size: int) -> None:
        self.size = size
        self._format = struct.Struct("<f" if size == 4 else "<d")

    def decode(self, raw: bytes) -> float:
        return float(self._format.unpack(raw)[0])

    def encode(self, value: object, what: str) -> bytes:
        if isinstance(value, float | int) and not isinstance(value, bool):
            return self._format.pack(value)
        return super().encode(value, what)


class CharArrayCodec(ValueCodec):
    """``char[N]``: all N bytes out; bytes or str (UTF-8) of at most N bytes in, zero-padded."""

    def __init__(self, size: int) -> None:
        self.size = size

    def decode(self, raw: bytes) -> bytes:
        return raw

    def encode(self, value: object, what: str) -> bytes:
        if isinstance(value, str):
            value = value.encode()
        if isinstance(value, bytes | bytearray) and len(value) <= self.size:
            return bytes(value).ljust(self.size, b"\0")
        return super().encode(value, what)


class ArrayCodec(ValueCodec):
    python_type = "list"

    def __init__(self, elem: ValueCodec, count: int) -> None:
        self.elem = elem
        self.count = count
        self.size = elem.size * count

    def decode(self, raw: bytes) -> list[Any]:
        step = self.elem.size
        return [self.elem.decode(raw[i * step : (i + 1) * step]) for i in range(self.count)]

    def encode(self, value: object, what: str) -> bytes:
        if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray | str):
            if len(value) != self.count:
                raise MapValueError(f"{what}: {len(value)} items given, the array has "
                                    f"{self.count}")  # fmt: skip
            return b"".join(self.elem.encode(v, f"{what}[{i}]") for i, v in enumerate(value))
        return super().encode(value, what)


class CTypeCodec(ValueCodec):
    """Structs and unions (or any ctypes type given explicitly): ctypes objects out."""

    python_type = "a struct"

    def __init__(self, ctype: CType) -> None:
        self.ctype = ctype
        self.size = ctypes.sizeof(ctype)
        self.python_type = f"{ctype.__name__}"

    def decode(self, raw: bytes) -> Any:
        return self.ctype.from_buffer_copy(raw)

    def encode(self, value: object, what: str) -> bytes:
        if isinstance(value, Mapping | tuple) and not isinstance(value, _CTYPES_VALUES):
            return ctypes_bytes(build_struct(self.ctype, value, what))
        return super().encode(value, what)


def build_struct(ctype: CType, value: Mapping[str, object] | tuple[object, ...], what: str) -> Any:
    """A new ``ctype`` instance with the given fields set, each checked against its type."""
    names = field_names(ctype)
    if isinstance(value, tuple):
        if len(value) > len(names):
            raise MapValueError(f"{what}: {len(value)} values for {len(names)} fields")
        value = dict(zip(names, value, strict=False))
    out = ctype()
    for name, field_value in value.items():
        if name not in names:
            raise MapValueError(f"{what}: {ctype.__name__} has no field {name!r} "
                                f"(fields: {', '.join(names)})")  # fmt: skip
        attr = getattr(ctype, name)
        where = f"{what}.{name}"
        if isinstance(attr, CBitfield):
            try:
                setattr(out, name, field_value)
            except (TypeError, ValueError) as exc:
                raise MapValueError(f"{where}: {exc}") from None
            continue
        raw = codec_for_ctype(_field_type(ctype, name)).encode(field_value, where)
        ctypes.memmove(ctypes.addressof(out) + attr.offset, raw, len(raw))
    return out


def field_names(ctype: CType) -> list[str]:
    """The user-visible fields of a struct type: declared fields and bitfield properties, in
    layout order, without padding."""
    declared = [f[0] for f in getattr(ctype, "_fields_", ()) if not _is_padding(f[0])]
    bitfields = [n for n, v in vars(ctype).items() if isinstance(v, CBitfield)]
    return declared + bitfields


def _is_padding(name: str) -> bool:
    return name.startswith("_pad") or name == "_size"


def _field_type(ctype: CType, name: str) -> CType:
    return next(t for n, t, *_ in ctype._fields_ if n == name)


def codec_for_ctype(ctype: CType) -> ValueCodec:
    """The codec of values of an explicit ctypes type."""
    if ctype in _SIMPLE_INTS:
        return IntCodec(ctypes.sizeof(ctype), _SIMPLE_INTS[ctype])
    if isinstance(ctype, type) and issubclass(ctype, ctypes._SimpleCData):
        if ctype in (ctypes.c_float, ctypes.c_double):
            return FloatCodec(ctypes.sizeof(ctype))
        if ctype is ctypes.c_char:
            return CharArrayCodec(1)
        signed = ctype(-1).value == -1
        return IntCodec(ctypes.sizeof(ctype), signed)
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Array):
        elem: Any = ctype._type_
        length: int = ctype._length_  # type: ignore[assignment]
        if elem is ctypes.c_char:
            return CharArrayCodec(length)
        return ArrayCodec(codec_for_ctype(elem), length)
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure | ctypes.Union):
        return CTypeCodec(ctype)
    raise TypeError(f"not a ctypes type: {ctype!r}")


def codec_for_btf(btf: Btf, type_id: int, builder: CTypesBuilder | None = None) -> ValueCodec:
    """The codec of values of BTF type ``type_id`` (typedefs and qualifiers skipped)."""
    builder = builder or CTypesBuilder(btf)
    resolved = btf.resolve(type_id)
    t = btf[resolved]
    if isinstance(t, BtfInt) and t.nr_bits == t.size * 8 and t.size <= 16:
        if t.encoding & IntEncoding.CHAR or (t.size == 1 and t.name in ("char", "signed char")):
            return CharArrayCodec(1)
        return IntCodec(t.size, bool(t.encoding & IntEncoding.SIGNED))
    if isinstance(t, BtfEnum | BtfEnum64):
        return IntCodec(t.size, t.signed)
    if isinstance(t, BtfPtr):
        return IntCodec(8, False)
    if isinstance(t, BtfFloat) and t.size in (4, 8):
        return FloatCodec(t.size)
    if isinstance(t, BtfArray):
        elem = codec_for_btf(btf, t.type, builder)
        if isinstance(elem, CharArrayCodec) and elem.size == 1:
            return CharArrayCodec(t.nelems)
        return ArrayCodec(elem, t.nelems)
    return CTypeCodec(builder.ctype(resolved))
