"""Parsed BTF: lazy access to types by id, lookup by name, layout helpers.

Why lazy: ``/sys/kernel/btf/vmlinux`` holds ~127,000 types.  Opening it only walks the type
section once to record where each type starts (one integer per type, no Python object per
type).  A type becomes a :mod:`pybpf.btf.types` value the first time it is asked for, and the
name index is built the first time a name is looked up.

Split BTF (kernel modules) is supported: a split :class:`Btf` has a ``base``; its ids continue
after the base's last id and its string offsets continue after the base's string section.
"""

from __future__ import annotations

import os
import sys
import weakref
from array import array
from bisect import bisect_left
from itertools import accumulate, repeat
from operator import add
from struct import Struct

from pybpf.abi.btf import BTF_MAGIC, BTF_MAGIC_SWAPPED, BTF_VERSION, HEADER_SIZE, TYPE_HEADER_SIZE
from pybpf.abi.sections import BTF
from pybpf.btf import naming
from pybpf.btf.layout import MAX_RESOLVE_DEPTH, TypeLayout
from pybpf.btf.types import (
    MODIFIER_KINDS,
    VOID,
    BtfArray,
    BtfConst,
    BtfDatasec,
    BtfDeclTag,
    BtfEnum,
    BtfEnum64,
    BtfEnumValue,
    BtfFloat,
    BtfFunc,
    BtfFuncProto,
    BtfFwd,
    BtfInt,
    BtfKind,
    BtfMember,
    BtfParam,
    BtfPtr,
    BtfRestrict,
    BtfStruct,
    BtfType,
    BtfTypedef,
    BtfTypeTag,
    BtfUnion,
    BtfVar,
    BtfVarSecInfo,
    BtfVolatile,
    FuncLinkage,
    IntEncoding,
    VarLinkage,
)
from pybpf.errors import BtfError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

POINTER_SIZE = 8
"""BPF is a 64-bit target: every pointer in BPF BTF is 8 bytes."""


# Size of the data that follows the 12-byte common header, as (fixed bytes, bytes per vlen).
RECORD_TAIL_SIZE: dict[int, tuple[int, int]] = {
    BtfKind.INT: (4, 0),
    BtfKind.PTR: (0, 0),
    BtfKind.ARRAY: (12, 0),
    BtfKind.STRUCT: (0, 12),
    BtfKind.UNION: (0, 12),
    BtfKind.ENUM: (0, 8),
    BtfKind.FWD: (0, 0),
    BtfKind.TYPEDEF: (0, 0),
    BtfKind.VOLATILE: (0, 0),
    BtfKind.CONST: (0, 0),
    BtfKind.RESTRICT: (0, 0),
    BtfKind.FUNC: (0, 0),
    BtfKind.FUNC_PROTO: (0, 8),
    BtfKind.VAR: (4, 0),
    BtfKind.DATASEC: (0, 12),
    BtfKind.FLOAT: (0, 0),
    BtfKind.DECL_TAG: (4, 0),
    BtfKind.TYPE_TAG: (0, 0),
    BtfKind.ENUM64: (0, 12),
}
_FIXED = [0] * 32
_PER_VLEN = [0] * 32
_KNOWN = [False] * 32
for _kind, (_fixed, _per) in RECORD_TAIL_SIZE.items():
    _FIXED[_kind] = _fixed
    _PER_VLEN[_kind] = _per
    _KNOWN[_kind] = True
