"""On-disk cache of what opening a kernel BTF costs: type offsets and the name table.

Keyed by the BTF's *contents* (size and CRC-32 of the bytes), so a new kernel, a reloaded
module or a different custom file can never be served stale data; the CRC costs about as
much as reading the file (~2 ms for vmlinux), and for the running kernel's vmlinux it is
remembered per boot (``vmlinux.key``: boot id, size, CRC).  Entries are
``btf-<size>-<crc>.idx`` in ``$XDG_CACHE_HOME/pybpf`` (default ``~/.cache/pybpf``);
``PYBPF_CACHE_DIR`` overrides, ``PYBPF_NO_CACHE=1`` disables.

A cache file is written to a temporary name and renamed into place, so readers see either
nothing or a whole file; it carries its own CRC, and anything that fails to parse or verify
is ignored (and later replaced), never trusted.

Layout (little-endian)::

    8s  magic "PYBPFBX4"    u32 flags (1: has name table)   u32 n_types
    u64 btf_size            u32 btf_crc32                    u32 n_entries
    u32 payload_crc32       u32 pad                          8s  index format
    u32 starts[n_types]     u32 name_hashes[n_entries]       u32 type_ids[n_entries]

``starts`` is a :class:`~pybpf.btf.btf.TypeIndex`, in the representation named by the format
field (:attr:`TypeIndex.FORMAT <pybpf.btf.btf.TypeIndex.FORMAT>`); a file of another format is
ignored.  The magic changed from ``PYBPFBX3`` when the index became ``Btf``'s public API, so
files written before are never read.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import sys
import tempfile
import threading
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path

from pybpf.btf.btf import TypeIndex
from pybpf.core.index import HashTable
from pybpf.errors import BtfError

MAGIC = b"PYBPFBX4"
_HEADER = struct.Struct("<8sIIQIIII8s")
FLAG_TABLE = 1
MAX_FILES = 8
"""Cache entries kept (one per kernel or custom file seen recently)."""
_FORMAT = TypeIndex.FORMAT.encode().ljust(8, b"\0")[:8]


@dataclass(frozen=True, slots=True)
class CacheKey:
    """Identity of a BTF blob: its size and CRC-32."""

    size: int
    crc: int

    @classmethod
    def of(cls, data: bytes) -> CacheKey:
        return cls(len(data), zlib.crc32(data))

    @property
    def filename(self) -> str:
        return f"btf-{self.size}-{self.crc:08x}.idx"


@dataclass(frozen=True, slots=True)
class CacheEntry:
    type_index: TypeIndex
    table: HashTable | None


def default_cache_dir() -> Path | None:
    """Where cache files go, or ``None`` when caching is disabled."""
    if os.environ.get("PYBPF_NO_CACHE"):
        return None
    explicit = os.environ.get("PYBPF_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg else Path.home() / ".cache"
    return root / "pybpf"


def _u32_array(raw: bytes | memoryview) -> array[int]:
    out = array("I")
    out.frombytes(raw)
    if sys.byteorder == "big":
        out.byteswap()
    return out


def _to_le(values: array[int]) -> bytes:
    if sys.byteorder == "big":
        values = array("I", values)
        values.byteswap()
    return values.tobytes()


def encode(key: CacheKey, type_index: TypeIndex, table: HashTable | None) -> bytes:
    parts = [_to_le(type_index.starts)]
    if table is not None:
        parts += [_to_le(table.hashes), _to_le(table.ids)]
    payload = b"".join(parts)
    flags = FLAG_TABLE if table is not None else 0
    entries = len(table) if table is not None else 0
    header = _HEADER.pack(
        MAGIC, flags, len(type_index), key.size, key.crc, entries, zlib.crc32(payload), 0, _FORMAT
    )
    return header + payload


def decode(key: CacheKey, raw: bytes) -> CacheEntry | None:
    """The entry in ``raw`` if it is whole, verified and for ``key``; else ``None``."""
    if len(raw) < _HEADER.size:
        return None
    magic, flags, n_types, size, crc, entries, payload_crc, _, form = _HEADER.unpack_from(raw)
    if magic != MAGIC or size != key.size or crc != key.crc or form != _FORMAT:
        return None
    has_table = bool(flags & FLAG_TABLE)
    if not has_table:
        entries = 0
    view = memoryview(raw)[_HEADER.size :]
    if len(view) != 4 * (n_types + 2 * entries) or zlib.crc32(view) != payload_crc:
        return None
    end = 4 * n_types
    type_index = TypeIndex(_u32_array(view[:end]))
    if not has_table:
        return CacheEntry(type_index, None)
    hashes = _u32_array(view[end : end + 4 * entries])
    ids = _u32_array(view[end + 4 * entries :])
    return CacheEntry(type_index, HashTable(hashes, ids))


class IndexCache:
    """The cache directory: load and store entries; every failure means "no cache"."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def load(self, key: CacheKey) -> CacheEntry | None:
        if self.directory is None:
            return None
        try:
            raw = (self.directory / key.filename).read_bytes()
        except OSError:
            return None
        return decode(key, raw)

    def store(self, key: CacheKey, type_index: TypeIndex, table: HashTable | None) -> bool:
        """Write atomically; ``False`` (and no exception) if the directory is not writable
        or the index is not of 32-bit words (the only width the file format holds)."""
        if self.directory is None or type_index.starts.typecode != "I":
            return False
        data = encode(key, type_index, table)
        tmp_name = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp_name, self.directory / key.filename)
            tmp_name = None
        except OSError:
            return False
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
        self._prune(keep=key.filename)
        return True

    def _prune(self, keep: str) -> None:
        """Keep the :data:`MAX_FILES` most recently written entries (old kernels go away)."""
        assert self.directory is not None
        try:
            entries = sorted(
                (p.stat().st_mtime, p) for p in self.directory.glob("btf-*.idx") if p.name != keep
            )
        except OSError:
            return
        for _, path in entries[: max(0, len(entries) - (MAX_FILES - 1))]:
            with contextlib.suppress(OSError):
                path.unlink()


