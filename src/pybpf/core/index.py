"""Finding kernel types by *essential* name (flavor suffix dropped), fast.

libbpf finds candidates by walking all ~127,000 vmlinux types for every local type; in C that
is cheap, in Python it is not.  Two ways that are:

* **Scan** (no preparation): a BTF string table holds each name once, so the candidates for
  ``task_struct`` are the types whose ``name_off`` points at ``task_struct`` (or at a
  ``task_struct___flavor``) in the string table: :meth:`Btf.find` searches the string and
  type sections with ``bytes.find``, a few milliseconds per name, nothing to build first.
* **Table**: (hash of essential name, type id) pairs for every type, built once (~80 ms for
  vmlinux) and then answering in microseconds.  It is what :mod:`pybpf.core.cache` stores: two
  sorted arrays that load without decoding anything.

:class:`NameIndex` starts with scans and switches to a table after a few lookups (a program
with many distinct kernel types would otherwise pay a scan for each), telling its owner so the
table can be cached for the next process.
"""

from __future__ import annotations

import itertools
import operator
import sys
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence

from pybpf.btf.btf import Btf
from pybpf.core.names import essential_name_len

SCAN_LOOKUPS = 4
"""Lookups answered by scanning before building the table (a scan costs ~1/15 of a build)."""


def _essential_str(name: str) -> str:
    return name[: essential_name_len(name)] if "___" in name else name


def _essential(name: bytes) -> bytes:
    if b"___" not in name:
        return name
    text = name.decode("utf-8", "surrogateescape")
    return text[: essential_name_len(text)].encode("utf-8", "surrogateescape")


class HashTable:
    """Essential name -> type ids as two parallel sorted arrays: CRC-32 of the name, type id.

    Loads from a file with no per-entry work (``array.frombytes``) and answers with a C-level
    bisection.  Names are not stored (the BTF's string table has them): a lookup returns
    every id whose name hashes alike, and :class:`NameIndex` keeps those whose name really
    matches, which also makes a damaged table unable to produce a wrong candidate.
    """

    __slots__ = ("hashes", "ids")

    def __init__(self, hashes: array[int], ids: array[int]) -> None:
        self.hashes = hashes
        self.ids = ids

    @classmethod
    def from_packed(cls, packed: list[int]) -> HashTable:
        """From sorted ``hash << 32 | type_id`` integers."""
        pairs = array("I")
        pairs.frombytes(array("Q", packed).tobytes())
        low, high = (1, 0) if sys.byteorder == "big" else (0, 1)
        return cls(pairs[high::2], pairs[low::2])

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, name: bytes) -> Sequence[int]:
        h = zlib.crc32(name)
        lo = bisect_left(self.hashes, h)
        hi = bisect_right(self.hashes, h, lo)
        return self.ids[lo:hi]


def build_table(btf: Btf) -> HashTable:
    """(CRC-32 of essential name, id) of every type of ``btf`` (its own types only).

    Every step is a C-level pass (``map``/``zip``/``accumulate`` over builtins): the string
    table is split and hashed string by string, flavored strings are re-hashed under their
    essential name, each type's name offset maps to its string's hash, and the
    ``hash << 32 | id`` integers are sorted and split into the two arrays.  Anonymous types
    are included under the hash of ``""``, which no lookup asks for.
    """
    strings = btf.string_bytes
    base = btf.start_str_off
    parts = strings.split(b"\0")
    starts = map(
        operator.add, itertools.accumulate(map(len, parts), initial=base), itertools.count()
    )
    hash_at = dict(zip(starts, map(zlib.crc32, parts), strict=False))
    pos = strings.find(b"___")
    while pos >= 0:  # a flavored name counts under its essential name
        begin = strings.rfind(b"\0", 0, pos) + 1
        end = strings.index(0, pos)
        hash_at[base + begin] = zlib.crc32(_essential(strings[begin:end]))
        pos = strings.find(b"___", end)
    name_offs = btf.name_offsets()
    try:
        hashes = list(map(hash_at.__getitem__, name_offs))
    except KeyError:  # some name points into the middle of a string, or into the base's
        hashes = [_hash_of(btf, hash_at, off) for off in name_offs]
    packed = list(
        map(
            operator.or_,
            map(operator.lshift, hashes, itertools.repeat(32)),
            itertools.count(btf.start_id),
        )
    )
    packed.sort()
    return HashTable.from_packed(packed)


def _hash_of(btf: Btf, hash_at: dict[int, int], name_off: int) -> int:
    h = hash_at.get(name_off)
    if h is None:
        h = zlib.crc32(_essential(btf.string(name_off).encode("utf-8", "surrogateescape")))
    return h


class NameIndex:
    """Essential-name lookup over one BTF's own types (see the module docstring)."""

    def __init__(
        self,
        btf: Btf,
        table: HashTable | None = None,
        *,
        on_build: Callable[[HashTable], None] | None = None,
        scan_lookups: int = SCAN_LOOKUPS,
    ) -> None:
        self.btf = btf
        self.table = table
        self._on_build = on_build
        self._scans_left = scan_lookups
        self._memo: dict[str, tuple[int, ...]] = {}

    def lookup(self, essential: str) -> tuple[int, ...]:
        """Ids, in id order, of every type whose name's essential part is ``essential``."""
        found = self._memo.get(essential)
        if found is None:
            if not essential:
                found = ()
            elif self.table is None and self._scans_left > 0:
                self._scans_left -= 1
                found = self._scan(essential)
            else:
                found = self._from_table(essential)
            self._memo[essential] = found
        return found

    def ensure_table(self) -> HashTable:
        """Build the table now (and report it to the owner for caching) if there is none."""
        if self.table is None:
            self.table = build_table(self.btf)
            if self._on_build is not None:
                self._on_build(self.table)
        return self.table

    def _from_table(self, essential: str) -> tuple[int, ...]:
        ids = self.ensure_table().get(essential.encode("utf-8", "surrogateescape"))
        name_of = self.btf.name_of
        return tuple(sorted(i for i in ids if _essential_str(name_of(i)) == essential))

    def _scan(self, essential: str) -> tuple[int, ...]:
        """Exact matches through :meth:`Btf.find` (which searches the string and type
        sections without an index), plus every flavored name found in the string table."""
        btf = self.btf
        names = [essential, *self._flavored(essential)]
        own = btf.start_id
        ids = {i for name in names for i in btf.find(name) if i >= own}
        return tuple(sorted(ids))

    def _flavored(self, essential: str) -> list[str]:
        """Strings of the form ``<essential>___<flavor>`` (whose essential part it is)."""
        strings = self.btf.string_bytes
        needle = essential.encode("utf-8", "surrogateescape") + b"___"
        found: list[str] = []
        pos = strings.find(needle)
        while pos >= 0:
            end = strings.index(0, pos)
            text = strings[pos:end].decode("utf-8", "surrogateescape")
            if essential_name_len(text) == len(essential) and text not in found:
                found.append(text)
            pos = strings.find(needle, pos + 1)
        return found
