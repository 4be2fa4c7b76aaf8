"""An object as libbpf sees it right after ``bpf_object__open``: the view skeletons are cut from.

bpftool does not generate skeletons from the ELF file directly: it opens the object with the
libbpf it was built with and walks libbpf's lists.  Several of the facts a skeleton bakes in
exist only in that opened state, so this module reproduces it from :class:`ElfFile` + :class:`Btf`
(pure, no syscalls), following libbpf as shipped with bpftool 7.1 (the Linux 6.1 tree):

- **maps**, in libbpf's order: BTF-defined maps of ``.maps`` (by DATASEC order), then one
  internal map per non-empty ``.data``/``.data.*``/``.rodata``/``.rodata.*``/``.bss`` section (in
  section order), then ``.kconfig`` when the object has kconfig externs, then ``.struct_ops``
  maps.  ``.data``, ``.rodata``, ``.bss`` and ``.kconfig`` maps are named by
  ``internal_map_name()`` from the *object name*, custom sections by their section name; all
  are memory-mappable in this libbpf version.
- **programs**: functions of executable sections sorted by (section, offset), minus the
  subprograms: every ``.text`` function (Debian's bpftool 7.1 carries the stable fix that
  stopped treating a lone ``.text`` function as an entry program).
- **DATASECs** after libbpf's BTF fix-ups: ``.kconfig`` offsets laid out by the extern sort
  (alignment down, size up, then name) with its VARs turned into allocated globals, zero-size
  DATASECs sized from ELF and their offsets taken from the symbol table, and every DATASEC's
  VARs sorted by offset.

One deliberate difference: where a linked object's DATASEC disagrees with the symbol table about
a global's offset (the weak-then-strong fault of libbpf's linker, GUIDE section 3), the symbol
wins, as it does for the BPF code itself; bpftool would describe the stale slot.
"""

from __future__ import annotations

from dataclasses import dataclass

from pybpf.abi.bpf import BPF_OBJ_NAME_LEN
from pybpf.abi.sections import KCONFIG, KSYMS, LEGACY_MAPS, MAPS, STRUCT_OPS, TEXT
from pybpf.btf.btf import Btf
from pybpf.btf.c_dump_layout import TypeLayout
from pybpf.btf.types import (
    BtfArray,
    BtfConst,
    BtfDatasec,
    BtfEnum,
    BtfFunc,
    BtfInt,
    BtfKind,
    BtfRestrict,
    BtfTypedef,
    BtfTypeTag,
    BtfVar,
    BtfVolatile,
    FuncLinkage,
    IntEncoding,
    VarLinkage,
)
from pybpf.elf.constants import SHN_UNDEF, SectionType, SymbolBinding, SymbolType
from pybpf.elf.reader import ElfFile, Symbol
from pybpf.errors import CodegenError


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


def sanitize_map_name(name: str) -> str:
    """Characters the kernel refuses in map names become ``_`` (dots are allowed)."""
    return "".join(c if (c.isascii() and c.isalnum()) or c in "_." else "_" for c in name)


def internal_map_name(obj_name: str, real_name: str) -> str:
    """libbpf's name for a global-data map: a piece of the object name, then the section name.

    ``.data``-like sections reserve at least 7 characters for the section part and give what is
    left of the 15 to the object name (``my_objec.rodata``); custom ``.data.foo`` sections (two
    dots) are named after the section alone, cut to 15 characters.
    """
    limit = BPF_OBJ_NAME_LEN - 1
    obj_name = obj_name[:limit]
    sfx_len = min(max(7, len(real_name)), limit)
    pfx_len = 0 if "." in real_name[1:] else min(limit - sfx_len, len(obj_name))
    return sanitize_map_name((obj_name[:pfx_len] + real_name[:sfx_len])[:limit])


