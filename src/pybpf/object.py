"""The user-facing BPF object: a spec plus the state a loader attaches to it.

:class:`BpfObject` follows libbpf's lifecycle: *opened* (parsed; map images and sizes can
still be changed) and then *loaded* (kernel objects exist).  The transition happens **in
place**, so that everything holding the object or one of its maps or programs (a skeleton,
or a subskeleton bound to someone else's object) stays valid across ``load()``.  This module
holds the opened half; the loader fills in ``fd`` fields and flips ``loaded``.

A global-data map's image is the memory skeleton accessors read and write.  For mmapable
maps it is an anonymous ``mmap`` (not a ``bytearray``) so that its address is stable: after the
loader has created the kernel map it calls :meth:`Map.bind_kernel_memory`, which maps the kernel
map over those very pages (as libbpf does), so accessors and ctypes views obtained before load
see live kernel memory after it.
"""

from __future__ import annotations

import contextlib
import mmap
from pathlib import Path

from pybpf.elf import ElfFile
from pybpf.errors import BpfError, ObjectError
from pybpf.obj import MapSpec, ObjectSpec, ProgramSpec
from pybpf.uapi import AttachType, MapType, ProgType


class Map:
    """One map of a :class:`BpfObject`: its spec plus settings changeable before load."""

    def __init__(self, obj: BpfObject, spec: MapSpec) -> None:
        self.obj = obj
        self.spec = spec
        self.image: bytearray | mmap.mmap = _new_image(spec)
        """The initial value of a global-data map; skeleton accessors write into it."""
        self._live = False
        self._max_entries = spec.max_entries
        self.fd: int | None = None
        """The map's file descriptor once loaded (set by the loader)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def section_name(self) -> str:
        return self.spec.section_name

    @property
    def type(self) -> MapType:
        return self.spec.type

    @property
    def key_size(self) -> int:
        return self.spec.key_size

    @property
    def value_size(self) -> int:
        return self.spec.value_size

    @property
    def max_entries(self) -> int:
        return self._max_entries

    @max_entries.setter
    def max_entries(self, value: int) -> None:
        """Like ``bpf_map__set_max_entries``: only before load."""
        self.obj._check_not_loaded(f"set max_entries of map '{self.name}'")
        if not 0 <= value <= 0xFFFFFFFF:
            raise BpfError(f"map '{self.name}': max_entries {value} out of range")
        self._max_entries = value

    @property
    def is_internal(self) -> bool:
        return self.spec.is_internal

    @property
    def initial_value(self) -> bytes:
        return bytes(self.image)

    @initial_value.setter
    def initial_value(self, value: bytes) -> None:
        """Like ``bpf_map__set_initial_value``: same size, before load, global data only."""
        self.obj._check_not_loaded(f"set the initial value of map '{self.name}'")
        if not self.spec.is_internal:
            raise BpfError(f"map '{self.name}' is not a global-data map")
        if len(value) != len(self.image):
            raise BpfError(
                f"map '{self.name}': initial value is {len(value)} bytes, "
                f"expected {len(self.image)}"
            )
        self.image[:] = value

    @property
    def memory(self) -> bytearray | mmap.mmap:
        """The section's bytes: the initial image before load, live map memory after.

        The object is the same before and after load (only what backs its pages changes).
        """
        return self.image

    @property
    def memory_is_live(self) -> bool:
        """Whether views may alias :attr:`memory` and see every later change.

        True except for maps whose image was left as a private copy at load (a frozen
        ``.rodata`` or ``.kconfig``: the kernel allows them read-only mappings only, and a
        Python write through a read-only mapping would crash the process).
        """
        return not self.obj.loaded or self._live

    def write_refusal(self) -> str | None:
        """Why the section cannot be written now (``None`` when it can)."""
        from pybpf.obj.spec import MapKind

        if self.spec.kind is MapKind.KCONFIG:
            return ".kconfig values come from the running kernel's configuration (read-only)"
        if self.obj.loaded and self.spec.kind is MapKind.RODATA:
            return f"{self.section_name} is frozen once the object is loaded"
        if self.obj.loaded and not self._live:
            return "this map's memory is not mapped into the process"
        return None

    def bind_kernel_memory(self, fd: int) -> None:
        """Make :attr:`memory` the kernel map's memory (the loader calls this after creation).

        Writable global data (``.data``, ``.bss``, custom ``.data.*``) is mapped over the image's
        own pages, so nothing that points into the image goes stale.  Frozen maps keep the
        image as a private copy of what was loaded, which is exactly their content forever.
        """
        from pybpf.kernel.remap import remap_over
        from pybpf.obj.spec import MapKind

        if not isinstance(self.image, mmap.mmap) or self.spec.kind in (
            MapKind.RODATA,
            MapKind.KCONFIG,
        ):
            return
        remap_over(self.image, fd, writable=True)
        self._live = True

    def release_memory(self) -> None:
        """Unmap the image (on close); views into it must not be used afterwards."""
        if isinstance(self.image, mmap.mmap):
            # Live ctypes views may still point here; then the pages go with the last view.
            with contextlib.suppress(BufferError):
                self.image.close()
        self._live = False

    def __repr__(self) -> str:
        return f"<Map {self.name} {self.type.name} section={self.section_name}>"


def _new_image(spec: MapSpec) -> bytearray | mmap.mmap:
    """A stable-address image for mmapable global data, a plain bytearray otherwise."""
    data = spec.initial_value
    if not spec.mmapable or not data:
        return bytearray(data)
    image = mmap.mmap(-1, len(data), flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    image[:] = data
    return image


class Program:
    """One entry-point program of a :class:`BpfObject`."""

    def __init__(self, obj: BpfObject, spec: ProgramSpec) -> None:
        self.obj = obj
        self.spec = spec
        self.autoload = spec.autoload
        self._prog_type = spec.prog_type
        self._expected_attach_type = spec.expected_attach_type
        self.fd: int | None = None
        """The program's file descriptor once loaded (set by the loader)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def section_name(self) -> str:
        return self.spec.section_name

    @property
    def prog_type(self) -> ProgType:
        return self._prog_type

    @prog_type.setter
    def prog_type(self, value: ProgType) -> None:
        """Like ``bpf_program__set_type``, for sections libbpf cannot type."""
        self.obj._check_not_loaded(f"set the type of program '{self.name}'")
        self._prog_type = value

    @property
    def expected_attach_type(self) -> AttachType | None:
        return self._expected_attach_type

    @expected_attach_type.setter
    def expected_attach_type(self, value: AttachType | None) -> None:
        self.obj._check_not_loaded(f"set the attach type of program '{self.name}'")
        self._expected_attach_type = value

    def __repr__(self) -> str:
        return f"<Program {self.name} {self.prog_type.name} section={self.section_name}>"


class BpfObject:
    """An opened (and, once the loader has run, loaded) BPF object."""

    def __init__(self, spec: ObjectSpec) -> None:
        self.spec = spec
        self.maps: list[Map] = [Map(self, m) for m in spec.maps]
        self.programs: list[Program] = [Program(self, p) for p in spec.programs]
        self.loaded = False
        """Set by the loader once kernel objects exist; settings are frozen from then on."""

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
        state = "loaded" if self.loaded else "opened"
        return f"<BpfObject {self.name} ({state}): {len(self.maps)} maps, " \
               f"{len(self.programs)} programs>"
