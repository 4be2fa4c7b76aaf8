"""Reading and writing one global variable in a data section's memory.

A :class:`VarCodec` is built once per variable from BTF and then does the least work per
access: scalars go through a precompiled :class:`struct.Struct`, char arrays through slices,
and everything else (structs, unions, other arrays) comes back as a *live* ctypes view over the
section's memory, so ``skel.data.config.limit = 3`` writes straight into the map.

The memory is whatever buffer the owning map exposes (its initial image before load, the
kernel map's mmap after); codecs never hold it, so one codec serves before and after load.
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pybpf.btf.btf import Btf
from pybpf.btf.naming import c_spelling
from pybpf.btf.to_ctypes import CTypesBuilder
from pybpf.btf.types import (
    BtfArray,
    BtfEnum,
    BtfEnum64,
    BtfFloat,
    BtfInt,
    BtfPtr,
    IntEncoding,
)
from pybpf.errors import VariableError as VariableError

Buffer = bytearray | memoryview | Any
"""A writable buffer (bytearray, mmap, memoryview)."""


class ValueKind(Enum):
    INT = "int"
    BOOL = "bool"
    FLOAT = "float"
    BIGINT = "bigint"
    CHARS = "chars"
    VIEW = "view"


_INT_FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}
_FLOAT_FORMATS = {4: "f", 8: "d"}


@dataclass(frozen=True, slots=True)
class VarCodec:
    """How to read/write one variable: where it is, what Python type it has."""

    name: str
    offset: int
    size: int
    kind: ValueKind
    packer: struct.Struct | None
    ctype: Any
    type_name: str
    signed: bool = False

    def read(self, memory: Buffer, *, live: bool = True) -> Any:
        """The variable's value; for structs/arrays a live ctypes view when ``live``."""
        kind = self.kind
        if self.packer is not None:
            value = self.packer.unpack_from(memory, self.offset)[0]
            return bool(value) if kind is ValueKind.BOOL else value
        if kind is ValueKind.CHARS:
            raw = bytes(memory[self.offset : self.offset + self.size])
            return raw.split(b"\0", 1)[0]
        if kind is ValueKind.BIGINT:
            raw = bytes(memory[self.offset : self.offset + self.size])
            return int.from_bytes(raw, "little", signed=self.signed)
        if live:
            return self.ctype.from_buffer(memory, self.offset)
        return self.ctype.from_buffer_copy(memory, self.offset)

    def write(self, memory: Buffer, value: Any) -> None:
        """Store ``value``, converting and range-checking it like C assignment would not."""
        kind = self.kind
        try:
            if self.packer is not None:
                if kind is ValueKind.BOOL:
                    value = bool(value)
                elif kind is ValueKind.INT and not isinstance(value, int):
                    raise TypeError(f"expected int, got {type(value).__name__}")
                self.packer.pack_into(memory, self.offset, value)
                return
            if kind is ValueKind.CHARS:
                data = value.encode() if isinstance(value, str) else bytes(value)
                if len(data) > self.size:
                    raise ValueError(f"{len(data)} bytes do not fit char[{self.size}]")
                memory[self.offset : self.offset + self.size] = data.ljust(self.size, b"\0")
                return
            if kind is ValueKind.BIGINT:
                memory[self.offset : self.offset + self.size] = int(value).to_bytes(
                    self.size, "little", signed=self.signed
                )
                return
            blob = bytes(value)
            if len(blob) != self.size:
                raise ValueError(f"expected {self.size} bytes ({self.type_name}), got {len(blob)}")
            memory[self.offset : self.offset + self.size] = blob
        except (struct.error, TypeError, ValueError, OverflowError) as exc:
            raise VariableError(f"cannot set {self.name} ({self.type_name}): {exc}") from None


def codec_for(
    btf: Btf,
    builder: CTypesBuilder | None,
    name: str,
    type_id: int,
    offset: int,
    size: int | None = None,
    *,
    ctype: Any = None,
) -> VarCodec:
    """Build the codec of variable ``name`` of BTF type ``type_id`` at byte ``offset``.

    Views are made of ``ctype`` when given (a generated module's own class, checked here to
    have the BTF size), else of a class ``builder`` makes from ``btf``.
    """
    resolved = btf.resolve(type_id)
    real_size = btf.size_of(type_id)
    if size is not None and size < real_size:
        raise VariableError(f"{name}: section gives {size} bytes, its type needs {real_size}")
    t = btf[resolved]
    tname = type_name(btf, type_id)
    if isinstance(t, BtfInt):
        if t.encoding & IntEncoding.BOOL and t.size == 1:
            return VarCodec(name, offset, 1, ValueKind.BOOL, struct.Struct("<?"), None, tname)
        signed = bool(t.encoding & IntEncoding.SIGNED)
        fmt = _INT_FORMATS.get(t.size)
        if fmt is None:
            return VarCodec(name, offset, t.size, ValueKind.BIGINT, None, None, tname, signed)
        packer = struct.Struct("<" + (fmt if signed else fmt.upper()))
        return VarCodec(name, offset, t.size, ValueKind.INT, packer, None, tname, signed)
    if isinstance(t, BtfEnum | BtfEnum64):
        fmt = _INT_FORMATS.get(t.size, "q")
        packer = struct.Struct("<" + (fmt if t.signed else fmt.upper()))
        return VarCodec(name, offset, t.size, ValueKind.INT, packer, None, tname, t.signed)
    if isinstance(t, BtfPtr):
        return VarCodec(name, offset, 8, ValueKind.INT, struct.Struct("<Q"), None, tname)
    if isinstance(t, BtfFloat) and t.size in _FLOAT_FORMATS:
        packer = struct.Struct("<" + _FLOAT_FORMATS[t.size])
        return VarCodec(name, offset, t.size, ValueKind.FLOAT, packer, None, tname)
    if isinstance(t, BtfArray):
        elem = btf[btf.resolve(t.type)]
        if isinstance(elem, BtfInt) and elem.size == 1 and (
            elem.encoding & IntEncoding.CHAR or elem.name in ("char", "signed char")
        ):
            return VarCodec(name, offset, real_size, ValueKind.CHARS, None, None, tname)
    if ctype is None:
        ctype = (builder or CTypesBuilder(btf)).ctype(type_id)
    if ctypes.sizeof(ctype) != real_size:
        raise VariableError(
            f"{name} ({tname}): its ctypes class has {ctypes.sizeof(ctype)} bytes, the "
            f"object's BTF says {real_size}"
        )
    return VarCodec(name, offset, real_size, ValueKind.VIEW, None, ctype, tname)


def type_name(btf: Btf, type_id: int) -> str:
    """A short C-like name for messages: ``struct config``, ``int[4]``, ``__u64``."""
    return c_spelling(btf, type_id, qualifiers=False)
