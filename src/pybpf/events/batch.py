"""RecordBatch: every ready record copied out in one piece, for vectorised consumers.

Draining record by record costs a Python call per record however tight the loop.  When the
consumer can work on many records at once (sum a column, filter with NumPy, write to a file),
:meth:`RingBuffer.read_batch` copies the ready span of the ring in one ``memcpy`` and describes
the records by their offsets into the copy.  When every record has the same length, which is
the common case of one C struct per event, the offsets are an arithmetic progression found
without looking at any record in Python, and :meth:`RecordBatch.numpy` views the copy as a
structured array with no per-record work at all.
"""

from __future__ import annotations

import ctypes
import importlib
from array import array
from collections.abc import Iterator, Sequence
from typing import Any, overload

from pybpf.errors import EventError

from .typed import sized

HDR = 8


class RecordBatch(Sequence[Any]):
    """Records copied out of a ring: ``data`` holds them (with their 8-byte headers).

    Record ``i`` is ``data[offsets[i] : offsets[i] + lengths[i]]``.  ``record_size`` is the
    common payload length when all records share one (then ``stride`` is the distance between
    them and ``numpy()`` works), else ``None``.  Items are zero-copy ``memoryview`` slices of
    ``data`` (or ``event_type`` values when the ring has one); they stay valid as long as the
    batch does.
    """

    __slots__ = (
        "_ctype", "_ctype_size", "_view", "data", "lengths", "offsets", "record_size", "stride",
    )

    def __init__(
        self,
        data: bytes,
        offsets: Sequence[int],
        lengths: Sequence[int],
        record_size: int | None,
        stride: int,
        ctype: Any = None,
    ) -> None:
        self.data = data
        self.offsets = offsets
        self.lengths = lengths
        self.record_size = record_size
        self.stride = stride
        self._ctype = ctype
        self._ctype_size = 0 if ctype is None else ctypes.sizeof(ctype)
        self._view = memoryview(data)

    @classmethod
    def fixed(cls, data: bytes, count: int, size: int, stride: int, ctype: Any) -> RecordBatch:
        """``count`` records of ``size`` bytes every ``stride`` bytes (headers included)."""
        return cls(data, range(HDR, HDR + count * stride, stride), _Repeat(size, count),
                   size, stride, ctype)

    @classmethod
    def empty(cls, ctype: Any = None) -> RecordBatch:
        return cls(b"", range(0), range(0), None, 0, ctype)

    @classmethod
    def concat(cls, batches: Sequence[RecordBatch]) -> RecordBatch:
        """One batch of the records of ``batches`` in order (several rings read together)."""
        kinds = {b._ctype for b in batches}
        if len(kinds) > 1:
            raise EventError("cannot join batches of different event types; read them apart")
        ctype = kinds.pop() if kinds else None
        full = [b for b in batches if len(b)]
        if len(full) <= 1:
            return full[0] if full else cls.empty(ctype)
        data = b"".join(b.data for b in full)
        count = sum(len(b) for b in full)
        shapes = {(b.record_size, b.stride) for b in full}
        size, stride = next(iter(shapes))
        if len(shapes) == 1 and size is not None and len(data) == count * stride:
            return cls.fixed(data, count, size, stride, ctype)
        offsets = new_offsets()
        lengths = new_offsets()
        base = 0
        for b in full:
            offsets.extend(o + base for o in b.offsets)
            lengths.extend(b.lengths)
            base += len(b.data)
        return cls(data, offsets, lengths, None, 0, ctype)

    def __len__(self) -> int:
        return len(self.offsets)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        start = self.offsets[index]
        length = self.lengths[index]
        if self._ctype is not None:
            if length != self._ctype_size:
                return sized(self._ctype, self.data[start : start + length])
            return self._ctype.from_buffer_copy(self._view, start)
        return self._view[start : start + length]

    def __iter__(self) -> Iterator[Any]:
        view = self._view
        if self._ctype is not None:
            make = self._ctype.from_buffer_copy
            if self.record_size == self._ctype_size:
                for start in self.offsets:
                    yield make(view, start)
                return
            for i in range(len(self.offsets)):
                yield self[i]
            return
        for start, length in zip(self.offsets, self.lengths, strict=True):
            yield view[start : start + length]

    def payloads(self) -> list[bytes]:
        """Every record as ``bytes`` (copies; convenient for small batches and tests)."""
        data = self.data
        return [data[s : s + n] for s, n in zip(self.offsets, self.lengths, strict=True)]

    def numpy(self, dtype: Any = None) -> Any:
        """The records as a NumPy array viewing ``data`` (NumPy is imported only here).

        ``dtype`` defaults to the ring's ``event_type`` (ctypes structures convert to
        structured dtypes) or to raw ``V<size>`` records.  Requires one common record size.
        """
        try:
            np: Any = importlib.import_module("numpy")
        except ImportError:
            raise EventError("RecordBatch.numpy() needs NumPy, which is not installed") from None
        if not len(self):
            return np.empty(0, dtype=self._dtype(np, dtype, 0))
        if self.record_size is None:
            raise EventError(
                "RecordBatch.numpy() needs records of one size; this batch mixes sizes"
            )
        item = self._dtype(np, dtype, self.record_size)
        if item.itemsize > self.record_size:
            raise EventError(
                f"dtype is {item.itemsize} bytes, records are {self.record_size} bytes"
            )
        layout = np.dtype({"names": ["r"], "formats": [item], "offsets": [HDR],
                           "itemsize": self.stride})
        return np.frombuffer(self.data, dtype=layout, count=len(self))["r"]

    def _dtype(self, np: Any, dtype: Any, size: int) -> Any:
        if dtype is not None:
            return np.dtype(dtype)
        if self._ctype is not None:
            return np.dtype(self._ctype)
        return np.dtype(f"V{size}")

    def __repr__(self) -> str:
        shape = f"{self.record_size}-byte" if self.record_size is not None else "mixed-size"
        return f"<RecordBatch {len(self)} {shape} records, {len(self.data)} bytes>"


class _Repeat(Sequence[int]):
    """``[value] * count`` without the list (a fixed-size batch's lengths)."""

    __slots__ = ("_count", "_value")

    def __init__(self, value: int, count: int) -> None:
        self._value = value
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[int]: ...

    def __getitem__(self, index: int | slice) -> int | Sequence[int]:
        if isinstance(index, slice):
            return [self._value] * len(range(*index.indices(self._count)))
        if not -self._count <= index < self._count:
            raise IndexError("record index out of range")
        return self._value

    def __iter__(self) -> Iterator[int]:
        value = self._value
        for _ in range(self._count):
            yield value


def new_offsets() -> array[int]:
    """An empty offsets/lengths array (``q``: 8 bytes each, much smaller than a list)."""
    return array("q")
