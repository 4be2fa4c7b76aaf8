"""The object model's parts: frozen descriptions of the maps, programs, relocations,
variables and externs of a BPF ELF object (:class:`~pybpf.obj.object_spec.ObjectSpec` holds them).

A spec says what libbpf's ``bpf_object__open()`` would find in an object (maps with their
definitions and initial images, programs with their types and relocations, global variables,
externs) without creating anything in the kernel.  Specs are plain values: the linker, code
generators and ``pybpf object show`` read them; the loader turns them into kernel objects.

Everything here is immutable so that one spec can back several live objects, and so that a
subskeleton can hold on to the spec of someone else's object without fear of it changing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from pybpf.abi.bpf import AttachType, LibbpfPinType, MapFlags, MapType, ProgType
from pybpf.btf.ext import CoreRelo, FuncInfo, LineInfo
from pybpf.btf.types import VarLinkage
from pybpf.obj.section_defs import SectionDef

if TYPE_CHECKING:
    pass


class MapKind(Enum):
    """Where a map comes from: a map definition, or a global-data section (libbpf's
    ``LIBBPF_MAP_*``).  Custom ``.data.*``/``.bss.*``/``.rodata.*`` sections share the kind
    of their family."""

    USER = "user"
    DATA = "data"
    RODATA = "rodata"
    BSS = "bss"
    KCONFIG = "kconfig"


_NON_IDENT = re.compile(r"[^A-Za-z0-9_]")


def section_ident(section_name: str) -> str:
    """C identifier for a section in generated code: ``.data.custom`` -> ``data_custom``."""
    return _NON_IDENT.sub("_", section_name.lstrip("."))


@dataclass(frozen=True, slots=True)
class MapSpec:
    """One map as libbpf would create it.

    ``name`` is libbpf's user-visible name (``bpf_map__name``): the variable's name for user
    maps, ``internal_map_name()`` for ``.data``/``.rodata``/``.bss``/``.kconfig`` and
    ``.bss.*``, the full section name for ``.data.*``/``.rodata.*``.  ``kernel_name`` is
    what ``BPF_MAP_CREATE`` gets (at most 15 characters; see :attr:`bpf_name`).
    ``section_name`` is the ELF section (``.maps`` for user maps, the data section for
    global data) and is what subskeletons look global-data maps up by.  ``def_offset`` is the
    definition's offset in ``.maps`` (relocations name a map by section and offset).
    ``btf_var_type_id`` is the map's VAR in ``.maps``, or the DATASEC for global data.
    ``init_slots`` pairs an index with the name of the map (map-in-map) or program
    (prog-array) that ``.values = {...}`` puts there.
    """

    name: str
    section_name: str
    kind: MapKind
    type: MapType
    key_size: int
    value_size: int
    max_entries: int
    flags: MapFlags
    key_type_id: int = 0
    value_type_id: int = 0
    btf_var_type_id: int = 0
    pinning: LibbpfPinType = LibbpfPinType.LIBBPF_PIN_NONE
    numa_node: int = 0
    map_extra: int = 0
    inner: MapSpec | None = None
    init_slots: tuple[tuple[int, str], ...] = ()
    file_data: bytes = field(default=b"", repr=False)
    """What the object file holds for a global-data map: the ``.data``/``.rodata`` bytes;
    nothing for ``.bss`` and ``.kconfig``, which start as zeros (see :attr:`initial_value`)."""
    section_index: int = 0
    def_offset: int = 0
    kernel_name: str = ""

    @property
    def initial_value(self) -> bytes:
        """The value a global-data map starts with (libbpf's ``bpf_map__initial_value``).

        Zero-filled to ``value_size`` when asked for, not when the object is parsed: a
        ``.bss`` costs nothing in the file, and describing an object (``object show``, the
        linker, code generators) should not allocate its size.
        """
        if not self.is_internal:
            return self.file_data
        return self.file_data.ljust(self.value_size, b"\0")

    @property
    def bpf_name(self) -> str:
        """The name given to the kernel: ``kernel_name`` if set, else ``name``."""
        return self.kernel_name or self.name

    @property
    def is_internal(self) -> bool:
        """A global-data map libbpf creates by itself (``bpf_map__is_internal``)."""
        return self.kind is not MapKind.USER

    @property
    def mmapable(self) -> bool:
        return bool(self.flags & MapFlags.BPF_F_MMAPABLE)

    @property
    def ident(self) -> str:
        """Identifier in generated code: the map name, or the section's for global data."""
        if self.kind is MapKind.USER:
            return self.name
        return section_ident(self.section_name)


class RelocKind(Enum):
    """What an instruction relocation refers to (libbpf's ``RELO_*`` at open time)."""

    MAP = "map"
    """``ld_imm64`` of a map: becomes ``BPF_PSEUDO_MAP_FD``."""
    DATA = "data"
    """``ld_imm64`` of a global variable: map fd + offset (``BPF_PSEUDO_MAP_VALUE``)."""
    CALL = "call"
    """``call`` of a subprogram (``BPF_PSEUDO_CALL``)."""
    SUBPROG_ADDR = "subprog_addr"
    """``ld_imm64`` of a function's address, e.g. a ``bpf_loop`` callback."""
    EXTERN_VAR = "extern_var"
    """``ld_imm64`` of a ``__kconfig`` or ``__ksym`` variable."""
    EXTERN_FUNC = "extern_func"
    """``call`` of an extern function (a kfunc)."""


@dataclass(frozen=True, slots=True)
class RelocSpec:
    """One relocation inside a program.

    ``insn_index`` counts from the start of the function.  ``symbol`` is the ELF symbol's
    name (the section name for section symbols).  ``target_offset`` is, for ``DATA``, the byte
    offset into the map's value (symbol value plus the instruction's ``imm``) and, for
    ``CALL``/``SUBPROG_ADDR``, the byte offset of the callee in section ``section_index``;
    ``target`` names that callee when a function starts there.
    """

    insn_index: int
    kind: RelocKind
    symbol: str
    map_name: str | None = None
    target_offset: int = 0
    section_index: int = 0
    extern_name: str | None = None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """One function of a code section: an entry-point program or a subprogram.

    ``section_name`` drops the leading ``?`` that marks a program as not auto-loaded
    (``autoload`` says so instead), as libbpf does.  ``func_info``/``line_info``/``core_relos``
    are this function's ``.BTF.ext`` records with ``insn_off`` made function-relative.
    """

    name: str
    section_name: str
    section_index: int
    offset: int
    insns: bytes = field(repr=False)
    prog_type: ProgType
    expected_attach_type: AttachType | None
    attach_target: str
    sec_def: SectionDef | None
    is_global: bool
    is_subprog: bool = False
    autoload: bool = True
    is_hidden: bool = False
    relocations: tuple[RelocSpec, ...] = ()
    func_info: tuple[FuncInfo, ...] = ()
    line_info: tuple[LineInfo, ...] = ()
    core_relos: tuple[CoreRelo, ...] = ()

    @property
    def size(self) -> int:
        return len(self.insns)

    @property
    def insn_count(self) -> int:
        return len(self.insns) // 8

    @property
    def expected_attach_type_value(self) -> int:
        """What ``BPF_PROG_LOAD`` gets (``expected_attach_type`` or 0)."""
        return 0 if self.expected_attach_type is None else int(self.expected_attach_type)


@dataclass(frozen=True, slots=True)
class VarSpec:
    """A global variable: one DATASEC VAR of a global-data section.

    ``offset`` comes from the ELF symbol when symbol and DATASEC disagree (a linker bug seen
    in bpftool 7.1 leaves DATASEC offsets stale).  ``linkage`` is the effective one:
    ``__hidden`` globals count as ``STATIC``, as in libbpf, since skeletons must not expose
    them.  ``type_id`` is the variable's type; ``btf_var_id`` the VAR itself.
    """

    name: str
    section_name: str
    offset: int
    size: int
    type_id: int
    linkage: VarLinkage
    is_weak: bool = False
    btf_var_id: int = 0

    @property
    def is_static(self) -> bool:
        return self.linkage is VarLinkage.STATIC


class ExternKind(Enum):
    """What an ``extern`` symbol is.

    ``KCONFIG`` and ``KSYM``/``FUNC`` (a ksym function: a kfunc) are resolved by the loader;
    ``VAR`` and ``MAP`` are left for a static linker to resolve against another object.
    """

    KCONFIG = "kconfig"
    KSYM = "ksym"
    VAR = "var"
    MAP = "map"
    FUNC = "func"


class KcfgType(Enum):
    """How a ``.kconfig`` value is parsed from the kernel config (libbpf's ``KCFG_*``)."""

    BOOL = "bool"
    TRISTATE = "tristate"
    CHAR = "char"
    INT = "int"
    CHAR_ARR = "char_arr"


@dataclass(frozen=True, slots=True)
class ExternSpec:
    """One unresolved symbol.

    ``type_id`` is the extern's BTF VAR or FUNC.  ``target_type_id`` is the type a ksym or
    kconfig value has (modifiers and typedefs skipped for ksyms, as libbpf matches them
    against the kernel's BTF).  For ``KCONFIG`` externs, ``offset``/``size``/``align`` place
    the value in the ``.kconfig`` map, laid out like libbpf does.
    """

    name: str
    kind: ExternKind
    type_id: int
    is_weak: bool
    section_name: str
    symbol_index: int = 0
    target_type_id: int = 0
    offset: int = 0
    size: int = 0
    align: int = 0
    kcfg_type: KcfgType | None = None
    is_signed: bool = False


def default_object_name(path: str | None) -> str:
    """libbpf's object name: the file's base name up to its first dot, at most 15 chars."""
    if not path:
        return "bpf_object"
    base = Path(path).name.split(".", 1)[0]
    return base[:15] or "bpf_object"