_BULK_STRINGS_AFTER = 2048
"""Decoded types after which a caller is taken to be walking them all: strings go in bulk.

Converting vmlinux's whole string section costs as much as ~2,000 one-by-one conversions, so
single lookups stay cheap and full passes (dumps, the linker) stop paying per name.
"""
_UNKNOWN_KIND_WORDS = 1 << 40
"""Word count given to unknown kinds so the fast walk overshoots and reports via the slow one."""
_FIXED_WORDS = [f // 4 if k else _UNKNOWN_KIND_WORDS for f, k in zip(_FIXED, _KNOWN, strict=True)]
_PER_VLEN_WORDS = [p // 4 for p in _PER_VLEN]
NATIVE_BIG_ENDIAN = sys.byteorder == "big"


class _Formats:
    """The ``struct`` formats BTF is read with, compiled once per byte order."""

    __slots__ = ("i32", "u32", "u32_i32", "u32x2", "u32x3")

    def __init__(self, endian: str) -> None:
        self.u32 = Struct(endian + "I")
        self.i32 = Struct(endian + "i")
        self.u32x2 = Struct(endian + "II")
        self.u32x3 = Struct(endian + "III")
        self.u32_i32 = Struct(endian + "Ii")


_FORMATS: dict[str, _Formats] = {}


def _formats(endian: str) -> _Formats:
    found = _FORMATS.get(endian)
    if found is None:
        found = _FORMATS[endian] = _Formats(endian)
    return found


class _TypeCache(dict[int, BtfType]):
    """Decoded types by id, decoding a missing one on first ``cache[type_id]``.

    Why a ``dict`` subclass: a hit is then a plain C-level dict lookup, with no Python frame.
    The C dumper looks types up ~750,000 times for a vmlinux dump, and a method call per lookup
    was a visible share of its time.  Misses (and bad ids) go through :meth:`Btf._load`.
    The :class:`Btf` is held weakly so that it and its cache are freed by reference counting,
    not left in a cycle for the garbage collector (a decoded vmlinux is large).
    """

    __slots__ = ("_btf",)

    def __init__(self, btf: Btf) -> None:
        super().__init__()
        self._btf = weakref.ref(btf)

    def __missing__(self, type_id: int) -> BtfType:
        btf = self._btf()
        if btf is None:
            raise ReferenceError("the Btf these types belong to no longer exists")
        return btf._load(type_id)


class TypeIndex:
    """Where every type of one BTF starts: the result of the walk that opening it costs.

    Why public: the walk is the one expensive step of opening vmlinux (~20 ms for 127,000
    types) and depends only on the bytes, so :mod:`pybpf.core.cache` stores it on disk and
    hands it back through ``Btf.from_bytes(data, type_index=...)``.  ``starts[i]`` is the
    offset of type ``start_id + i`` in 32-bit words from the start of the type section; the
    representation is named by :attr:`FORMAT`, which is part of every cache key so that an
    index stored in another representation is never handed back.
    """

    FORMAT = "words"
    """Names the representation of :attr:`starts` (bump it when the representation changes)."""

    __slots__ = ("starts",)

    def __init__(self, starts: array[int]) -> None:
        self.starts = starts

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self) -> Iterator[int]:
        return iter(self.starts)

    def __repr__(self) -> str:
        return f"<TypeIndex of {len(self.starts)} types>"

    def plausible(self, section_len: int) -> bool:
        """A cheap check that this index can describe a type section of ``section_len`` bytes.

        The check is cheap, not complete: a cached index is keyed by the blob's size and CRC, so
        this only guards against a damaged or foreign entry that still passed those checks.
        """
        starts = self.starts
        if starts.typecode != "I":
            return False
        if not starts:
            return section_len == 0
        return starts[0] == 0 and 4 * starts[-1] + TYPE_HEADER_SIZE <= section_len


_INT_ENCODINGS = tuple(IntEncoding(bits) for bits in range(8))
_FUNC_LINKAGES = tuple(FuncLinkage)
_VAR_LINKAGES = tuple(VarLinkage)


class Btf:
    """A BTF blob: header, type section and string section, decoded on demand.

    Build one with :meth:`from_bytes`, :meth:`from_path` or :meth:`vmlinux`.  Type ids run from
    ``start_id`` to ``start_id + len(self) - 1``; for non-split BTF ``start_id`` is 1 (id 0 is
    ``void``).  Indexing a split BTF with a base id is delegated to the base.
    """

    __slots__ = (
        "__weakref__",
        "_begin",
        "_cache",
        "_data",
        "_end_id",
        "_fmt",
        "_layout",
        "_name_index",
        "_starts",
        "_str_cache",
        "_strings",
        "_strings_complete",
        "_view",
        "base",
        "big_endian",
        "file",
        "flags",
        "section",
        "start_id",
        "start_str_off",
    )

    def __init__(
        self,
        data: bytes,
        *,
        base: Btf | None = None,
        file: str | None = None,
        section: str | None = BTF,
        type_index: TypeIndex | None = None,
    ) -> None:
        self.file = file
        self.section = section
        self.base = base
        self._data = bytes(data)
        self._view = memoryview(self._data)
        self._cache = _TypeCache(self)
        # Offset 0 is the empty name in every BTF (a split BTF's 0 is its base's empty string).
        self._str_cache: dict[int, str] = {0: ""}
        self._strings_complete = False
        self._name_index: dict[str, list[int]] | None = None
        self._layout: TypeLayout | None = None
        self._parse_header(type_index)

    # ----------------------------------------------------------------------------- construction

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        base: Btf | None = None,
        file: str | None = None,
        section: str | None = BTF,
        type_index: TypeIndex | None = None,
    ) -> Btf:
        """Parse BTF from ``data`` (a ``.BTF`` section or a raw BTF file).

        ``type_index`` is a :attr:`type_index` saved from an earlier parse of the same bytes;
        it spares the walk over the type section.  One that cannot describe this blob's type
        section is ignored and the section is walked as usual.
        """
        return cls(data, base=base, file=file, section=section, type_index=type_index)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, base: Btf | None = None) -> Btf:
        """Parse a raw BTF file, such as ``/sys/kernel/btf/vmlinux``."""
        name = os.fspath(path)
        try:
            with open(name, "rb") as file:
                data = file.read()
        except OSError as exc:
            raise BtfError(f"cannot read: {exc.strerror}", file=name) from None
        return cls(data, base=base, file=name, section=None)

    @classmethod
    def vmlinux(cls) -> Btf:
        """The running kernel's BTF."""
        return cls.from_path("/sys/kernel/btf/vmlinux")

    # ----------------------------------------------------------------------------- parsing

    def _error(self, message: str, offset: int | None = None) -> BtfError:
        return BtfError(message, file=self.file, section=self.section, offset=offset)

    def _parse_header(self, type_index: TypeIndex | None) -> None:
        data = self._data
        if len(data) < HEADER_SIZE:
            raise self._error(f"truncated header: {len(data)} bytes, need {HEADER_SIZE}", 0)
        magic = int.from_bytes(data[:2], "little")
        if magic == BTF_MAGIC:
            endian = "<"
        elif magic == BTF_MAGIC_SWAPPED:
            endian = ">"
        else:
            raise self._error(f"bad magic {magic:#06x}, expected {BTF_MAGIC:#06x}", 0)
        self.big_endian = endian == ">"
        self._fmt = _formats(endian)
        version, flags, hdr_len, type_off, type_len, str_off, str_len = Struct(
            endian + "BBIIIII"
        ).unpack_from(data, 2)
        if version != BTF_VERSION:
            raise self._error(f"unsupported version {version}", 2)
        self.flags = flags
        if hdr_len < HEADER_SIZE or hdr_len > len(data):
            raise self._error(f"bad header length {hdr_len}", 4)
        # Bytes past the known header must be zero (forward compatibility rule of the kernel).
        if any(data[HEADER_SIZE:hdr_len]):
            raise self._error("unknown non-zero header fields", HEADER_SIZE)
        end = len(data) - hdr_len
        if type_off % 4 or type_len % 4:
            raise self._error(
                f"type section not 4-byte aligned (off {type_off}, len {type_len})", 8
            )
        if type_off + type_len > end or str_off + str_len > end:
            raise self._error(
                f"sections past end of data: types {type_off}+{type_len}, strings "
                f"{str_off}+{str_len}, data {end}",
                8,
            )
        if type_off < str_off < type_off + type_len or str_off < type_off < str_off + str_len:
            raise self._error("type and string sections overlap", 8)
        strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
        if self.base is None and (not strings or strings[0] != 0):
            raise self._error("string section must start with a NUL byte", hdr_len + str_off)
        if strings and strings[-1] != 0:
            raise self._error("string section does not end with NUL", hdr_len + str_off + str_len)
        self._strings = strings
        if self.base is None:
            self.start_id = 1
            self.start_str_off = 0
        else:
            self.start_id = self.base.start_id + len(self.base)
            self.start_str_off = self.base.start_str_off + len(self.base._strings)
        self._begin: int = hdr_len + type_off
        if type_index is not None and type_index.plausible(type_len):
            self._starts = type_index.starts
        else:
            self._starts = self._index_types(self._begin, self._begin + type_len)
        self._end_id = self.start_id + len(self._starts)

    def _index_types(self, begin: int, end: int) -> array[int]:
        """Record where every type starts (in 32-bit words from ``begin``), checking sizes.

        This is the one pass over all types that opening BTF costs, so the common case (BTF in
        the host's byte order) walks native 32-bit words, and takes each type's size from a
        table keyed by its ``info`` word (a few thousand distinct values in vmlinux) instead of
        computing it.  Unknown kinds make the walk overshoot via a huge size, and any overshoot
        or truncation falls back to the careful walk for its message.
        """
        if self.big_endian != NATIVE_BIG_ENDIAN or begin % 4:
            return self._index_types_checked(begin, end)
        words = self._view[begin:end].cast("I")
        fixed, per_vlen = _FIXED_WORDS, _PER_VLEN_WORDS
        words_of: dict[int, int] = {}
        starts: list[int] = []
        append = starts.append
        i = 0
        try:
            while True:
                info = words[i + 1]  # IndexError past the end: the normal way out
                append(i)
                try:
                    i += words_of[info]
                except KeyError:
                    kind = (info >> 24) & 0x1F
                    size = 3 + fixed[kind] + (info & 0xFFFF) * per_vlen[kind]
                    words_of[info] = size
                    i += size
        except IndexError:
            pass
        if i != len(words):
            return self._index_types_checked(begin, end)
        return array("I", starts)

    def _index_types_checked(self, begin: int, end: int) -> array[int]:
        """The careful walk: any byte order, precise errors."""
        starts: array[int] = array("I")
        append = starts.append
        data = self._data
        unpack_info = self._fmt.u32.unpack_from
        fixed, per_vlen, known = _FIXED, _PER_VLEN, _KNOWN
        off = begin
        while off < end:
            if off + TYPE_HEADER_SIZE > end:
                raise self._error(f"type #{self._id_at(len(starts))} header is truncated", off)
            (info,) = unpack_info(data, off + 4)
            kind = (info >> 24) & 0x1F
            if not known[kind]:
                raise self._error(f"type #{self._id_at(len(starts))}: unknown kind {kind}", off)
            append((off - begin) >> 2)
            off += TYPE_HEADER_SIZE + fixed[kind] + (info & 0xFFFF) * per_vlen[kind]
        if off != end:
            raise self._error(
                f"type #{self._id_at(len(starts) - 1)}: vlen runs past the type section", end
            )
        return starts

    def _id_at(self, index: int) -> int:
        return self.start_id + index

    # ----------------------------------------------------------------------------- strings

    def string(self, offset: int) -> str:
        """The NUL-terminated string at ``offset`` of the (possibly split) string section."""
        if offset < self.start_str_off:
            if self.base is None:  # only a negative offset gets here
                raise self._error(f"string offset {offset} out of range")
            return self.base.string(offset)
        cached = self._str_cache.get(offset)
        if cached is not None:
            return cached
        return self._string_uncached(offset)

    def _string_uncached(self, offset: int) -> str:
        local = offset - self.start_str_off
        strings = self._strings
        if local >= len(strings):
            raise self._error(f"string offset {offset} out of range ({len(strings)} bytes)")
        end = strings.index(0, local)
        text = strings[local:end].decode("utf-8", "surrogateescape")
        self._str_cache[offset] = text
        return text

    def _cache_all_strings(self) -> None:
        """Convert every string of the section at once, for passes over all types.

        One ``decode`` and one ``split`` of the whole section (~25 ms for vmlinux's 125,000
        strings) replace a ``bytes.index`` + slice + ``decode`` per name, ~8x the cost.  Only
        offsets where a string starts are filled in; one that points into the middle of a
        string (tail sharing) still goes through :meth:`string`.  Splitting the decoded text
        is safe: NUL never occurs inside a UTF-8 sequence, so it splits where the bytes do.
        """
        strings = self._strings
        if self._strings_complete or not strings:
            return
        self._strings_complete = True
        text = strings.decode("utf-8", "surrogateescape")
        parts = text.split("\0")
        parts.pop()  # the empty tail after the final NUL is not a string of the section
        lengths = map(len, parts if strings.isascii() else strings.split(b"\0"))
        starts = accumulate((n + 1 for n in lengths), initial=self.start_str_off)
        # ``starts`` has one more item (the section's end), which zip drops.
        self._str_cache.update(zip(starts, parts, strict=False))
        if self.base is None:
            self._str_cache[0] = ""

    @property
    def data(self) -> bytes:
        """The whole BTF blob, header included (what :meth:`from_bytes` was given)."""
        return self._data

    @property
    def type_index(self) -> TypeIndex:
        """Where every type starts, to hand to a later :meth:`from_bytes` of the same bytes."""
        return TypeIndex(self._starts)

    def type_offsets(self) -> array[int]:
        """Byte offset in :attr:`data` of every type (index ``i``: type ``start_id + i``)."""
        begin = self._begin
        return array("I", [begin + 4 * w for w in self._starts])

    def name_offsets(self) -> list[int]:
        """The ``name_off`` of every own type, in id order.

        A C-level pass (``map`` over the words) when the blob is in the host's byte order and
        its type section is word-aligned: the name index of vmlinux is built from this.
        """
        begin = self._begin
        if self.big_endian == NATIVE_BIG_ENDIAN and not begin & 3:
            words = self._view[: len(self._data) & ~3].cast("I")
            first = repeat(begin >> 2)
            return list(map(words.__getitem__, map(add, self._starts, first)))
        unpack = self._fmt.u32.unpack_from
        data = self._data
        return [unpack(data, begin + 4 * w)[0] for w in self._starts]

    @property
    def string_bytes(self) -> bytes:
        """This BTF's own string section (without the base's)."""
        return self._strings

    # ----------------------------------------------------------------------------- types

    def __len__(self) -> int:
        """Number of types defined by this BTF (not counting void or the base's types)."""
        return len(self._starts)

    @property
    def end_id(self) -> int:
        """One past the last valid type id."""
        return self._end_id

    def type_ids(self) -> range:
        """The ids of this BTF's own types."""
        return range(self.start_id, self._end_id)

    def __iter__(self) -> Iterator[BtfType]:
        for type_id in self.type_ids():
            yield self[type_id]

    def _raw_offset(self, type_id: int) -> int:
        index = type_id - self.start_id
        if index < 0 or type_id >= self._end_id:
            raise self._error(f"type id {type_id} out of range [1, {self._end_id - 1}]")
        return self._begin + 4 * self._starts[index]

    def kind_of(self, type_id: int) -> BtfKind:
        """The kind of ``type_id`` without materialising the type (``UNKN`` for void)."""
        if type_id == VOID:
            return BtfKind.UNKN
        if type_id < self.start_id and self.base is not None:
            return self.base.kind_of(type_id)
        info: int = self._fmt.u32.unpack_from(self._data, self._raw_offset(type_id) + 4)[0]
        return _KINDS[(info >> 24) & 0x1F]

    def name_of(self, type_id: int) -> str:
        """The name of ``type_id`` without materialising it (``""`` for anonymous and void)."""
        if type_id == VOID:
            return ""
        if type_id < self.start_id and self.base is not None:
            return self.base.name_of(type_id)
        (name_off,) = self._fmt.u32.unpack_from(self._data, self._raw_offset(type_id))
        return self.string(name_off)

    def describe(self, type_id: int) -> str:
        """``STRUCT 'foo'`` or ``anonymous PTR``: how error messages name a type."""
        return naming.describe(self, type_id)

    def __getitem__(self, type_id: int) -> BtfType:
        """The type with id ``type_id`` (``KeyError``-free: bad ids raise :class:`BtfError`)."""
        return self._cache[type_id]

    @property
    def types_by_id(self) -> Mapping[int, BtfType]:
        """``types_by_id[type_id]`` is ``self[type_id]`` without a Python call on a hit.

        For hot loops that look the same types up many times (the C dumper).  Only indexing
        decodes; ``get``, ``in`` and iteration see just the types decoded so far.
        """
        return self._cache

    def _load(self, type_id: int) -> BtfType:
        """Decode and cache a type not in the cache yet (the miss path of ``self[type_id]``)."""
        if type_id < self.start_id:
            if type_id > VOID and self.base is not None:
                return self.base[type_id]
            raise self._error(f"type id {type_id} does not name a type (0 is void)")
        decoded = self._decode(type_id)
        cache = self._cache
        cache[type_id] = decoded
        if len(cache) == _BULK_STRINGS_AFTER:
            self._cache_all_strings()
        return decoded

    def validate(self) -> None:
        """Decode every type, so that any corruption is reported now rather than on first use."""
        cache = self._cache
        if len(cache) >= len(self):
            return
        self._cache_all_strings()
        decode = self._decode
        for type_id in self.type_ids():
            if type_id not in cache:
                cache[type_id] = decode(type_id)

    def decoded(self) -> list[BtfType]:
        """Every type of this BTF in id order (``decoded()[i]`` has id ``start_id + i``).

        Decodes (so validates) what is not decoded yet, as :meth:`validate` does.  For callers
        that go over every type (the linker), a list beats one lookup per id.
        """
        self.validate()
        cache = self._cache
        return [cache[type_id] for type_id in self.type_ids()]

    # ----------------------------------------------------------------------------- decoding
    #
    # One decoder per kind, found by indexing ``_DECODERS`` with the kind.  Each gets the type's
    # id, file offset, name and the two words after the name, and checks what the kernel checks
    # in the order the kernel does (each member's name, then its type id), so that a corrupt
    # type is always reported the same way.  Type ids are checked by one comparison with
    # ``_end_id``; names come from the string cache, falling back to :meth:`string`.

    def _decode(self, type_id: int) -> BtfType:
        # _raw_offset inlined: this runs once per type, 127,000 times for vmlinux.
        index = type_id - self.start_id
        if index < 0 or type_id >= self._end_id:
            raise self._error(f"type id {type_id} out of range [1, {self._end_id - 1}]")
        off = self._begin + 4 * self._starts[index]
        name_off: int
        info: int
        name_off, info, size_or_type = self._fmt.u32x3.unpack_from(self._data, off)
        name = self._str_cache.get(name_off)
        if name is None:
            try:
                name = self.string(name_off)
            except BtfError as exc:
                raise self._error(f"type #{type_id}: name {exc.reason}", off) from None
        decoder = _DECODERS[(info >> 24) & 0x1F]
        if decoder is None:  # pragma: no cover - the index walk rejects unknown kinds
            raise self._error(f"type #{type_id}: unknown kind {(info >> 24) & 0x1F}", off)
        return decoder(self, type_id, off, name, info, size_or_type)

    def _bad_ref(self, type_id: int, ref: int, what: str, off: int) -> BtfError:
        return self._error(
            f"type #{type_id}: {what} refers to type id {ref} out of range [0, {self._end_id - 1}]",
            off,
        )

    def _member_name(self, type_id: int, name_off: int, where: int) -> str:
        name = self._str_cache.get(name_off)
        if name is not None:
            return name
        try:
            return self.string(name_off)
        except BtfError as exc:
            raise self._error(f"type #{type_id}: member name {exc.reason}", where) from None

    def _records(self, fmt: Struct, body: int, vlen: int) -> Iterator[tuple[int, ...]]:
        """The ``vlen`` records of format ``fmt`` that follow a type's header."""
        return fmt.iter_unpack(self._view[body : body + vlen * fmt.size])

    def _decode_int(self, type_id: int, off: int, name: str, info: int, size: int) -> BtfType:
        body = off + TYPE_HEADER_SIZE
        (word,) = self._fmt.u32.unpack_from(self._data, body)
        bits_offset = (word >> 16) & 0xFF
        nr_bits = word & 0xFF
        if nr_bits > 128 or bits_offset + nr_bits > size * 8:
            raise self._error(
                f"type #{type_id}: INT '{name}' with {nr_bits} bits at bit {bits_offset} "
                f"does not fit {size} bytes",
                body,
            )
        return BtfInt(name, size, _INT_ENCODINGS[(word >> 24) & 0x7], bits_offset, nr_bits)

    def _decode_ptr(self, type_id: int, off: int, name: str, info: int, target: int) -> BtfType:
        if target >= self._end_id:
            raise self._bad_ref(type_id, target, "pointee", off)
        return BtfPtr(target, name)

    def _decode_array(self, type_id: int, off: int, name: str, info: int, _: int) -> BtfType:
        body = off + TYPE_HEADER_SIZE
        elem, index_type, nelems = self._fmt.u32x3.unpack_from(self._data, body)
        if elem >= self._end_id:
            raise self._bad_ref(type_id, elem, "element", body)
        if index_type >= self._end_id:
            raise self._bad_ref(type_id, index_type, "index", body)
        return BtfArray(elem, index_type, nelems, name)

    def _decode_composite(self, type_id: int, off: int, name: str, info: int, size: int) -> BtfType:
        body = off + TYPE_HEADER_SIZE
        end_id = self._end_id
        names = self._str_cache
        kflag = bool(info >> 31)
        members: list[BtfMember] = []
        append = members.append
        records = self._records(self._fmt.u32x3, body, info & 0xFFFF)
        for i, (m_name_off, m_type, m_offset) in enumerate(records):
            m_name = names.get(m_name_off)
            if m_name is None:
                m_name = self._member_name(type_id, m_name_off, body + 12 * i)
            if m_type >= end_id:
                raise self._bad_ref(type_id, m_type, f"member {i}", body + 12 * i)
            if kflag:
                append(BtfMember(m_name, m_type, m_offset & 0xFFFFFF, m_offset >> 24))
            else:
                append(BtfMember(m_name, m_type, m_offset, 0))
        cls = BtfStruct if (info >> 24) & 0x1F == _STRUCT else BtfUnion
        return cls(name, size, tuple(members), kflag)

    def _decode_enum(self, type_id: int, off: int, name: str, info: int, size: int) -> BtfType:
        body = off + TYPE_HEADER_SIZE
        kflag = bool(info >> 31)
        # The kind_flag says the values are signed: read them as such.
        fmt = self._fmt.u32_i32 if kflag else self._fmt.u32x2
        names = self._str_cache
        values: list[BtfEnumValue] = []
        for i, (v_name_off, value) in enumerate(self._records(fmt, body, info & 0xFFFF)):
            v_name = names.get(v_name_off)
            if v_name is None:
                v_name = self._member_name(type_id, v_name_off, body + 8 * i)
            values.append(BtfEnumValue(v_name, value))
        return BtfEnum(name, size, tuple(values), kflag)

    def _decode_enum64(self, type_id: int, off: int, name: str, info: int, size: int) -> BtfType:
        body = off + TYPE_HEADER_SIZE
        kflag = bool(info >> 31)
        values: list[BtfEnumValue] = []
        for i, (v_name_off, lo, hi) in enumerate(
            self._records(self._fmt.u32x3, body, info & 0xFFFF)
        ):
            raw = (hi << 32) | lo
            value = raw - (1 << 64) if kflag and raw >> 63 else raw
            v_name = self._member_name(type_id, v_name_off, body + 12 * i)
            values.append(BtfEnumValue(v_name, value))
        return BtfEnum64(name, size, tuple(values), kflag)

    def _decode_fwd(self, type_id: int, off: int, name: str, info: int, _: int) -> BtfType:
        return BtfFwd(name, bool(info >> 31))

    def _decode_typedef(self, type_id: int, off: int, name: str, info: int, target: int) -> BtfType:
        if target >= self._end_id:
            raise self._bad_ref(type_id, target, "target", off)
        return BtfTypedef(name, target)

    def _decode_volatile(
        self, type_id: int, off: int, name: str, info: int, target: int
    ) -> BtfType:
        if target >= self._end_id:
            raise self._bad_ref(type_id, target, "target", off)
        return BtfVolatile(target, name)

    def _decode_const(self, type_id: int, off: int, name: str, info: int, target: int) -> BtfType:
        if target >= self._end_id:
            raise self._bad_ref(type_id, target, "target", off)
        return BtfConst(target, name)

    def _decode_restrict(
        self, type_id: int, off: int, name: str, info: int, target: int
    ) -> BtfType:
        if target >= self._end_id:
            raise self._bad_ref(type_id, target, "target", off)
        return BtfRestrict(target, name)

    def _decode_func(self, type_id: int, off: int, name: str, info: int, proto: int) -> BtfType:
        linkage = info & 0xFFFF
        if linkage > FuncLinkage.EXTERN:
            raise self._error(f"type #{type_id}: FUNC '{name}' bad linkage {linkage}", off)
        if proto >= self._end_id:
            raise self._bad_ref(type_id, proto, "prototype", off)
        return BtfFunc(name, proto, _FUNC_LINKAGES[linkage])

    def _decode_func_proto(
        self, type_id: int, off: int, name: str, info: int, return_type: int
    ) -> BtfType:
        body = off + TYPE_HEADER_SIZE
        end_id = self._end_id
        names = self._str_cache
        params: list[BtfParam] = []
        append = params.append
        for i, (p_name_off, p_type) in enumerate(
            self._records(self._fmt.u32x2, body, info & 0xFFFF)
        ):
            p_name = names.get(p_name_off)
            if p_name is None:
                p_name = self._member_name(type_id, p_name_off, body + 8 * i)
            if p_type >= end_id:
                raise self._bad_ref(type_id, p_type, f"param {i}", body + 8 * i)
            append(BtfParam(p_name, p_type))
        if return_type >= end_id:
            raise self._bad_ref(type_id, return_type, "return", off)
        return BtfFuncProto(return_type, tuple(params), name)

    def _decode_var(self, type_id: int, off: int, name: str, info: int, target: int) -> BtfType:
        body = off + TYPE_HEADER_SIZE
        (linkage,) = self._fmt.u32.unpack_from(self._data, body)
        if linkage > VarLinkage.GLOBAL_EXTERN:
            raise self._error(f"type #{type_id}: VAR '{name}' bad linkage {linkage}", body)
        if target >= self._end_id:
            raise self._bad_ref(type_id, target, "type", off)
        return BtfVar(name, target, _VAR_LINKAGES[linkage])

    def _decode_datasec(self, type_id: int, off: int, name: str, info: int, size: int) -> BtfType:
        body = off + TYPE_HEADER_SIZE
        end_id = self._end_id
        secinfos: list[BtfVarSecInfo] = []
        for i, (v_type, v_offset, v_size) in enumerate(
            self._records(self._fmt.u32x3, body, info & 0xFFFF)
        ):
            if v_type >= end_id:
                raise self._bad_ref(type_id, v_type, f"var {i}", body + 12 * i)
            secinfos.append(BtfVarSecInfo(v_type, v_offset, v_size))
        return BtfDatasec(name, size, tuple(secinfos))

    def _decode_float(self, type_id: int, off: int, name: str, info: int, size: int) -> BtfType:
        return BtfFloat(name, size)

    def _decode_decl_tag(
        self, type_id: int, off: int, name: str, info: int, target: int
    ) -> BtfType:
        (component_idx,) = self._fmt.i32.unpack_from(self._data, off + TYPE_HEADER_SIZE)
        if target >= self._end_id:
            raise self._bad_ref(type_id, target, "target", off)
        return BtfDeclTag(name, target, component_idx, bool(info >> 31))

    def _decode_type_tag(
        self, type_id: int, off: int, name: str, info: int, target: int
    ) -> BtfType:
        if target >= self._end_id:
            raise self._bad_ref(type_id, target, "target", off)
        return BtfTypeTag(name, target, bool(info >> 31))

    # ----------------------------------------------------------------------------- lookup

    def _names(self) -> dict[str, list[int]]:
        index = self._name_index
        if index is None:
            index = {}
            unpack = self._fmt.u32.unpack_from
            data = self._data
            begin = self._begin
            string = self.string
            for type_id, start in enumerate(self._starts, self.start_id):
                (name_off,) = unpack(data, begin + 4 * start)
                if name_off:
                    index.setdefault(string(name_off), []).append(type_id)
            self._name_index = index
        return index

    def find(self, name: str, kind: BtfKind | None = None) -> list[int]:
        """Ids of every type named ``name`` (of ``kind`` if given), base types first."""
        found: list[int] = []
        if self.base is not None:
            found.extend(self.base.find(name, kind))
        ids = self._names().get(name, ()) if self._name_index is not None else None
        if ids is None:
            ids = self._scan_for_name(name)
        for type_id in ids:
            if kind is None or self.kind_of(type_id) == kind:
                found.append(type_id)
        return found

    def _scan_for_name(self, name: str) -> list[int]:
        """Find types named ``name`` without building the name index.

        A first lookup in vmlinux should not pay for decoding 100,000 names.  The string is
        searched for in the string section (every position it can be read from, since string
        tables may share suffixes), then each candidate name offset is searched for as a 32-bit
        word in the type section and kept where it is the first word of a type.  When a name has
        many candidate offsets, building the index once is cheaper.
        """
        encoded = name.encode("utf-8", "surrogateescape") + b"\0"
        strings = self._strings
        exact: list[int] = []
        suffixes: list[int] = []
        pos = strings.find(encoded)
        while pos >= 0:
            (exact if pos == 0 or strings[pos - 1] == 0 else suffixes).append(pos)
            pos = strings.find(encoded, pos + 1)
        # Deduplicated string tables (libbpf's, pahole's, LLVM's) hold each name once; a name
        # reachable only as the tail of a longer string is searched for at those positions.
        positions = exact or suffixes
        if len(positions) > 4:
            return self._names().get(name, [])
        starts = self._starts
        if not starts:
            return []
        data = self._data
        begin = self._begin
        end = begin + 4 * starts[-1] + TYPE_HEADER_SIZE
        pack = self._fmt.u32.pack
        ids: list[int] = []
        for local in positions:
            needle = pack(local + self.start_str_off)
            hit = data.find(needle, begin, end)
            while hit >= 0:
                if not (hit - begin) & 3:
                    word = (hit - begin) >> 2
                    index = bisect_left(starts, word)
                    if index < len(starts) and starts[index] == word:
                        ids.append(self.start_id + index)
                hit = data.find(needle, hit + 1, end)
        ids.sort()
        return ids

    def find_one(self, name: str, kind: BtfKind | None = None) -> int:
        """The id of the single type named ``name``; an error if there is none or several."""
        found = self.find(name, kind)
        what = f"{kind.name} " if kind is not None else ""
        if not found:
            raise self._error(f"no {what}type named '{name}'")
        if len(found) > 1:
            raise self._error(f"{len(found)} {what}types named '{name}': ids {found}")
        return found[0]

    # ----------------------------------------------------------------------------- layout

    def skip_modifiers(self, type_id: int) -> int:
        """Follow const/volatile/restrict/type_tag to the qualified type."""
        for _ in range(MAX_RESOLVE_DEPTH):
            if self.kind_of(type_id) not in MODIFIER_KINDS:
                return type_id
            type_id = self._target(type_id)
        raise self._error(f"type #{type_id}: modifier chain too long (reference cycle?)")

    def resolve(self, type_id: int) -> int:
        """Follow modifiers and typedefs to the underlying type."""
        for _ in range(MAX_RESOLVE_DEPTH):
            kind = self.kind_of(type_id)
            if kind not in MODIFIER_KINDS and kind != BtfKind.TYPEDEF:
                return type_id
            type_id = self._target(type_id)
        raise self._error(f"type #{type_id}: typedef/modifier chain too long (reference cycle?)")

    def _target(self, type_id: int) -> int:
        """The type a typedef or modifier refers to (callers have checked the kind)."""
        t = self[type_id]
        if isinstance(t, BtfTypedef | BtfVolatile | BtfConst | BtfRestrict | BtfTypeTag):
            return t.type
        raise self._error(f"type #{type_id}: {t.kind.name} '{t.name}' refers to no type")

    @property
    def layout(self) -> TypeLayout:
        """Sizes and alignments of this BTF's types for BPF (8-byte pointers), memoised."""
        layout = self._layout
        if layout is None:
            layout = self._layout = TypeLayout(self, POINTER_SIZE)
        return layout

    def size_of(self, type_id: int) -> int:
        """Size in bytes of a value of ``type_id``, as ``sizeof`` would give.

        :attr:`layout` answers; this only turns its "no size" into an error that says why.
        A DECL_TAG is refused (libbpf sizes it as its target, but it is not a value's type).
        """
        size = self.layout.resolve_size(type_id)
        if size >= 0 and self.kind_of(type_id) != BtfKind.DECL_TAG:
            return size
        raise self._no_size(type_id)

    def _no_size(self, type_id: int) -> BtfError:
        """Why ``type_id`` has no size (error path only): the chain is followed to the culprit."""
        for _ in range(MAX_RESOLVE_DEPTH):
            type_id = self.resolve(type_id)
            if type_id == VOID:
                return self._error("size of void requested")
            t = self[type_id]
            if isinstance(t, BtfArray | BtfVar):
                type_id = t.type
                continue
            if isinstance(t, _SIZED):
                return self._error(
                    f"type #{type_id}: {t.kind.name} '{t.name}': size does not fit 32 bits or "
                    "array nesting too deep (reference cycle?)"
                )
            return self._error(f"type #{type_id}: {t.kind.name} '{t.name}' has no size")
        return self._error(f"type #{type_id}: array nesting too deep (reference cycle?)")

    def align_of(self, type_id: int) -> int:
        """Alignment in bytes, detecting packed structs the way libbpf does.

        :attr:`layout` answers; this only turns its "no alignment" (and a type containing
        itself) into an error that says why.
        """
        try:
            align = self.layout.align_of(type_id)
        except BtfError:
            self.resolve(type_id)  # a modifier/typedef loop at the root: that message
            raise self._error(f"type #{type_id}: nesting too deep (reference cycle?)") from None
        if align > 0:
            return align
        resolved = self.resolve(type_id)
        if resolved != VOID and isinstance(self[resolved], BtfInt | BtfEnum | BtfEnum64 | BtfFloat):
            return 1  # a forward-declared enum (size 0) is byte-aligned, as it always was here
        raise self._no_alignment(type_id)

    def _no_alignment(self, type_id: int) -> BtfError:
        """Why ``type_id`` has no alignment (error path only): the culprit nested in it."""
        layout = self.layout
        for _ in range(len(self) + 1):
            type_id = self.resolve(type_id)
            if type_id == VOID:
                return self._error("alignment of void requested")
            t = self[type_id]
            if isinstance(t, BtfArray):
                type_id = t.type
                continue
            if isinstance(t, BtfStruct | BtfUnion):
                bad = [m.type for m in t.members if layout.align_of(m.type) == 0]
                if bad:
                    type_id = bad[0]
                    continue
            if isinstance(t, BtfInt | BtfEnum | BtfEnum64 | BtfFloat):
                return self._error(f"type #{type_id}: {t.kind.name} '{t.name}' has size 0")
            return self._error(f"type #{type_id}: {t.kind.name} '{t.name}' has no alignment")
        return self._error(f"type #{type_id}: nesting too deep (reference cycle?)")

    def __repr__(self) -> str:
        where = self.file or "<bytes>"
        return f"<Btf {where}: {len(self)} types from id {self.start_id}>"