def user_map_name(obj_name: str, real_name: str) -> str:
    """``bpf_map__name`` of a global-data map: custom ``.data.*``/``.rodata.*`` maps show their
    full section name to user space (only the kernel sees the truncated one)."""
    if real_name.startswith((".data.", ".rodata.")):
        return real_name
    return internal_map_name(obj_name, real_name)


def open_object(elf: ElfFile, btf: Btf | None, obj_name: str) -> OpenedObject:
    """Build libbpf's post-open view of ``elf`` opened under ``obj_name``."""
    return _Opener(elf, btf, obj_name).run()


def skip_mods_and_typedefs(btf: Btf, type_id: int) -> int:
    """Follow typedefs and qualifiers down to the type that gives the layout."""
    for _ in range(64):
        t = btf[type_id] if type_id else None
        if not isinstance(t, BtfTypedef | BtfVolatile | BtfConst | BtfRestrict | BtfTypeTag):
            return type_id
        type_id = t.type
    return type_id


class _Opener:
    """One pass over the ELF and BTF in the order libbpf's open takes."""

    def __init__(self, elf: ElfFile, btf: Btf | None, obj_name: str) -> None:
        self.elf = elf
        self.btf = btf
        self.obj_name = obj_name
        self.file = elf.path or "<bytes>"
        self.layout = TypeLayout(btf) if btf is not None else None

    def error(self, message: str) -> CodegenError:
        return CodegenError(f"{self.file}: {message}")

    def run(self) -> OpenedObject:
        if self.elf.section(LEGACY_MAPS) is not None:
            raise self.error(
                "legacy map definitions in the 'maps' section are not supported (libbpf 1.0+)"
            )
        programs = self._programs()
        kconfig_offsets = self._kconfig_externs()
        datasecs = self._datasecs(kconfig_offsets)
        maps = self._maps(datasecs, bool(kconfig_offsets))
        return OpenedObject(self.obj_name, self.btf, tuple(maps), programs, datasecs)

    # ----------------------------------------------------------------------------- programs

    def _programs(self) -> tuple[str, ...]:
        found: list[tuple[int, int, str]] = []
        text_index = -1
        for sec in self.elf.sections[1:]:
            if not (sec.is_exec and sec.size > 0):
                continue
            if sec.name == TEXT:
                text_index = sec.index
            for sym in self.elf.symbols:
                if sym.index == 0 or sym.shndx != sec.index or sym.type != SymbolType.STT_FUNC:
                    continue
                if sec.name != TEXT and sym.binding == SymbolBinding.STB_LOCAL:
                    raise self.error(
                        f"section {sec.name}: program {sym.name!r} is static, which libbpf "
                        "does not support outside .text"
                    )
                found.append((sec.index, sym.value, sym.name))
        found.sort(key=lambda entry: (entry[0], entry[1]))
        return tuple(name for index, _, name in found if index != text_index)

    # ----------------------------------------------------------------------------- externs

    def _kconfig_externs(self) -> dict[str, int]:
        """Offsets libbpf gives kconfig externs inside the ``.kconfig`` map, by name."""
        kcfg: list[tuple[int, int, str]] = []
        for sym in self.elf.symbols:
            if not _is_extern(sym) or not sym.name:
                continue
            var_id = self._extern_btf_id(sym.name)
            sec_name = self._extern_section(sym.name, var_id)
            t = self._btf()[var_id]
            if sec_name == KCONFIG:
                if not isinstance(t, BtfVar):
                    raise self.error(f"extern function {sym.name} is not supported in .kconfig")
                kcfg.append(self._kconfig_slot(sym.name, t))
            elif sec_name != KSYMS:
                raise self.error(f"extern {sym.name!r} is in unrecognized section {sec_name!r}")
        # Alignment down, then size up, then name: the order libbpf packs the map in.
        kcfg.sort(key=lambda entry: (-entry[0], entry[1], entry[2]))
        offsets: dict[str, int] = {}
        off = 0
        for align, size, name in kcfg:
            off = (off + align - 1) // align * align
            offsets[name] = off
            off += size
        return offsets

    def _btf(self) -> Btf:
        if self.btf is None:
            raise self.error("object has externs but no BTF to describe them")
        return self.btf

    def _extern_btf_id(self, name: str) -> int:
        btf = self._btf()
        for type_id in btf.find(name):
            t = btf[type_id]
            if isinstance(t, BtfVar):
                if t.linkage != VarLinkage.GLOBAL_EXTERN:
                    break
                return type_id
            if isinstance(t, BtfFunc):
                if t.linkage != FuncLinkage.EXTERN:
                    break
                return type_id
        raise self.error(f"no extern BTF VAR or FUNC for extern symbol {name!r}")

    def _extern_section(self, name: str, var_id: int) -> str:
        btf = self._btf()
        for type_id in btf.type_ids():
            if btf.kind_of(type_id) != BtfKind.DATASEC:
                continue
            sec = btf[type_id]
            if isinstance(sec, BtfDatasec) and any(v.type == var_id for v in sec.vars):
                return sec.name
        raise self.error(
            f"extern {name!r} is neither a .kconfig nor a .ksyms extern: link in the object "
            "that defines it first"
        )

    def _kconfig_slot(self, name: str, var: BtfVar) -> tuple[int, int, str]:
        layout = self.layout if self.layout is not None else TypeLayout(self._btf())
        size = layout.resolve_size(var.type)
        align = layout.align_of(var.type)
        if size <= 0 or align <= 0:
            raise self.error(f"kconfig extern {name!r} has no size or alignment")
        if not self._kconfig_type_ok(var.type):
            raise self.error(f"kconfig extern {name!r} has a type libbpf does not support")
        return align, size, name

    def _kconfig_type_ok(self, type_id: int) -> bool:
        """libbpf's ``find_kcfg_type``: bool, tristate enum, char, integers, char arrays."""
        btf = self._btf()
        t = btf[skip_mods_and_typedefs(btf, type_id)]
        if isinstance(t, BtfInt):
            if t.bits_offset or t.nr_bits != t.size * 8:
                return False
            if t.encoding & IntEncoding.BOOL:
                return t.size == 1
            return t.size in (1, 2, 4, 8)
        if isinstance(t, BtfEnum):
            return t.size == 4 and t.name == "libbpf_tristate"
        if isinstance(t, BtfArray):
            elem = btf[skip_mods_and_typedefs(btf, t.type)]
            return t.nelems > 0 and isinstance(elem, BtfInt) and elem.size == 1
        return False

    # ----------------------------------------------------------------------------- DATASECs

    def _datasecs(self, kconfig_offsets: dict[str, int]) -> dict[int, DataSec]:
        btf = self.btf
        result: dict[int, DataSec] = {}
        if btf is None:
            return result
        for type_id in btf.type_ids():
            if btf.kind_of(type_id) != BtfKind.DATASEC:
                continue
            sec = btf[type_id]
            if isinstance(sec, BtfDatasec):
                fixed = self._fix_vars(btf, sec, kconfig_offsets)
                result[type_id] = DataSec(type_id, sec.name, fixed)
        return result

    def _fix_vars(
        self, btf: Btf, sec: BtfDatasec, kconfig_offsets: dict[str, int]
    ) -> tuple[SecVar, ...]:
        section = self.elf.section(sec.name)
        from_symbols = sec.size == 0 and sec.name not in (KCONFIG, KSYMS)
        if from_symbols and (section is None or section.size == 0):
            raise self.error(f"DATASEC {sec.name!r} has no ELF section to take its size from")
        out: list[SecVar] = []
        for info in sec.vars:
            var = btf[info.type]
            if not isinstance(var, BtfVar):
                if sec.name == KSYMS:
                    continue  # kfuncs: libbpf swaps in a dummy VAR; .ksyms is never a map
                raise self.error(f"DATASEC {sec.name!r} holds a non-VAR type #{info.type}")
            offset = info.offset
            is_static = var.linkage == VarLinkage.STATIC
            if sec.name == KCONFIG and kconfig_offsets:
                if var.name not in kconfig_offsets:
                    raise self.error(f"no extern symbol for .kconfig VAR {var.name!r}")
                offset, is_static = kconfig_offsets[var.name], False
            elif not is_static and var.linkage != VarLinkage.GLOBAL_EXTERN:
                sym = self._global_object(var.name)
                if from_symbols and sym is None:
                    raise self.error(f"no ELF symbol for VAR {var.name!r} of {sec.name!r}")
                if sym is not None and (from_symbols or self._in_section(sym, sec.name)):
                    offset = sym.value
            out.append(SecVar(var.name, var.type, offset, info.size, is_static))
        out.sort(key=lambda v: v.offset)
        return tuple(out)

    def _global_object(self, name: str) -> Symbol | None:
        for sym in self.elf.symbols:
            if (
                sym.index
                and sym.type == SymbolType.STT_OBJECT
                and sym.binding in (SymbolBinding.STB_GLOBAL, SymbolBinding.STB_WEAK)
                and sym.name == name
            ):
                return sym
        return None

    def _in_section(self, sym: Symbol, sec_name: str) -> bool:
        sections = self.elf.sections
        return 0 < sym.shndx < len(sections) and sections[sym.shndx].name == sec_name

    # ----------------------------------------------------------------------------- maps

    def _maps(self, datasecs: dict[int, DataSec], has_kconfig: bool) -> list[OpenedMap]:
        maps = [OpenedMap(name, name, False, 0) for name in self._section_vars(MAPS, datasecs)]
        for sec in self.elf.sections[1:]:
            if sec.size == 0 or not _is_global_data(sec.name, sec.type, sec.is_exec):
                continue
            maps.append(self._internal_map(sec.name))
        if has_kconfig:
            maps.append(self._internal_map(KCONFIG))
        section = self.elf.section(STRUCT_OPS)
        if section is not None and section.size > 0 and not section.is_exec:
            maps.extend(
                OpenedMap(name, name, False, 0)
                for name in self._section_vars(STRUCT_OPS, datasecs)
            )
        return maps

    def _section_vars(self, sec_name: str, datasecs: dict[int, DataSec]) -> list[str]:
        """Names of the VARs of the first DATASEC ``sec_name``, when that ELF section exists."""
        if self.elf.section(sec_name) is None:
            return []
        if self.btf is None:
            raise self.error(f"section {sec_name} defines maps, but the object has no BTF")
        for sec in datasecs.values():
            if sec.name == sec_name:
                return [v.name for v in sec.vars]
        raise self.error(f"section {sec_name} has no BTF DATASEC describing it")

    def _internal_map(self, real_name: str) -> OpenedMap:
        found = self.btf.find(real_name) if self.btf is not None else []
        value_type_id = min(found) if found else 0
        return OpenedMap(user_map_name(self.obj_name, real_name), real_name, True, value_type_id)


def _is_extern(sym: Symbol) -> bool:
    """libbpf's ``sym_is_extern``: undefined, global or weak, no type."""
    return (
        sym.index != 0
        and sym.shndx == SHN_UNDEF
        and sym.binding in (SymbolBinding.STB_GLOBAL, SymbolBinding.STB_WEAK)
        and sym.type == SymbolType.STT_NOTYPE
    )


def _is_global_data(name: str, sh_type: int, is_exec: bool) -> bool:
    """Sections libbpf of Linux 6.1 turns into global-data maps (``.bss.*`` is not one yet)."""
    if sh_type == SectionType.SHT_PROGBITS and not is_exec:
        return name in (".data", ".rodata") or name.startswith((".data.", ".rodata."))
    return sh_type == SectionType.SHT_NOBITS and name == ".bss"
