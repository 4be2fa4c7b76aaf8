"""Building an :class:`ObjectSpec` from an ELF file, in libbpf's ``bpf_object__open`` order.

1. classify sections (code, global data, ``.maps``, BTF; refuse legacy ``maps``);
2. collect externs and lay out ``.kconfig``;
3. read map definitions, then global-data sections (with their variables), then ``.kconfig``;
4. split code sections into functions and type them by section name;
5. fill ``.values`` slots of map-in-map/prog-array maps and classify instruction relocations.

Each step raises a :class:`pybpf.BpfError` subclass naming the file, section and offset of
the bytes at fault; nothing else escapes, however corrupt the input.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from pybpf.abi.sections import BTF, BTF_EXT, KCONFIG, LEGACY_MAPS, MAPS, TEXT
from pybpf.btf import Btf
from pybpf.btf.ext import BtfExt
from pybpf.btf.types import BtfVarSecInfo, VarLinkage
from pybpf.elf import ElfFile, Section, SectionType
from pybpf.obj.context import ParseContext, data_section_kind
from pybpf.obj.externs import collect_externs, kconfig_size
from pybpf.obj.maps import data_map, init_slots, kconfig_map, user_maps
from pybpf.obj.programs import attach_relocations, collect_programs
from pybpf.obj.specs import (
    ExternKind,
    ExternSpec,
    MapSpec,
    ProgramSpec,
    VarSpec,
    default_object_name,
)
from pybpf.obj.variables import datasec_placements, section_variables

SHT_LLVM_ADDRSIG = 0x6FFF4C03
LICENSE_MAX = 63
"""libbpf keeps at most 63 bytes of the license string."""
MAX_DATA_SECTION = 1 << 28
"""Largest global-data section accepted (256 MiB).

Each global-data section becomes the one value of an array map, and whoever opens the object
holds that value in memory (a ``.bss`` too: its size costs nothing in the file, but its image
does).  libbpf has no cap and the kernel refuses only values over ``INT_MAX`` bytes (6.18
creates a 2 GiB - 8 array value, E2BIG at 2 GiB), so the limit is pybpf's own: far above
any real program's globals, far below what a few corrupt header bytes could ask for."""
MAX_DATA_TOTAL = 1 << 29
"""Largest sum of all global-data sections of one object (512 MiB).

The per-section cap alone lets a 6 KiB file with a dozen ``.bss.*`` section headers ask for
gigabytes; this bounds what opening one object can cost, whatever its section count."""


def _ignored(section: Section) -> bool:
    """Sections libbpf's ``ignore_elf_section()`` skips before looking at names."""
    name = section.name
    if section.type in (SectionType.SHT_STRTAB, SHT_LLVM_ADDRSIG):
        return True
    if section.type == SectionType.SHT_PROGBITS and section.size == 0 and name == TEXT:
        return True
    if name.startswith(".debug_"):
        return True
    if name.startswith(".rel"):
        target = name[4:]
        if target.startswith(".debug_") or target in (BTF, BTF_EXT):
            return True
    return False


def _classify_sections(ctx: ParseContext) -> tuple[Section | None, Section | None]:
    """Record code, data and ``.maps`` sections; return the ``.BTF`` and ``.BTF.ext`` ones."""
    btf_section = ext_section = None
    for section in ctx.elf.sections[1:]:
        if _ignored(section):
            continue
        name = section.name
        if name == LEGACY_MAPS:
            raise ctx.error(
                "legacy map definitions in 'maps' section are not supported (libbpf 1.0 "
                "dropped them too): declare maps in SEC(\".maps\") with __uint/__type",
                section=name,
                offset=section.offset,
            )
        if name == MAPS:
            # Map definitions are read from the section's bytes; an inactive (SHT_NULL) or
            # NOBITS header has none, whatever its size says.
            if section.type != SectionType.SHT_PROGBITS:
                raise ctx.error(f"{name} is not SHT_PROGBITS", section=name,
                                offset=ctx.elf.header_offset(section.index, 4))
            ctx.maps_index = section.index
        elif name in (BTF, BTF_EXT):
            if section.type != SectionType.SHT_PROGBITS:
                raise ctx.error(f"{name} is not SHT_PROGBITS", section=name,
                                offset=ctx.elf.header_offset(section.index, 4))
            if name == BTF:
                btf_section = section
            else:
                ext_section = section
        elif section.is_exec and section.size > 0:
            if name == TEXT:
                ctx.text_index = section.index
            ctx.code_sections.append(section)
        elif section.size > 0:
            kind = data_section_kind(section)
            if kind is not None:
                ctx.data_bytes += section.size
                # Point at the header's sh_size: a .bss has no contents to point at.
                _check_data_size(ctx, name, section.size, ctx.data_bytes,
                                 ctx.elf.header_offset(section.index, 32))
                ctx.data_sections[section.index] = kind
    return btf_section, ext_section


