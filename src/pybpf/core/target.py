"""The BTF that CO-RE relocates *against*: the running kernel's, or a file the user names.

For the running kernel that is ``/sys/kernel/btf/vmlinux`` plus, only when vmlinux has no
candidate for a type, the split BTF of every loaded module (``/sys/kernel/btf/<module>``),
as libbpf searches them.  A custom file (libbpf's ``btf_custom_path``, e.g. the output of
``pybpf gen min_core_btf``) replaces all of that, modules included.

Opening is the expensive part (see :class:`pybpf.btf.btf.TypeIndex` and
:mod:`pybpf.core.index`), so a :class:`TargetBtf` for the running kernel is shared by everything
in the process, and its type offsets and name table are cached on disk for the next process.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pybpf.btf.btf import Btf
from pybpf.btf.files import btf_from_file
from pybpf.btf.types import BtfKind
from pybpf.core.btfutil import type_or_none
from pybpf.core.cache import IndexCache, default_cache_dir, read_keyed
from pybpf.core.index import SCAN_LOOKUPS, HashTable, NameIndex
from pybpf.core.names import essential_name
from pybpf.errors import BtfError

KERNEL_BTF_DIR = Path("/sys/kernel/btf")


class CacheDir(Enum):
    """``cache_dir=CacheDir.DEFAULT``: the user's cache directory (see :mod:`.cache`)."""

    DEFAULT = "default"


CacheDirArg = str | Path | CacheDir | None


