"""Maps: BTF-defined map definitions in ``.maps`` and the maps behind global data.

A BTF-defined map is a global variable in ``.maps`` whose *type* is the definition: each
field is a pointer whose target encodes a value (``__uint(max_entries, 16)`` is
``int (*max_entries)[16]``) or a type (``__type(key, u32)`` is ``u32 *key``).  The variable's
bytes are zero except for ``.values``, whose slots are filled by relocations that name the
maps or programs to put in a map-in-map or prog-array at load.

Global-data sections become single-entry arrays, named by libbpf's ``internal_map_name()``
rule; ``.rodata`` and ``.kconfig`` are read-only for programs, and a data map is mmapable
only if it holds at least one non-static variable (only those can reach a skeleton).

The rules, error cases and order are libbpf 1.1's (``parse_btf_map_def``,
``bpf_object__init_user_btf_map``, ``bpf_object__init_internal_map``).  A legacy
``SEC("maps")`` section is refused, as libbpf 1.x refuses it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from pybpf.abi.bpf import BPF_OBJ_NAME_LEN, LibbpfPinType, MapFlags, MapType
from pybpf.abi.sections import BTF, KCONFIG, MAPS
from pybpf.btf import Btf
from pybpf.btf.types import (
    BtfArray,
    BtfFuncProto,
    BtfPtr,
    BtfStruct,
    BtfVar,
    VarLinkage,
)
from pybpf.elf import Section
from pybpf.errors import BtfError, ObjectError
from pybpf.obj.context import ParseContext
from pybpf.obj.specs import MapKind, MapSpec, ProgramSpec, VarSpec
from pybpf.obj.variables import placed

_BPF_PTR_SIZE = 8
_U32 = 0xFFFFFFFF
_REL_MAPS = ".rel" + MAPS


def internal_map_name(object_name: str, section_name: str) -> str:
    """libbpf's name for a global-data map: ``my_objec.rodata``, ``.data.custom``.

    As much of the object name as fits in front of a suffix of at least 7 characters, no
    prefix at all for custom ``.data.*``/``.rodata.*`` sections (two dots), truncated to the
    kernel's 15 characters and restricted to characters the kernel accepts.
    """
    limit = BPF_OBJ_NAME_LEN - 1
    sfx_len = min(max(7, len(section_name)), limit)
    if "." in section_name[1:]:
        pfx_len = 0
    else:
        pfx_len = min(BPF_OBJ_NAME_LEN - sfx_len - 1, len(object_name))
    name = object_name[:pfx_len] + section_name[:sfx_len]
    return "".join(
        c if (c.isascii() and c.isalnum()) or c in "_." else "_" for c in name
    )


def user_map_name(object_name: str, section_name: str) -> str:
    """``bpf_map__name`` of a global-data map: custom ``.data.*``/``.rodata.*`` maps show their
    full section name to user space (libbpf's ``map_uses_real_name``); only the kernel sees
    the truncated :func:`internal_map_name`."""
    if section_name.startswith((".data.", ".rodata.")):
        return section_name
    return internal_map_name(object_name, section_name)


def _ringbuf_size(size: int) -> int:
    """libbpf rounds a ring buffer's size up to a power-of-2 multiple of the page size."""
    page = os.sysconf("SC_PAGE_SIZE")
    if size == 0:
        return 0
    if size % page == 0 and ((size // page) & (size // page - 1)) == 0:
        return size
    mul = 1
    while mul * page <= _U32:
        if mul * page > size:
            return mul * page
        mul <<= 1
    return size


# --------------------------------------------------------------------------------- BTF maps


@dataclass
class _Def:
    """A map definition being read, field by field (libbpf's ``struct btf_map_def``)."""

    map_type: int = 0
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    map_flags: int = 0
    numa_node: int = 0
    map_extra: int = 0
    pinning: int = 0
    key_type_id: int = 0
    value_type_id: int = 0
    inner: _Def | None = None
    values_offset: int = -1


class _MapDefParser:
    def __init__(self, ctx: ParseContext, btf: Btf) -> None:
        self.ctx = ctx
        self.btf = btf

    def fail(self, map_name: str, message: str) -> ObjectError:
        return self.ctx.error(f"map '{map_name}': {message}", section=MAPS)

    def field_int(self, map_name: str, field: str, type_id: int) -> int:
        """Decode ``int (*field)[N]`` -> N."""
        btf = self.btf
        ptr = btf[btf.resolve(type_id)] if type_id else None
        if not isinstance(ptr, BtfPtr):
            raise self.fail(map_name, f"attr '{field}': expected PTR")
        arr = btf[ptr.type] if ptr.type else None
        if not isinstance(arr, BtfArray):
            raise self.fail(map_name, f"attr '{field}': expected ARRAY")
        return arr.nelems

    def sized_type(self, map_name: str, field: str, type_id: int) -> tuple[int, int]:
        """Decode ``T *field`` -> (sizeof(T), T)."""
        ptr = self.btf[type_id] if type_id else None
        if not isinstance(ptr, BtfPtr):
            raise self.fail(map_name, f"{field} spec is not PTR")
        try:
            size = self.btf.size_of(ptr.type)
        except BtfError as exc:
            raise self.fail(map_name, f"can't determine {field} size: {exc.reason}") from None
        return size, ptr.type

    def parse(self, map_name: str, struct: BtfStruct, is_inner: bool) -> _Def:
        d = _Def()
        last = len(struct.members) - 1
        for i, m in enumerate(struct.members):
            name = m.name
            if name == "type":
                d.map_type = self.field_int(map_name, name, m.type)
            elif name == "max_entries":
                d.max_entries = self.field_int(map_name, name, m.type)
            elif name == "map_flags":
                d.map_flags = self.field_int(map_name, name, m.type)
            elif name == "numa_node":
                d.numa_node = self.field_int(map_name, name, m.type)
            elif name == "map_extra":
                d.map_extra = self.field_int(map_name, name, m.type)
            elif name in ("key_size", "value_size"):
                size = self.field_int(map_name, name, m.type)
                self._set_size(d, map_name, name.removesuffix("_size"), size)
            elif name in ("key", "value"):
                size, type_id = self.sized_type(map_name, name, m.type)
                self._set_size(d, map_name, name, size)
                if name == "key":
                    d.key_type_id = type_id
                else:
                    d.value_type_id = type_id
            elif name == "values":
                self._values(d, map_name, m.type, is_inner, i == last)
                d.values_offset = m.offset // 8
            elif name == "pinning":
                if is_inner:
                    raise self.fail(map_name, "inner def can't be pinned")
                val = self.field_int(map_name, name, m.type)
                if val not in (LibbpfPinType.LIBBPF_PIN_NONE, LibbpfPinType.LIBBPF_PIN_BY_NAME):
                    raise self.fail(map_name, f"invalid pinning value {val}")
                d.pinning = val
            else:
                raise self.fail(map_name, f"unknown field '{name}'")
        if d.map_type == 0:
            raise self.fail(map_name, "map type isn't specified")
        return d

    def _set_size(self, d: _Def, map_name: str, what: str, size: int) -> None:
        current = d.key_size if what == "key" else d.value_size
        if current and current != size:
            raise self.fail(map_name, f"conflicting {what} size {current} != {size}")
        if what == "key":
            d.key_size = size
        else:
            d.value_size = size

    def _values(self, d: _Def, map_name: str, type_id: int, is_inner: bool, last: bool) -> None:
        btf = self.btf
        is_map_in_map = d.map_type in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS)
        is_prog_array = d.map_type == MapType.PROG_ARRAY
        if is_inner:
            raise self.fail(map_name, "multi-level inner maps not supported")
        if not last:
            raise self.fail(map_name, "'values' member should be last")
        if not is_map_in_map and not is_prog_array:
            raise self.fail(map_name, "should be map-in-map or prog-array")
        self._set_size(d, map_name, "value", 4)
        arr = btf[type_id] if type_id else None
        if not isinstance(arr, BtfArray) or arr.nelems:
            raise self.fail(map_name, "values spec is not a zero-sized array")
        ptr = btf[btf.resolve(arr.type)] if arr.type else None
        if not isinstance(ptr, BtfPtr):
            raise self.fail(map_name, "values def is not a pointer")
        target = btf[btf.resolve(ptr.type)] if ptr.type else None
        if is_prog_array:
            if not isinstance(target, BtfFuncProto):
                raise self.fail(map_name, "prog-array value def is not a function prototype")
            return
        if not isinstance(target, BtfStruct):
            raise self.fail(map_name, "map-in-map inner def is not a struct")
        d.inner = self.parse(f"{map_name}.inner", target, True)


def _map_type(ctx: ParseContext, map_name: str, value: int) -> MapType:
    try:
        return MapType(value)
    except ValueError:
        raise ctx.error(f"map '{map_name}': unknown map type {value}",
                        section=MAPS) from None


def _spec_from_def(
    ctx: ParseContext, name: str, d: _Def, section: Section, offset: int, var_id: int
) -> MapSpec:
    map_type = _map_type(ctx, name, d.map_type)
    max_entries = d.max_entries
    if map_type in (MapType.RINGBUF, MapType.USER_RINGBUF):
        max_entries = _ringbuf_size(max_entries)
    inner = None
    if d.inner is not None:
        inner = _spec_from_def(ctx, f"{name}.inner", d.inner, section, offset, 0)
    return MapSpec(
        name=name,
        section_name=section.name,
        kind=MapKind.USER,
        type=map_type,
        key_size=d.key_size,
        value_size=d.value_size,
        max_entries=max_entries,
        flags=MapFlags(d.map_flags),
        key_type_id=d.key_type_id,
        value_type_id=d.value_type_id,
        btf_var_type_id=var_id,
        pinning=LibbpfPinType(d.pinning),
        numa_node=d.numa_node,
        map_extra=d.map_extra,
        inner=inner,
        section_index=section.index,
        def_offset=offset,
    )


@dataclass(frozen=True, slots=True)
class UserMap:
    """A parsed ``.maps`` entry plus what the ``.values`` relocations need."""

    spec: MapSpec
    size: int
    values_offset: int


def user_maps(ctx: ParseContext) -> list[UserMap]:
    """The BTF-defined maps of ``.maps``, by offset (libbpf sorts the DATASEC by offset)."""
    if ctx.maps_index < 0:
        return []
    section = ctx.elf.sections[ctx.maps_index]
    btf = ctx.need_btf("BTF-defined maps", MAPS)
    found = ctx.datasec(MAPS)
    if found is None:
        raise ctx.error(f"DATASEC '{MAPS}' not found", section=BTF)
    _, datasec = found
    parser = _MapDefParser(ctx, btf)
    result: list[UserMap] = []
    entries = placed(ctx, datasec, section.index)
    for index, info in sorted(enumerate(entries), key=lambda iv: (iv[1].offset, iv[0])):
        var = btf[info.type]
        name = var.name if isinstance(var, BtfVar) else ""
        if not name:
            raise ctx.error(f"map #{index}: empty name", section=MAPS,
                            offset=info.offset)
        if info.offset + info.size > section.size:
            raise ctx.error(f"map '{name}': BTF data is corrupted (past the section end)",
                            section=MAPS, offset=info.offset)
        if not isinstance(var, BtfVar):
            raise ctx.error(f"map '{name}': unexpected var kind {var.kind.name}",
                            section=MAPS, offset=info.offset)
        if var.linkage is not VarLinkage.GLOBAL_ALLOCATED:
            raise ctx.error(f"map '{name}': unsupported map linkage {var.linkage.name.lower()}",
                            section=MAPS, offset=info.offset)
        struct = btf[btf.resolve(var.type)] if var.type else None
        if not isinstance(struct, BtfStruct):
            raise ctx.error(f"map '{name}': definition is not a struct",
                            section=MAPS, offset=info.offset)
        if struct.size > info.size:
            raise ctx.error(f"map '{name}': invalid def size", section=MAPS,
                            offset=info.offset)
        d = parser.parse(name, struct, False)
        spec = _spec_from_def(ctx, name, d, section, info.offset, info.type)
        result.append(UserMap(spec, info.size, d.values_offset))
    return result


def init_slots(
    ctx: ParseContext, maps: list[UserMap], programs: list[ProgramSpec]
) -> list[UserMap]:
    """Fill ``init_slots`` from the relocations of ``.maps`` (``.values = { ... }``)."""
    if ctx.maps_index < 0:
        return maps
    slots: dict[str, dict[int, str]] = {}
    by_name = {m.spec.name: m for m in maps}
    for n, rel in enumerate(ctx.elf.relocations_for(ctx.maps_index)):
        sym = ctx.elf.symbols[rel.symbol]
        name = ctx.symbol_name(sym)
        owner = next(
            (
                m
                for m in maps
                if m.spec.def_offset <= rel.offset
                and rel.offset + _BPF_PTR_SIZE <= m.spec.def_offset + m.size
            ),
            None,
        )
        if owner is None:
            raise ctx.error(f"relocation #{n}: no map at offset {rel.offset} for '{name}'",
                            section=_REL_MAPS, offset=rel.offset)
        spec = owner.spec
        if spec.type in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
            if sym.shndx != ctx.maps_index:
                raise ctx.error(f"relocation #{n}: '{name}' isn't a BTF-defined map",
                                section=_REL_MAPS, offset=rel.offset)
            if spec.type == MapType.HASH_OF_MAPS and spec.key_size != 4:
                raise ctx.error(f"hash-of-maps '{spec.name}' should have key size 4",
                                section=_REL_MAPS, offset=rel.offset)
            if name not in by_name:
                raise ctx.error(f"relocation #{n}: '{name}' isn't a valid map reference",
                                section=_REL_MAPS, offset=rel.offset)
        elif spec.type == MapType.PROG_ARRAY:
            prog = next((p for p in programs if p.name == name), None)
            if prog is None or prog.is_subprog:
                raise ctx.error(f"relocation #{n}: '{name}' isn't an entry-point program",
                                section=_REL_MAPS, offset=rel.offset)
            if prog.section_index != sym.shndx or prog.offset != sym.value:
                raise ctx.error(f"relocation #{n}: '{name}' isn't an entry-point program",
                                section=_REL_MAPS, offset=rel.offset)
        else:
            raise ctx.error(f"relocation #{n}: map '{spec.name}' cannot hold references",
                            section=_REL_MAPS, offset=rel.offset)
        moff = rel.offset - spec.def_offset - owner.values_offset
        if owner.values_offset < 0 or moff < 0 or moff % _BPF_PTR_SIZE:
            raise ctx.error(f"relocation #{n}: not in the 'values' of map '{spec.name}'",
                            section=_REL_MAPS, offset=rel.offset)
        slots.setdefault(spec.name, {})[moff // _BPF_PTR_SIZE] = name
    return [
        replace(m, spec=replace(m.spec, init_slots=tuple(sorted(slots[m.spec.name].items()))))
        if m.spec.name in slots
        else m
        for m in maps
    ]


# --------------------------------------------------------------------------------- global data


def data_map(
    ctx: ParseContext,
    section: Section,
    kind: MapKind,
    variables: list[VarSpec],
) -> MapSpec:
    """The array map libbpf makes of a global-data section."""
    found = ctx.datasec(section.name)
    value_type_id = ctx.first_type_named(section.name) if found else 0
    flags = MapFlags(0)
    if kind in (MapKind.RODATA, MapKind.KCONFIG):
        flags |= MapFlags.BPF_F_RDONLY_PROG
    if found is not None and any(not v.is_static for v in variables):
        flags |= MapFlags.BPF_F_MMAPABLE
    return MapSpec(
        name=user_map_name(ctx.name, section.name),
        kernel_name=internal_map_name(ctx.name, section.name),
        section_name=section.name,
        kind=kind,
        type=MapType.ARRAY,
        key_size=4,
        value_size=section.size,
        max_entries=1,
        flags=flags,
        value_type_id=value_type_id,
        btf_var_type_id=value_type_id,
        file_data=bytes(section.data),
        section_index=section.index,
    )


def kconfig_map(ctx: ParseContext, size: int, has_vars: bool, symtab_index: int) -> MapSpec:
    """The ``.kconfig`` map holding kconfig externs' values, filled in at load."""
    found = ctx.datasec(KCONFIG)
    value_type_id = ctx.first_type_named(KCONFIG) if found else 0
    flags = MapFlags.BPF_F_RDONLY_PROG
    if found is not None and has_vars:
        flags |= MapFlags.BPF_F_MMAPABLE
    name = internal_map_name(ctx.name, KCONFIG)
    return MapSpec(
        name=name,
        kernel_name=name,
        section_name=KCONFIG,
        kind=MapKind.KCONFIG,
        type=MapType.ARRAY,
        key_size=4,
        value_size=size,
        max_entries=1,
        flags=flags,
        value_type_id=value_type_id,
        btf_var_type_id=value_type_id,
        section_index=symtab_index,
    )