def _check_data_size(
    ctx: ParseContext, name: str, size: int, total: int, offset: int | None
) -> None:
    """Refuse a global-data map of ``size`` bytes past :data:`MAX_DATA_SECTION`, or one that
    takes the object's global data (``total``, with it) past :data:`MAX_DATA_TOTAL`, before
    anything is allocated for it."""
    if size > MAX_DATA_SECTION:
        message = (f"global data of {size} bytes is larger than the "
                   f"{MAX_DATA_SECTION >> 20} MiB pybpf accepts for one section")
    elif total > MAX_DATA_TOTAL:
        message = (f"global data adds up to {total} bytes with this section, more than the "
                   f"{MAX_DATA_TOTAL >> 20} MiB pybpf accepts for one object")
    else:
        return
    raise ctx.error(message, section=name, offset=offset)


def _kconfig_variables(externs: list[ExternSpec]) -> list[VarSpec]:
    return [
        VarSpec(e.name, KCONFIG, e.offset, e.size, e.target_type_id,
                VarLinkage.GLOBAL_EXTERN, e.is_weak, e.type_id)
        for e in sorted(externs, key=lambda e: e.offset)
        if e.kind is ExternKind.KCONFIG
    ]


def _kern_version(ctx: ParseContext) -> int | None:
    section = ctx.elf.section("version")
    if section is None:
        return None
    if len(section.data) != 4:
        raise ctx.error(f"invalid kernel version section size {len(section.data)}, expected 4",
                        section="version", offset=section.offset)
    value: int = struct.unpack(ctx.elf.endian + "I", section.data)[0]
    return value


class ObjectParts(NamedTuple):
    """The fields of an :class:`~pybpf.obj.object_spec.ObjectSpec`, as the parser finds them.

    The parser returns these rather than the spec itself so that it need not import
    ``object_spec``, which imports the parser: ``ObjectSpec.from_elf`` makes ``cls(**parts)``.
    """

    name: str
    path: str | None
    elf: ElfFile
    btf: Btf | None
    btf_ext: BtfExt | None
    license: str
    kern_version: int | None
    maps: tuple[MapSpec, ...]
    programs: tuple[ProgramSpec, ...]
    subprograms: tuple[ProgramSpec, ...]
    variables: tuple[VarSpec, ...]
    externs: tuple[ExternSpec, ...]
    datasec_entries: dict[int, tuple[BtfVarSecInfo, ...]]


def parse_object(elf: ElfFile, name: str | None = None) -> ObjectParts:
    """Describe ``elf`` as libbpf's ``bpf_object__open`` would (see the module docstring)."""
    obj_name = name[:15] if name else default_object_name(elf.path)
    ctx = ParseContext(elf, obj_name, None, None)
    if not elf.symbols:
        raise ctx.error("no symbol table (stripped object?)", section=".symtab")
    btf_section, ext_section = _classify_sections(ctx)
    if btf_section is not None:
        ctx.btf = Btf.from_bytes(btf_section.data, file=ctx.file, section=BTF)
        if ext_section is not None:
            ctx.btf_ext = BtfExt.from_bytes(ext_section.data, ctx.btf, file=ctx.file)

    externs = collect_externs(ctx)
    users = user_maps(ctx)
    variables: list[VarSpec] = []
    data_maps: list[MapSpec] = []
    for index, kind in sorted(ctx.data_sections.items()):
        section = elf.sections[index]
        found = ctx.datasec(section.name)
        section_vars = (
            section_variables(ctx, section.name, index, section.size, found[1]) if found else []
        )
        variables.extend(section_vars)
        data_maps.append(data_map(ctx, section, kind, section_vars))
    kconfig_vars = _kconfig_variables(externs)
    if kconfig_vars:
        size = kconfig_size(externs)
        _check_data_size(ctx, KCONFIG, size, ctx.data_bytes + size, None)
        symtab = next(s.index for s in elf.sections if s.type == SectionType.SHT_SYMTAB)
        data_maps.append(kconfig_map(ctx, size, True, symtab))
        variables.extend(kconfig_vars)

    functions = collect_programs(ctx)
    users = init_slots(ctx, users, functions)
    maps = tuple(u.spec for u in users) + tuple(data_maps)
    functions = attach_relocations(ctx, functions, maps, externs)
    # Where each DATASEC entry lives, as decided above: variables (kconfig ones included) and
    # .maps definitions at the offsets their specs carry.
    placed_offsets = {v.btf_var_id: v.offset for v in variables if v.btf_var_id}
    placed_offsets.update(
        (m.btf_var_type_id, m.def_offset) for m in maps if not m.is_internal and m.btf_var_type_id
    )
    return ObjectParts(
        name=obj_name,
        path=elf.path,
        elf=elf,
        btf=ctx.btf,
        btf_ext=ctx.btf_ext,
        license=(elf.license or "")[:LICENSE_MAX],
        kern_version=_kern_version(ctx),
        maps=maps,
        programs=tuple(p for p in functions if not p.is_subprog),
        subprograms=tuple(p for p in functions if p.is_subprog),
        variables=tuple(variables),
        externs=tuple(externs),
        datasec_entries=datasec_placements(ctx, placed_offsets),
    )
