"""``pybpf gen min_core_btf``: the smallest BTF that relocates some objects like the full one.

Shipping BPF programs to kernels without ``/sys/kernel/btf/vmlinux`` needs a BTF for each
such kernel; a whole vmlinux BTF is megabytes, while an object only ever asks about a few
dozen types and members.  Following bpftool's "BTFGen" (``gen.c``, ``btfgen_*``), every CO-RE
relocation of every object is resolved against the input BTF, and what the winning target
spec touches is kept:

* field relocations: the root type, and along the raw access path each member used and its
  type (pointers are kept but not followed; structs reached only as a member type keep their
  size and no members);
* type relocations (id, exists, size): the type, following pointers;
* type-match relocations: the type and, recursively, every member (not behind pointers);
* enum value relocations: the whole enum.

Unkept types that a kept one refers to become ``void``; kept structs keep only kept members,
at their original offsets, so every offset and size the objects can observe is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pybpf.abi.sections import BTF_EXT
from pybpf.btf.btf import Btf
from pybpf.btf.builder import BtfBuilder, map_type_ids
from pybpf.btf.ext import BtfExt, CoreReloKind
from pybpf.btf.files import btf_from_elf
from pybpf.btf.types import (
    VOID,
    BtfArray,
    BtfConst,
    BtfFuncProto,
    BtfPtr,
    BtfRestrict,
    BtfStruct,
    BtfType,
    BtfTypedef,
    BtfTypeTag,
    BtfUnion,
    BtfVolatile,
)
from pybpf.core.access_spec import Spec
from pybpf.core.btfutil import Composite
from pybpf.core.relocate import CoreRelocator
from pybpf.core.target import TargetBtf
from pybpf.elf.reader import ElfFile
from pybpf.errors import BtfError, CoreError

_FOLLOW = BtfTypedef | BtfConst | BtfVolatile | BtfRestrict | BtfTypeTag


class _Marks:
    """Which types of the source BTF, and which members of its composites, are kept."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self.types: set[int] = set()
        self.members: dict[int, set[int]] = {}

    def mark_member(self, type_id: int, index: int) -> None:
        self.members.setdefault(type_id, set()).add(index)

    def mark_type(self, type_id: int, follow_pointers: bool) -> None:
        while type_id != VOID:
            self.types.add(type_id)
            t = self.btf[type_id]
            if isinstance(t, BtfPtr):
                if not follow_pointers:
                    return
                type_id = t.type
            elif isinstance(t, _FOLLOW):
                type_id = t.type
            elif isinstance(t, BtfArray):
                self.mark_type(t.index_type, follow_pointers)
                type_id = t.type
            elif isinstance(t, BtfFuncProto):
                for param in t.params:
                    self.mark_type(param.type, follow_pointers)
                type_id = t.return_type
            else:
                return

    def mark_field_path(self, spec: Spec) -> None:
        btf = self.btf
        type_id = spec.root_type_id
        self.mark_type(type_id, False)
        for idx in spec.raw[1:]:
            type_id = btf.resolve(type_id)
            t = btf[type_id]
            if isinstance(t, Composite):
                self.mark_member(type_id, idx)
                type_id = t.members[idx].type
                self.mark_type(type_id, False)
            elif isinstance(t, BtfArray):
                type_id = t.type
            else:
                raise BtfError(f"access path through [{type_id}] {t.kind.name}")

    def mark_type_match(self, type_id: int, behind_ptr: bool) -> None:
        while type_id != VOID:
            self.types.add(type_id)
            t = self.btf[type_id]
            if isinstance(t, Composite):
                if behind_ptr:
                    return
                for i, member in enumerate(t.members):
                    self.mark_member(type_id, i)
                    self.mark_type_match(member.type, False)
                return
            if isinstance(t, BtfPtr):
                behind_ptr = True
                type_id = t.type
            elif isinstance(t, _FOLLOW):
                type_id = t.type
            elif isinstance(t, BtfArray):
                self.mark_type_match(t.index_type, False)
                type_id, behind_ptr = t.type, False
            elif isinstance(t, BtfFuncProto):
                for param in t.params:
                    self.mark_type_match(param.type, False)
                type_id, behind_ptr = t.return_type, False
            else:
                return

    def record(self, kind: CoreReloKind, targ: Spec | None) -> None:
        if targ is None or kind == CoreReloKind.TYPE_ID_LOCAL:
            return
        if kind.is_field_based:
            self.mark_field_path(targ)
        elif kind == CoreReloKind.TYPE_MATCHES:
            self.mark_type_match(targ.root_type_id, False)
        elif kind.is_enumval_based:
            self.mark_type(targ.root_type_id, False)
        else:
            self.mark_type(targ.root_type_id, True)

    def build(self) -> BtfBuilder:
        """The kept types, in source id order, with ids renumbered and unkept ones voided."""
        kept = sorted(self.types)
        new_ids = {old: new for new, old in enumerate(kept, 1)}

        def remap(type_id: int) -> int:
            return new_ids.get(type_id, VOID)

        builder = BtfBuilder()
        for old in kept:
            t: BtfType = self.btf[old]
            if isinstance(t, BtfStruct | BtfUnion):
                used = self.members.get(old, set())
                members = tuple(m for i, m in enumerate(t.members) if i in used)
                t = type(t)(t.name, t.size, members, t.kind_flag)
            builder.add(map_type_ids(t, remap))
        return builder


def _object_btf(path: str) -> tuple[Btf, BtfExt | None]:
    data = Path(path).read_bytes()
    elf = ElfFile(data, path=path, require_bpf=False)
    btf = btf_from_elf(elf)
    if btf is None:
        raise BtfError("object has no .BTF section", file=path)
    section = elf.section(BTF_EXT)
    if section is None:
        raise BtfError("object has no .BTF.ext section", file=path)
    return btf, BtfExt.from_bytes(section.data, btf, file=path)


def min_core_btf(target: TargetBtf, objects: Sequence[str]) -> BtfBuilder:
    """The minimal BTF (as a builder) satisfying every CO-RE relocation of ``objects``."""
    marks = _Marks(target.main)
    for path in objects:
        local_btf, ext = _object_btf(path)
        if ext is None:
            continue
        relocator = CoreRelocator(local_btf, target)
        for section, relos in ext.core_relos.items():
            for index, relo in enumerate(relos):
                try:
                    resolution = relocator.resolve(relo, prog_name=section, relo_index=index)
                except CoreError as exc:
                    raise CoreError(f"{path}: {exc}") from None
                marks.record(relo.kind, resolution.target)
    return marks.build()


def write_min_core_btf(input_btf_path: str, output_path: str, objects: list[str]) -> None:
    """``pybpf gen min_core_btf INPUT OUTPUT OBJECT...``: write the minimal BTF to OUTPUT."""
    target = TargetBtf.from_path(input_btf_path)
    data = min_core_btf(target, objects).encode()
    Path(output_path).write_bytes(data)
