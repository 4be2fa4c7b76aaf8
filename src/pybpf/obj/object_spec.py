"""The object model: :class:`ObjectSpec`, a frozen description of one BPF ELF object.

An object spec says what libbpf's ``bpf_object__open()`` would find in an object without
creating anything in the kernel.  It lives apart from its parts (:mod:`pybpf.obj.specs`) so
that the parser can build the parts without importing this module, and this module can call
the parser at import time: the object model has no import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pybpf.btf import Btf
from pybpf.btf.ext import BtfExt
from pybpf.btf.types import BtfVarSecInfo
from pybpf.elf import ElfFile
from pybpf.errors import ObjectError
from pybpf.obj.parse import parse_object
from pybpf.obj.specs import ExternSpec, MapSpec, ProgramSpec, VarSpec


@dataclass(frozen=True, eq=False)
class ObjectSpec:
    """Everything ``bpf_object__open()`` learns from one ELF object.

    ``maps`` come in libbpf's order (BTF-defined maps by offset, then global-data sections by
    section index, then ``.kconfig``); ``programs`` are the entry points sorted by section and
    offset; ``subprograms`` are the ``.text`` functions the loader appends when called.
    """

    name: str
    path: str | None
    elf: ElfFile = field(repr=False)
    btf: Btf | None = field(repr=False)
    btf_ext: BtfExt | None = field(repr=False)
    license: str
    kern_version: int | None
    maps: tuple[MapSpec, ...]
    programs: tuple[ProgramSpec, ...]
    subprograms: tuple[ProgramSpec, ...]
    variables: tuple[VarSpec, ...]
    externs: tuple[ExternSpec, ...]
    datasec_entries: Mapping[int, tuple[BtfVarSecInfo, ...]] = field(
        default_factory=dict, repr=False
    )
    """Every DATASEC of the BTF, by type id: its entries in DATASEC order, each at the offset
    the object really uses (ELF symbols over stale or zero DATASEC offsets, kconfig slots),
    sizes as the DATASEC gives them.  What skeleton headers and the kernel's copy of the BTF
    are both built from."""

    # ----------------------------------------------------------------------------- building

    @classmethod
    def from_elf(cls, elf: ElfFile, name: str | None = None) -> ObjectSpec:
        """Describe ``elf``; ``name`` defaults to libbpf's (file name up to the first dot)."""
        return cls(**parse_object(elf, name)._asdict())

    @classmethod
    def from_path(cls, path: str | Path, name: str | None = None) -> ObjectSpec:
        return cls.from_elf(ElfFile.open(path), name)

    @classmethod
    def from_bytes(
        cls, data: bytes, name: str | None = None, *, path: str | None = None
    ) -> ObjectSpec:
        return cls.from_elf(ElfFile.from_bytes(data, path=path), name)

    # ----------------------------------------------------------------------------- lookup

    def _error(self, message: str) -> ObjectError:
        return ObjectError(message, file=self.path or "<bytes>")

    def map(self, name: str) -> MapSpec:
        """The map called ``name``, else the map of the ELF section called ``name``."""
        for m in self.maps:
            if m.name == name:
                return m
        for m in self.maps:
            if m.is_internal and m.section_name == name:
                return m
        raise self._error(f"no map named '{name}'")

    def program(self, name: str) -> ProgramSpec:
        """The entry-point program (or, failing that, subprogram) called ``name``."""
        for p in self.programs:
            if p.name == name:
                return p
        for p in self.subprograms:
            if p.name == name:
                return p
        raise self._error(f"no program named '{name}'")

    def variables_of(self, section_name: str) -> tuple[VarSpec, ...]:
        """The variables of one global-data section, by offset."""
        return tuple(v for v in self.variables if v.section_name == section_name)

    def extern(self, name: str) -> ExternSpec:
        for e in self.externs:
            if e.name == name:
                return e
        raise self._error(f"no extern named '{name}'")