_SIZED = (BtfInt, BtfStruct, BtfUnion, BtfEnum, BtfEnum64, BtfFloat, BtfDatasec, BtfPtr)
"""Kinds whose size is their own (or the pointer size): where a size walk ends."""
_KINDS = tuple(BtfKind(k) if k <= max(BtfKind) else BtfKind.UNKN for k in range(32))
_STRUCT = int(BtfKind.STRUCT)
_DECODERS: list[Callable[[Btf, int, int, str, int, int], BtfType] | None] = [None] * 32
for _kind, _decoder in {
    BtfKind.INT: Btf._decode_int,
    BtfKind.PTR: Btf._decode_ptr,
    BtfKind.ARRAY: Btf._decode_array,
    BtfKind.STRUCT: Btf._decode_composite,
    BtfKind.UNION: Btf._decode_composite,
    BtfKind.ENUM: Btf._decode_enum,
    BtfKind.FWD: Btf._decode_fwd,
    BtfKind.TYPEDEF: Btf._decode_typedef,
    BtfKind.VOLATILE: Btf._decode_volatile,
    BtfKind.CONST: Btf._decode_const,
    BtfKind.RESTRICT: Btf._decode_restrict,
    BtfKind.FUNC: Btf._decode_func,
    BtfKind.FUNC_PROTO: Btf._decode_func_proto,
    BtfKind.VAR: Btf._decode_var,
    BtfKind.DATASEC: Btf._decode_datasec,
    BtfKind.FLOAT: Btf._decode_float,
    BtfKind.DECL_TAG: Btf._decode_decl_tag,
    BtfKind.TYPE_TAG: Btf._decode_type_tag,
    BtfKind.ENUM64: Btf._decode_enum64,
}.items():
    _DECODERS[_kind] = _decoder