def read_keyed(path: Path, cache: IndexCache) -> tuple[bytes, CacheKey | None, CacheEntry | None]:
    """Read the BTF at ``path`` and, if caching is on, its key and cache entry.

    The key costs a CRC over every byte (~2 ms for vmlinux), as long as the read itself.  For
    the running kernel's vmlinux the key is remembered per boot (see :func:`_remembered_key`),
    so the cache entry loads in a helper thread while this thread reads the bytes.  Otherwise
    the CRC runs over a private read-only mapping of the file in the helper thread, which
    then loads the entry, while this thread reads.  Where the file cannot be mapped, the
    steps run one after the other.
    """
    if cache.directory is None:
        return _read(path), None, None
    remembered = _remembered_key(path, cache)
    if remembered is not None:
        loaded: list[CacheEntry | None] = []
        helper = threading.Thread(target=lambda: loaded.append(cache.load(remembered)))
        helper.start()
        try:
            data = _read(path)
        finally:
            helper.join()
        if loaded and loaded[0] is not None and len(data) == remembered.size:
            return data, remembered, loaded[0]
        key = CacheKey.of(data)  # no entry yet, or a stale stamp: use the true key
        _remember_key(path, cache, key)
        return data, key, cache.load(key)
    try:
        with open(path, "rb") as handle:
            mapping = mmap.mmap(handle.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        data = _read(path)
        key = CacheKey.of(data)
        _remember_key(path, cache, key)
        return data, key, cache.load(key)
    found: list[tuple[CacheKey, CacheEntry | None]] = []

    def key_and_entry() -> None:
        key = CacheKey(len(mapping), zlib.crc32(mapping))
        found.append((key, cache.load(key)))

    helper = threading.Thread(target=key_and_entry, name="pybpf-btf-key")
    helper.start()
    try:
        data = _read(path)
    finally:
        helper.join()
        mapping.close()
    if not found or found[0][0].size != len(data):
        key = CacheKey.of(data)  # the helper failed, or the file changed under us
        return data, key, cache.load(key)
    _remember_key(path, cache, found[0][0])
    return data, found[0][0], found[0][1]


KERNEL_VMLINUX = Path("/sys/kernel/btf/vmlinux")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_STAMP = "vmlinux.key"


def _remembered_key(path: Path, cache: IndexCache) -> CacheKey | None:
    """The content key of the running kernel's vmlinux BTF, as computed earlier this boot.

    The kernel's own BTF cannot change without a reboot, so its CRC, once computed, holds
    for as long as ``boot_id`` does; the cache entry is still found by that content key.
    Only vmlinux qualifies: a module's BTF changes when the module is reloaded.
    """
    if path != KERNEL_VMLINUX or cache.directory is None:
        return None
    try:
        boot = BOOT_ID.read_text().strip()
        size = path.stat().st_size
        fields = (cache.directory / _STAMP).read_text().split()
    except OSError:
        return None
    if len(fields) != 3 or fields[0] != boot or fields[1] != str(size):
        return None
    try:
        return CacheKey(size, int(fields[2], 16))
    except ValueError:
        return None


def _remember_key(path: Path, cache: IndexCache, key: CacheKey) -> None:
    if path != KERNEL_VMLINUX or cache.directory is None:
        return
    try:
        boot = BOOT_ID.read_text().strip()
        cache.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=cache.directory)
        with os.fdopen(fd, "w") as out:
            out.write(f"{boot} {key.size} {key.crc:08x}\n")
        os.replace(tmp, cache.directory / _STAMP)
    except OSError:
        return


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BtfError(f"cannot read: {exc.strerror}", file=str(path)) from None
