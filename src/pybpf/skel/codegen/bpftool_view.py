"""An object as bpftool 7.1 sees it right after ``bpf_object__open``: what skeletons are cut from.

bpftool does not generate skeletons from the ELF file directly: it opens the object with the
libbpf it was built with (the Linux 6.1 tree) and walks libbpf's lists.  :class:`ObjectSpec`
already says what ``bpf_object__open`` finds, following libbpf 1.1; this module is a projection
of it that encodes only where the older libbpf inside bpftool differs, so that the headers
match bpftool's byte for byte:

- **maps**: the spec's maps minus ``.bss.*`` ones (libbpf 6.1 has no such maps), every
  global-data map memory-mappable and named by the *generating* name (a subskeleton opens
  under the empty name), then ``.struct_ops`` maps, which libbpf lists last.
- **programs**: the spec's entry points but a lone ``.text`` function (Debian's bpftool 7.1
  carries the stable fix that stopped treating one as an entry program; libbpf 1.1 does).
- **externs**: anything outside ``.kconfig``/``.ksyms`` is refused, and so are kconfig types
  libbpf 6.1's ``find_kcfg_type`` did not know yet (ENUM64 tristates, bitfield integers).
- **DATASECs**: :attr:`ObjectSpec.datasec_entries` with ``.kconfig`` VARs made allocated
  globals, each DATASEC's VARs sorted by offset (stable, so ties keep BTF order), ``static``
  as the BTF linkage says.

One deliberate difference: where a linked object's DATASEC disagrees with the symbol table about
a global's offset (the weak-then-strong fault of libbpf's linker, GUIDE section 3), the symbol
wins, as it does for the BPF code itself; bpftool would describe the stale slot.
"""

from __future__ import annotations

from dataclasses import dataclass

from pybpf.abi.sections import KCONFIG, KSYMS, STRUCT_OPS, TEXT
from pybpf.btf.btf import Btf
from pybpf.btf.types import (
    BtfArray,
    BtfDatasec,
    BtfEnum64,
    BtfInt,
    BtfVar,
    VarLinkage,
)
from pybpf.errors import CodegenError
from pybpf.obj.maps import user_map_name
from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.specs import ExternSpec


@dataclass(frozen=True, slots=True)
class SecVar:
    """One VAR of a DATASEC after libbpf's fix-ups."""

    name: str
    type_id: int
    """The VAR's own type (what the variable is declared as), not the VAR id."""
    offset: int
    size: int
    is_static: bool


@dataclass(frozen=True, slots=True)
class DataSec:
    """A DATASEC with its VARs in libbpf's final order (by offset)."""

    type_id: int
    name: str
    vars: tuple[SecVar, ...]


@dataclass(frozen=True, slots=True)
class OpenedMap:
    """One entry of libbpf's map list."""

    name: str
    """``bpf_map__name``: the VAR name, or ``internal_map_name()`` for global data."""
    real_name: str
    """The ELF section name for global data maps (``.data.custom``), else the map name."""
    is_internal: bool
    value_type_id: int
    """``bpf_map__btf_value_type_id`` at open time: for global data the first type named like
    the section, 0 when the section has no DATASEC (``.rodata.str1.1``)."""

    @property
    def mmapable(self) -> bool:
        """libbpf of Linux 6.1 makes every global-data map ``BPF_F_MMAPABLE``."""
        return self.is_internal


@dataclass(frozen=True, slots=True)
class OpenedObject:
    """What skeleton generators need from an opened object."""

    name: str
    btf: Btf | None
    maps: tuple[OpenedMap, ...]
    programs: tuple[str, ...]
    datasecs: dict[int, DataSec]
    """Every DATASEC of the BTF, fixed up, by type id."""

    def datasec(self, type_id: int) -> DataSec | None:
        return self.datasecs.get(type_id)


def opened_view(spec: ObjectSpec, obj_name: str) -> OpenedObject:
    """bpftool's post-open view of ``spec`` opened under ``obj_name``."""
    return _Projection(spec, obj_name).run()


