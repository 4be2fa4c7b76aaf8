"""The user-facing BPF object: a spec plus the kernel state a load gives it.

:class:`BpfObject` follows libbpf's lifecycle: *opened* (parsed; map images and sizes can
still be changed) and then *loaded* (kernel objects exist).  The transition happens **in
place**, so that everything holding the object or one of its maps or programs (a skeleton,
or a subskeleton bound to someone else's object) stays valid across ``load()``.  The loader
works on specs only: :meth:`BpfObject.load` gives it the spec the user's settings make and
binds the :class:`~pybpf.load.loader.KernelObject` it returns onto the same
:class:`~.map.Map` and :class:`~.program.Program` instances, which then refer to its
descriptors (it stays their one owner, and closes them).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from pybpf.closing import Closing
from pybpf.elf import ElfFile
from pybpf.errors import BpfError, ObjectError
from pybpf.obj import ObjectSpec
from pybpf.object.link import Link
from pybpf.object.map import Map
from pybpf.object.program import Program
from pybpf.object.strict import StrictAttributes

if TYPE_CHECKING:
    from pybpf.load.loader import KernelObject


class BpfObject(StrictAttributes, Closing):
    """An opened (and, once the loader has run, loaded) BPF object."""

    _PUBLIC_FIELDS = frozenset({"spec", "maps", "programs", "loaded"})

    def __init__(self, spec: ObjectSpec) -> None:
        self.spec = spec
        self.maps: list[Map] = [Map(self, m) for m in spec.maps]
        self.programs: list[Program] = [Program(self, p) for p in spec.programs]
        self.loaded = False
        """Set by :meth:`load` once kernel objects exist; settings are frozen from then on."""
        self._closed = False
        self._kernel: KernelObject | None = None

    @classmethod
    def open(cls, source: str | Path | bytes, name: str | None = None) -> BpfObject:
        """Open an object file (a path) or image (bytes), like ``bpf_object__open``."""
        if isinstance(source, bytes | bytearray | memoryview):
            spec = ObjectSpec.from_elf(ElfFile.from_bytes(bytes(source)), name)
        else:
            spec = ObjectSpec.from_path(source, name)
        return cls(spec)

    @property
    def name(self) -> str:
        return self.spec.name

    def _check_not_loaded(self, what: str) -> None:
        if self.loaded:
            raise BpfError(f"object '{self.name}': cannot {what} after load")

    def load(
        self, *, log_level: int = 0, btf_custom_path: str | Path | None = None
    ) -> BpfObject:
        """Create the maps and load the programs (``bpf_object__load``), in place.

        CO-RE relocations are resolved against the running kernel's BTF, or against
        ``btf_custom_path`` (a BTF file, e.g. from ``pybpf gen min_core_btf``) when given.
        On failure nothing is left behind (no descriptor, no map) and the object stays
        opened.  A verifier rejection raises :class:`~pybpf.LoadError` with the program name
        and the verifier log.
        """
        # The loader (CO-RE, BTF sanitizing, kconfig) is the heaviest import; only load needs it.
        from pybpf.load.loader import load_object

        if self._closed:
            raise BpfError(f"object '{self.name}' is closed")
        if self.loaded:
            raise BpfError(f"object '{self.name}' is already loaded")
        spec = self._effective_spec()
        images = {m.name: bytes(m.image) for m in self.maps if m.is_internal}
        state = load_object(
            spec,
            images=images,
            log_level=log_level,
            map_memory=False,
            btf_custom_path=btf_custom_path,
        )
        self._bind(state, spec)
        self._kernel = state
        return self

    def _effective_spec(self) -> ObjectSpec:
        """:attr:`spec` with what the user changed before load (sizes, types, autoload)."""
        maps = tuple(
            m.spec if m.max_entries == m.spec.max_entries
            else dataclasses.replace(m.spec, max_entries=m.max_entries)
            for m in self.maps
        )  # fmt: skip
        programs = tuple(
            dataclasses.replace(
                p.spec,
                prog_type=p.prog_type,
                expected_attach_type=p.expected_attach_type,
                autoload=p.autoload,
            )
            for p in self.programs
        )
        return dataclasses.replace(self.spec, maps=maps, programs=programs)

    def _bind(self, state: KernelObject, spec: ObjectSpec) -> None:
        """Hand the kernel state of a load to the same maps and programs, all or nothing.

        ``state`` keeps owning every descriptor; maps and programs refer to them.  Global data
        memory is bound map by map and settled once all are, so a failure part way gives every
        map its pre-load image back and closes what the load created.
        """
        try:
            for m, map_spec in zip(self.maps, spec.maps, strict=True):
                m._bind(state.maps[m.name], map_spec)
        except BaseException:
            for m in self.maps:
                m.settle_kernel_memory(loaded=False)
                m._unbind()
            state.close()
            raise
        for m in self.maps:
            m.settle_kernel_memory(loaded=True)
        for p in self.programs:
            p._bind(state.programs.get(p.name), state.logs.get(p.name, ""))
        self.loaded = True

    def attach(self) -> list[Link]:
        """Auto-attach every loaded program whose section names its target; all or nothing."""
        if not self.loaded:
            raise BpfError(f"object '{self.name}' is not loaded")
        made: list[Link] = []
        try:
            for p in self.programs:
                if p.fd is None:
                    continue
                link = p.auto_attach()
                if link is not None:
                    made.append(link)
        except BaseException:
            for link in made:
                link.close()
            raise
        return made

    def close(self) -> None:
        """Detach every link, close every descriptor, unmap global data; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.loaded or self._kernel is not None:
            for p in self.programs:
                p.links.close()
                p._unbind()
            for m in self.maps:
                m.release_memory()
                m._unbind()
            if self._kernel is not None:
                self._kernel.close()
        else:
            for m in self.maps:
                m.release_memory()
        self._kernel = None

    def map(self, name: str) -> Map:
        """The map called ``name``, else the global-data map of ELF section ``name``."""
        for m in self.maps:
            if m.name == name:
                return m
        for m in self.maps:
            if m.is_internal and m.section_name == name:
                return m
        raise ObjectError(f"no map named '{name}'", file=self.spec.path or self.name)

    def program(self, name: str) -> Program:
        for p in self.programs:
            if p.name == name:
                return p
        raise ObjectError(f"no program named '{name}'", file=self.spec.path or self.name)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "loaded" if self.loaded else "opened"
        return (
            f"<BpfObject {self.name} ({state}): {len(self.maps)} maps, "
            f"{len(self.programs)} programs>"
        )
