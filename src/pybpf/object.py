"""The user-facing BPF object: a spec plus the state a loader attaches to it.

:class:`BpfObject` follows libbpf's lifecycle: *opened* (parsed; map images and sizes can
still be changed) and then *loaded* (kernel objects exist).  The transition happens **in
place**, so that everything holding the object or one of its maps or programs (a skeleton,
or a subskeleton bound to someone else's object) stays valid across ``load()``.  This module
holds the opened half; the loader fills in ``fd`` fields and flips ``loaded``.

Map images are ``bytearray`` buffers: skeleton accessors write variables into them before
load, the loader copies them into the kernel map, and after load they may be replaced by the
map's mmap-ed memory.
"""

from __future__ import annotations

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
        self.image = bytearray(spec.initial_value)
        """The initial value of a global-data map; skeleton accessors write into it."""
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

    def __repr__(self) -> str:
        return f"<Map {self.name} {self.type.name} section={self.section_name}>"


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
