"""BTF probes: one tiny blob per kind or rule, loaded with ``BPF_BTF_LOAD`` to see if it passes.

The blobs are built with :class:`~pybpf.btf.builder.BtfBuilder` and encoded by the same
encoder as every other BTF pybpf writes, so a probe tests exactly the bytes a sanitized
object would carry.  Each blob holds the kind under test plus only what it must refer to
(an ``int``, a variable), and nothing newer than the feature itself: an old kernel must
refuse a blob because of that feature, not because of a helper type (the ``func`` probe uses
a *static* FUNC, since global linkage is itself a later feature).
"""

from __future__ import annotations

import functools

from pybpf.abi.btf import FuncLinkage, IntEncoding, VarLinkage
from pybpf.btf.builder import BtfBuilder
from pybpf.btf.types import (
    BtfDatasec,
    BtfDeclTag,
    BtfEnum64,
    BtfEnumValue,
    BtfFloat,
    BtfFunc,
    BtfFuncProto,
    BtfInt,
    BtfParam,
    BtfPtr,
    BtfType,
    BtfTypeTag,
    BtfVar,
    BtfVarSecInfo,
)
from pybpf.errors import KernelError
from pybpf.kernel.btf import btf_load

# Type ids below are positions in each blob: [1] is always the first type added.
_INT = BtfInt("int", 4, IntEncoding.SIGNED, 0, 32)


def _func(linkage: FuncLinkage) -> tuple[BtfType, ...]:
    """``int x(int x)`` with ``linkage``."""
    return (
        _INT,  # [1]
        BtfFuncProto(1, (BtfParam("x", 1),)),  # [2] int (int x)
        BtfFunc("x", 2, linkage),  # [3]
    )


def _datasec(name: str) -> tuple[BtfType, ...]:
    """Section ``name`` holding one global ``int x``."""
    return (
        _INT,  # [1]
        BtfVar("x", 1, VarLinkage.GLOBAL_ALLOCATED),  # [2] int x
        BtfDatasec(name, 4, (BtfVarSecInfo(2, 0, 4),)),  # [3] name { x }
    )


_PROBE_TYPES: dict[str, tuple[BtfType, ...]] = {
    "int": (_INT,),
    "func": _func(FuncLinkage.STATIC),
    "func_global": _func(FuncLinkage.GLOBAL),
    "datasec": _datasec(".data"),
    "qmark_datasec": _datasec("?.data"),
    "float": (BtfFloat("float", 4),),
    "decl_tag": (
        _INT,  # [1]
        BtfVar("x", 1, VarLinkage.GLOBAL_ALLOCATED),  # [2]
        BtfDeclTag("tag", 2, -1),  # [3] tag on x itself
    ),
    "type_tag": (
        _INT,  # [1]
        BtfTypeTag("tag", 1),  # [2] int __tag
        BtfPtr(2),  # [3] int __tag *
    ),
    "enum64": (BtfEnum64("e", 8, (BtfEnumValue("x", 1 << 40),)),),  # needs the high word
}
BTF_KINDS = tuple(_PROBE_TYPES)
"""Names accepted by :func:`btf_kind_supported` (BTF kinds, and the rules about them)."""


def probe_blob(kind: str) -> bytes:
    """The raw BTF that :func:`btf_kind_supported` loads for ``kind``."""
    types = _PROBE_TYPES.get(kind)
    if types is None:
        raise ValueError(f"no probe for BTF kind {kind!r}; known: {', '.join(BTF_KINDS)}")
    builder = BtfBuilder()
    for t in types:
        builder.add(t)
    return builder.encode()


@functools.cache
def btf_kind_supported(kind: str) -> bool:
    """Whether the kernel accepts BTF using ``kind`` (one of :data:`BTF_KINDS`)."""
    data = probe_blob(kind)
    try:
        btf_fd, _ = btf_load(data)
    except KernelError:
        return False
    btf_fd.close()
    return True


def has_btf() -> bool:
    """Whether ``BPF_BTF_LOAD`` works at all (an ``int`` type)."""
    return btf_kind_supported("int")