def _cache_for(cache_dir: CacheDirArg) -> IndexCache:
    if cache_dir is CacheDir.DEFAULT:
        return IndexCache(default_cache_dir())
    return IndexCache(Path(cache_dir) if cache_dir is not None else None)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A target type that may correspond to a local one: ``type_id`` of ``btf``, from ``source``
    (``"vmlinux"``, a module name, or the custom file's path)."""

    btf: Btf
    type_id: int
    source: str


class _Source:
    """One searchable BTF: the blob and its name index."""

    def __init__(self, name: str, btf: Btf, index: NameIndex) -> None:
        self.name = name
        self.btf = btf
        self.index = index


def _open_cached(path: Path, *, cache: IndexCache) -> tuple[Btf, NameIndex]:
    """Open the BTF at ``path`` using (and filling) the on-disk cache."""
    data, key, entry = read_keyed(path, cache)
    type_index = entry.type_index if entry is not None else None
    btf = Btf.from_bytes(data, file=str(path), type_index=type_index)
    if key is None:
        return btf, NameIndex(btf)

    def store(table: HashTable | None) -> None:
        assert key is not None
        cache.store(key, btf.type_index, table)

    if entry is None:
        store(None)
    return btf, NameIndex(btf, entry.table if entry is not None else None, on_build=store)


class TargetBtf:
    """Where candidates for local types are looked for.

    Build one with :meth:`running_kernel` (shared per process), :meth:`from_path` (a custom
    BTF: raw or an ELF object's ``.BTF``) or :meth:`from_btf`.
    """

    def __init__(
        self,
        main: Btf,
        index: NameIndex,
        *,
        name: str = "vmlinux",
        module_dir: Path | None = None,
    ) -> None:
        self._main = _Source(name, main, index)
        self._module_dir = module_dir
        self._modules: list[_Source] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------ building

    @classmethod
    def running_kernel(
        cls, *, btf_dir: str | Path = KERNEL_BTF_DIR, cache_dir: CacheDirArg = CacheDir.DEFAULT
    ) -> TargetBtf:
        """vmlinux and module BTF of the running kernel.

        With the default arguments the same object is returned for the whole process.
        ``cache_dir`` is a directory for the on-disk cache, or ``None`` for no cache.
        """
        if Path(btf_dir) == KERNEL_BTF_DIR and cache_dir is CacheDir.DEFAULT:
            global _SHARED
            with _SHARED_LOCK:
                if _SHARED is None:
                    _SHARED = cls._open_kernel(KERNEL_BTF_DIR, _cache_for(cache_dir))
                return _SHARED
        return cls._open_kernel(Path(btf_dir), _cache_for(cache_dir))

    @classmethod
    def _open_kernel(cls, btf_dir: Path, cache: IndexCache) -> TargetBtf:
        btf, index = _open_cached(btf_dir / "vmlinux", cache=cache)
        return cls(btf, index, module_dir=btf_dir)

    @classmethod
    def from_path(cls, path: str | Path, *, cache_dir: CacheDirArg = None) -> TargetBtf:
        """A custom target BTF (raw BTF or an ELF object with ``.BTF``); no module search.

        Small custom files are cheap to open, so the disk cache is off unless asked for.
        """
        path = Path(path)
        try:
            with open(path, "rb") as handle:
                magic = handle.read(4)
        except OSError as exc:
            raise BtfError(f"cannot read: {exc.strerror}", file=str(path)) from None
        if magic == b"\x7fELF":
            return cls.from_btf(btf_from_file(path), name=str(path))
        btf, index = _open_cached(path, cache=_cache_for(cache_dir))
        return cls(btf, index, name=str(path))

    @classmethod
    def from_btf(cls, btf: Btf, *, name: str = "custom") -> TargetBtf:
        """Relocate against an already parsed :class:`Btf` (it is re-opened as raw bytes)."""
        from pybpf.btf.builder import BtfBuilder

        data = BtfBuilder.from_btf(btf).encode() if btf.base is None else None
        if data is None:
            raise ValueError("a split BTF cannot be a CO-RE target on its own")
        indexed = Btf.from_bytes(data, file=btf.file)
        return cls(indexed, NameIndex(indexed), name=name)

    # ------------------------------------------------------------------------------ queries

    @property
    def main(self) -> Btf:
        """vmlinux (or the custom BTF)."""
        return self._main.btf

    @property
    def name(self) -> str:
        return self._main.name

    def modules(self) -> list[tuple[str, Btf]]:
        """Loaded modules' split BTF, opened on first use (empty for a custom target)."""
        return [(m.name, m.btf) for m in self._module_sources()]

    def _module_sources(self) -> list[_Source]:
        with self._lock:
            if self._modules is None:
                self._modules = self._open_modules()
            return self._modules

    def _open_modules(self) -> list[_Source]:
        if self._module_dir is None:
            return []
        try:
            names = sorted(n for n in os.listdir(self._module_dir) if n != "vmlinux")
        except OSError:
            return []
        found: list[_Source] = []
        for name in names:
            path = self._module_dir / name
            try:
                data = path.read_bytes()
            except OSError:
                continue  # unloaded in the meantime
            btf = Btf.from_bytes(data, base=self._main.btf, file=str(path))
            index = NameIndex(btf, scan_lookups=0)  # small: build the table at once
            found.append(_Source(name, btf, index))
        return found

    def find_candidates(self, local_btf: Btf, local_id: int) -> list[Candidate]:
        """Target types with the same essential name and a compatible kind, in libbpf's order:
        vmlinux first, modules only if vmlinux has none."""
        local_t = type_or_none(local_btf, local_id)
        if local_t is None or not local_t.name:
            return []
        essential = essential_name(local_t.name)
        found = self._search(self._main, essential, local_t.kind)
        if found or self._module_dir is None:
            return found
        for module in self._module_sources():
            found.extend(self._search(module, essential, local_t.kind))
        return found

    @staticmethod
    def _search(source: _Source, essential: str, kind: BtfKind) -> list[Candidate]:
        btf = source.btf
        out: list[Candidate] = []
        for type_id in source.index.lookup(essential):
            t_kind = btf.kind_of(type_id)
            if t_kind == kind or (
                t_kind in (BtfKind.ENUM, BtfKind.ENUM64) and kind in (BtfKind.ENUM, BtfKind.ENUM64)
            ):
                out.append(Candidate(btf, type_id, source.name))
        return out

    def expect_lookups(self, count: int) -> None:
        """A hint: about ``count`` distinct names are about to be looked up.  Past a few,
        building the name table at once beats scanning for each."""
        if count > SCAN_LOOKUPS:
            self._main.index.ensure_table()

    def prepare(self) -> None:
        """Build (and cache) the full name table now rather than after a few lookups."""
        self._main.index.ensure_table()

    def __repr__(self) -> str:
        return f"<TargetBtf {self.name}: {len(self._main.btf)} types>"


_SHARED: TargetBtf | None = None
_SHARED_LOCK = threading.Lock()
