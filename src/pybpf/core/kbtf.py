"""Opening kernel BTF without paying for the type walk twice.

:class:`~pybpf.btf.btf.Btf` opens a blob by walking every type once to record where each one
starts: ~20 ms for vmlinux's 127,000 types, more than everything else CO-RE does for a
typical program.  The walk's result depends only on the bytes, so it can be cached on disk
(:mod:`pybpf.core.cache`) and handed back: :class:`IndexedBtf` is a ``Btf`` that accepts a
precomputed walk and otherwise behaves identically.

The walk's result is ``Btf``'s own business (its representation has changed before), so it is
treated as opaque: :data:`LAYOUT` names the representation, found by walking a two-type probe
blob when this module is imported, and is part of every cache key, so a cache written by
another representation is never handed back.  :meth:`IndexedBtf.type_offsets` converts it
to byte offsets for the name index, for the representations known here.
"""

from __future__ import annotations

import itertools
import operator
import struct
import sys
from array import array
from collections.abc import Sequence

from pybpf.abi.btf import TYPE_HEADER_SIZE, pack_header
from pybpf.btf.btf import Btf
from pybpf.btf.types import BtfKind


class IndexedBtf(Btf):
    """A :class:`Btf` that can be opened with a cached walk, and reports its walk."""

    __slots__ = ("_byte_offsets", "_preset", "_walk", "_walk_begin")

    def __init__(
        self,
        data: bytes,
        *,
        base: Btf | None = None,
        file: str | None = None,
        section: str | None = None,
        walk: array[int] | None = None,
    ) -> None:
        self._preset = walk
        self._walk: array[int] | None = None
        self._walk_begin = 0
        self._byte_offsets: array[int] | None = None
        super().__init__(data, base=base, file=file, section=section)

    def _index_types(self, begin: int, end: int) -> array[int]:
        self._walk_begin = begin
        preset, self._preset = self._preset, None
        if preset is not None and _plausible(preset, begin, end):
            walk = preset
        else:
            walk = super()._index_types(begin, end)
        self._walk = walk
        return walk

    @property
    def walk(self) -> array[int]:
        """The base class's record of where types start, for the cache (opaque)."""
        assert self._walk is not None
        return self._walk

    @property
    def data(self) -> bytes:
        """The whole BTF blob."""
        return self._data

    def name_offsets(self) -> list[int]:
        """The ``name_off`` of every type, in id order (a C-level pass over the words)."""
        words = _u32_words(self._data, self.big_endian)
        if LAYOUT == "words" and not self._walk_begin & 3:
            first = itertools.repeat(self._walk_begin >> 2)
            return list(map(words.__getitem__, map(operator.add, self.walk, first)))
        return [words[off >> 2] for off in self.type_offsets()]

    def type_offsets(self) -> array[int]:
        """Byte offset in :attr:`data` of every type (index ``i``: type ``start_id + i``)."""
        if self._byte_offsets is None:
            walk, begin = self.walk, self._walk_begin
            if LAYOUT == "bytes":
                offsets = walk
            elif LAYOUT == "words":
                offsets = array("I", [begin + 4 * w for w in walk])
            else:
                offsets = array("I", [self._raw_offset(i) for i in self.type_ids()])
            self._byte_offsets = offsets
        return self._byte_offsets


def _u32_words(data: bytes, big_endian: bool) -> Sequence[int]:
    """``data`` as 32-bit words of the BTF's byte order (a zero-copy view when native)."""
    if big_endian == (sys.byteorder == "big"):
        return memoryview(data)[: len(data) & ~3].cast("I")
    swapped = array("I")
    swapped.frombytes(data[: len(data) & ~3])
    swapped.byteswap()
    return swapped


def _plausible(walk: array[int], begin: int, end: int) -> bool:
    """A cheap sanity check of a cached walk against the section it claims to describe."""
    if not walk:
        return begin == end
    if LAYOUT == "words":
        return walk[0] == 0 and begin + 4 * walk[-1] + TYPE_HEADER_SIZE <= end
    if LAYOUT == "bytes":
        return walk[0] == begin and walk[-1] + TYPE_HEADER_SIZE <= end
    return False


def _probe_layout() -> str:
    """How ``Btf`` records type starts: ``"bytes"`` (absolute byte offsets), ``"words"``
    (32-bit words from the type section) or ``"unknown"``."""
    int_info = BtfKind.INT << 24
    ptr_info = BtfKind.PTR << 24
    types = struct.pack("<IIII", 0, int_info, 4, 32) + struct.pack("<III", 0, ptr_info, 1)
    header = pack_header(len(types), 1)
    probe = IndexedBtf(header + types + b"\0")
    found = list(probe.walk)
    if found == [24, 40]:
        return "bytes"
    if found == [0, 4]:
        return "words"
    return "unknown"


LAYOUT = _probe_layout()
"""The representation of ``Btf``'s walk in this build (see the module docstring)."""