class _Projection:
    """One object spec, seen through libbpf 6.1's policy."""

    def __init__(self, spec: ObjectSpec, obj_name: str) -> None:
        self.spec = spec
        self.obj_name = obj_name
        self.file = spec.path or "<bytes>"

    def error(self, message: str) -> CodegenError:
        return CodegenError(f"{self.file}: {message}")

    def run(self) -> OpenedObject:
        kconfig = self._kconfig_externs()
        datasecs = self._datasecs(kconfig)
        maps = self._maps(datasecs)
        # libbpf 1.1 makes a lone .text function an entry program; the stable fix in
        # bpftool 7.1's libbpf does not.
        programs = tuple(p.name for p in self.spec.programs if p.section_name != TEXT)
        return OpenedObject(self.obj_name, self.spec.btf, tuple(maps), programs, datasecs)

    # ----------------------------------------------------------------------------- externs

    def _kconfig_externs(self) -> dict[str, ExternSpec]:
        """The kconfig externs by name, once every extern is one libbpf 6.1 opens."""
        kconfig: dict[str, ExternSpec] = {}
        for e in self.spec.externs:
            if e.section_name == KCONFIG:
                self._check_kconfig_type(e)
                kconfig[e.name] = e
            elif e.section_name == "":
                raise self.error(
                    f"extern {e.name!r} is neither a .kconfig nor a .ksyms extern: link in the "
                    "object that defines it first"
                )
            elif e.section_name != KSYMS:
                raise self.error(f"extern {e.name!r} is in unrecognized section {e.section_name!r}")
        return kconfig

    def _check_kconfig_type(self, e: ExternSpec) -> None:
        """What libbpf 1.1 accepts beyond 6.1's ``find_kcfg_type``: ENUM64 tristates, and
        integers whose BTF encoding is a bitfield."""
        btf = self.spec.btf
        assert btf is not None  # the object model refuses externs without BTF
        t = btf[btf.resolve(e.target_type_id)]
        elem = btf[btf.resolve(t.type)] if isinstance(t, BtfArray) else t
        unsupported = isinstance(elem, BtfEnum64) or (
            isinstance(elem, BtfInt) and (elem.bits_offset or elem.nr_bits != elem.size * 8)
        )
        if unsupported:
            raise self.error(f"kconfig extern {e.name!r} has a type libbpf does not support")

    # ----------------------------------------------------------------------------- DATASECs

    def _datasecs(self, kconfig: dict[str, ExternSpec]) -> dict[int, DataSec]:
        btf = self.spec.btf
        result: dict[int, DataSec] = {}
        if btf is None:
            return result
        for type_id, entries in self.spec.datasec_entries.items():
            name = btf.name_of(type_id)
            if name not in (KCONFIG, KSYMS) and self._unsized(btf, type_id, name):
                # libbpf 6.1's btf_fixup_datasec takes the size from the ELF section
                raise self.error(f"DATASEC {name!r} has no ELF section to take its size from")
            out: list[SecVar] = []
            for info in entries:
                var = btf[info.type]
                if not isinstance(var, BtfVar):
                    if name == KSYMS:
                        continue  # kfuncs: libbpf swaps in a dummy VAR; .ksyms is never a map
                    raise self.error(f"DATASEC {name!r} holds a non-VAR type #{info.type}")
                is_static = var.linkage == VarLinkage.STATIC
                if name == KCONFIG and kconfig:
                    if var.name not in kconfig:
                        raise self.error(f"no extern symbol for .kconfig VAR {var.name!r}")
                    is_static = False
                out.append(SecVar(var.name, var.type, info.offset, info.size, is_static))
            out.sort(key=lambda v: v.offset)
            result[type_id] = DataSec(type_id, name, tuple(out))
        return result

    def _unsized(self, btf: Btf, type_id: int, name: str) -> bool:
        datasec = btf[type_id]
        if not isinstance(datasec, BtfDatasec) or datasec.size:
            return False
        section = self.spec.elf.section(name)
        return section is None or section.size == 0

    # ----------------------------------------------------------------------------- maps

    def _maps(self, datasecs: dict[int, DataSec]) -> list[OpenedMap]:
        maps: list[OpenedMap] = []
        for m in self.spec.maps:
            if not m.is_internal:
                maps.append(OpenedMap(m.name, m.name, False, 0))
            elif not m.section_name.startswith(".bss."):
                name = user_map_name(self.obj_name, m.section_name)
                maps.append(OpenedMap(name, m.section_name, True, m.value_type_id))
        section = self.spec.elf.section(STRUCT_OPS)
        if section is not None and section.size > 0 and not section.is_exec:
            sec = next((s for s in datasecs.values() if s.name == STRUCT_OPS), None)
            if sec is None:
                raise self.error(f"section {STRUCT_OPS} has no BTF DATASEC describing it")
            maps.extend(OpenedMap(v.name, v.name, False, 0) for v in sec.vars)
        return maps
