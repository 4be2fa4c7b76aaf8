"""Merging the inputs' ``.BTF``: append every type, unify globals, rebuild DATASECs, dedup.

The steps mirror libbpf's linker so that our type counts are never worse than bpftool's:

1. every input type except DATASECs is appended in input order, but each global VAR or FUNC
   gets *one* type, shared by every file that mentions the symbol: the winning definition's
   (so an ``extern`` resolves to its definition's BTF).  Extern function prototypes get the
   definition's parameter names, or deduplication would keep both prototypes;
2. DATASECs are rebuilt from the *output* symbol table, not copied: a global's VAR sits at
   its final symbol's offset (the strong copy's, when a strong definition overrides a weak
   one - bpftool 7.1 keeps the weak copy's offset here), statics keep their own offset plus
   their section's placement, and entries are sorted by offset as the kernel requires;
3. the result is deduplicated with libbpf's algorithm (:mod:`pybpf.btf.dedup`).

Steps 1 and 3 never build the appended BTF as renumbered type objects: each input type is
handed to the deduplicator as its shape plus its referenced ids mapped through its input's
id map, and only the types that survive deduplication (a few hundred out of tens of
thousands, when many files share a header) are rebuilt, with their final ids.  The result is
the same as deduplicating the appended BTF, id for id.

The outcome is the final BTF plus, per input, a map from its type ids to final ids, which
the ``.BTF.ext`` merge needs for func_info and CO-RE records.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from pybpf.btf.builder import BtfBuilder, IdMap, map_type_ids
from pybpf.btf.dedup import dedup_graph, dfs_refs, shape_of
from pybpf.btf.types import (
    BtfDatasec,
    BtfDeclTag,
    BtfFunc,
    BtfFuncProto,
    BtfParam,
    BtfType,
    BtfVar,
    BtfVarSecInfo,
    FuncLinkage,
    VarLinkage,
)
from pybpf.linker.inputs import EXTERN_DATASEC, InputObject
from pybpf.linker.section_layout import SectionLayout
from pybpf.linker.symbols import GlobalSymbol, SymbolTable


@dataclass(slots=True)
class MergedBtf:
    """The linked BTF and, per input index, the final id of each of its type ids."""

    builder: BtfBuilder
    type_maps: dict[int, list[int]]

    def type_id(self, obj: InputObject, type_id: int) -> int:
        return self.type_maps[obj.index][type_id]


def _non_static(t: BtfType) -> bool:
    if isinstance(t, BtfVar):
        return t.linkage != VarLinkage.STATIC
    if isinstance(t, BtfFunc):
        return t.linkage != FuncLinkage.STATIC
    return False


def _compose(first: list[int], then: list[int]) -> IdMap:
    return lambda type_id: then[first[type_id]]


class _Merger:
    def __init__(
        self, inputs: list[InputObject], layout: SectionLayout, table: SymbolTable
    ) -> None:
        self.inputs = [obj for obj in inputs if obj.btf is not None]
        self.layout = layout
        self.table = table
        self.type_maps: dict[int, list[int]] = {}
        self.glob_ids: dict[str, int] = {}
        self.slots: list[tuple[InputObject, int]] = []
        self.overrides: dict[tuple[int, int], BtfType] = {}
        self.datasecs: list[BtfDatasec] = []
        """Rebuilt DATASECs (in appended ids), which take the ids after the slots'."""

    # ------------------------------------------------------------------ step 1: type ids

    def _glob_source(
        self, g: GlobalSymbol, fallback: tuple[InputObject, int]
    ) -> tuple[InputObject, int]:
        refs = [g.winner] if g.winner is not None else []
        refs += g.refs
        for ref in refs:
            info = ref.obj.globals_btf.get(g.name)
            if info is not None and ref.obj.btf is not None:
                return ref.obj, info.type_id
        return fallback

    def assign_ids(self) -> None:
        next_id = 1
        for obj in self.inputs:
            types = obj.types
            tmap = [0] * (len(types) + 1)
            # Non-static VARs no symbol stands for (a second file's deduplicated license)
            # are dropped, with the decl tags on them.
            dropped = {
                i for i, t in enumerate(types, 1) if t.__class__ is BtfVar and self._orphan(t)
            }
            for type_id, t in enumerate(types, 1):
                cls = t.__class__
                if cls is BtfDatasec or type_id in dropped:
                    continue
                if cls is BtfDeclTag and t.type in dropped:  # type: ignore[union-attr]
                    continue
                if (cls is BtfVar or cls is BtfFunc) and _non_static(t):
                    g = self.table.globals.get(t.name)
                    if g is not None:
                        if t.name not in self.glob_ids:
                            self.glob_ids[t.name] = next_id
                            self.slots.append(self._glob_source(g, (obj, type_id)))
                            next_id += 1
                        tmap[type_id] = self.glob_ids[t.name]
                        continue
                tmap[type_id] = next_id
                self.slots.append((obj, type_id))
                next_id += 1
            self.type_maps[obj.index] = tmap

    def _orphan(self, t: BtfType) -> bool:
        return _non_static(t) and t.name not in self.table.globals

    def patch_extern_protos(self) -> None:
        """Give extern FUNC prototypes their definition's parameter names."""
        for g in self.table.globals.values():
            winner = g.winner
            if winner is None or winner.is_extern or winner.obj.btf is None:
                continue
            info = winner.obj.globals_btf.get(g.name)
            if info is None:
                continue
            func = winner.obj.btf[info.type_id]
            if not isinstance(func, BtfFunc):
                continue
            proto = winner.obj.btf[func.type]
            if not isinstance(proto, BtfFuncProto):
                continue  # refused by the input checks; nothing to take names from
            for ref in g.refs:
                ref_info = ref.obj.globals_btf.get(g.name)
                if ref is winner or ref_info is None or ref.obj.btf is None:
                    continue
                ref_func = ref.obj.btf[ref_info.type_id]
                if not isinstance(ref_func, BtfFunc):
                    continue
                ref_proto = ref.obj.btf[ref_func.type]
                if not isinstance(ref_proto, BtfFuncProto):
                    continue
                if len(ref_proto.params) != len(proto.params):
                    continue
                params = tuple(
                    BtfParam(p.name or wp.name, p.type)
                    for p, wp in zip(ref_proto.params, proto.params, strict=True)
                )
                self.overrides[(ref.obj.index, ref_func.type)] = BtfFuncProto(
                    ref_proto.return_type, params, ref_proto.name
                )

    def _slot_type(self, obj: InputObject, type_id: int) -> BtfType:
        return self.overrides.get((obj.index, type_id)) or obj.types[type_id - 1]

    def dedup(self) -> tuple[BtfBuilder, list[int]]:
        """Deduplicate the appended types (slots, then DATASECs); the result and id remap.

        What :func:`pybpf.btf.dedup.dedup` would do with the appended BTF, built here from
        the input types and their id maps directly.
        """
        kinds: list[int] = [0]
        shapes: list[tuple[Hashable, ...]] = [(0, "")]
        refs: list[tuple[int, ...]] = [()]
        type_maps = self.type_maps
        overrides = self.overrides
        for obj, type_id in self.slots:
            t = obj.types[type_id - 1]
            if overrides:
                t = overrides.get((obj.index, type_id), t)
            tmap = type_maps[obj.index]
            kinds.append(t.kind)
            shapes.append(shape_of(t))
            refs.append(tuple([tmap[r] for r in dfs_refs(t)]))
        for ds in self.datasecs:
            kinds.append(ds.kind)
            shapes.append(shape_of(ds))
            refs.append(dfs_refs(ds))
        remap, canonical = dedup_graph(kinds, shapes, refs)
        out = BtfBuilder()
        n_slots = len(self.slots)
        for new_id in canonical:
            if new_id > n_slots:
                out.add(map_type_ids(self.datasecs[new_id - n_slots - 1], remap.__getitem__))
                continue
            obj, type_id = self.slots[new_id - 1]
            tmap = type_maps[obj.index]
            t = self._slot_type(obj, type_id)
            out.add(map_type_ids(t, _compose(tmap, remap)))
        return out, remap

    # ------------------------------------------------------------------ step 2: DATASECs

    def add_datasecs(self) -> None:
        entries: dict[str, list[BtfVarSecInfo]] = {}
        ephemeral: list[str] = []
        emitted: set[str] = set()
        for obj in self.inputs:
            btf = obj.btf
            assert btf is not None
            tmap = self.type_maps[obj.index]
            for _, ds in obj.datasecs():
                if ds.name == EXTERN_DATASEC:
                    continue
                base = 0
                if obj.elf.section(ds.name) is not None:
                    placement = self.layout.placement_by_name(obj, ds.name)
                    if placement is None or placement.skipped:
                        continue
                    base = placement.offset
                elif ds.name not in self.layout.sections and ds.name not in ephemeral:
                    ephemeral.append(ds.name)
                sec_entries = entries.setdefault(ds.name, [])
                for info in ds.vars:
                    t = btf[info.type]
                    if not _non_static(t):
                        sec_entries.append(
                            BtfVarSecInfo(tmap[info.type], base + info.offset, info.size)
                        )
                        continue
                    name = t.name
                    g = self.table.globals.get(name)
                    if g is None or name in emitted or g.section != ds.name:
                        continue
                    emitted.add(name)
                    sec_entries.append(self._global_entry(g, info))
        for name, sec in self.layout.sections.items():
            if name in entries:
                vars_ = sorted(entries[name], key=lambda v: v.offset)
                self.datasecs.append(BtfDatasec(name, sec.size, tuple(vars_)))
        for name in ephemeral:
            self.datasecs.append(BtfDatasec(name, 0, tuple(entries[name])))

    def _global_entry(self, g: GlobalSymbol, info: BtfVarSecInfo) -> BtfVarSecInfo:
        type_id = self.glob_ids[g.name]
        out = g.out
        if g.is_extern or out is None:
            return BtfVarSecInfo(type_id, info.offset, info.size)
        size = out.size or info.size
        winner = g.winner
        if winner is not None and winner.obj.btf is not None:
            own = winner.obj.globals_btf.get(g.name)
            for _, ds in winner.obj.datasecs():
                if own is not None and ds.name == g.section:
                    size = next((v.size for v in ds.vars if v.type == own.type_id), size)
        return BtfVarSecInfo(type_id, out.value, size)


def merge_btf(
    inputs: list[InputObject], layout: SectionLayout, table: SymbolTable
) -> MergedBtf | None:
    """The linked, deduplicated BTF, or ``None`` when no input has BTF."""
    merger = _Merger(inputs, layout, table)
    if not merger.inputs:
        return None
    merger.assign_ids()
    merger.patch_extern_protos()
    merger.add_datasecs()
    final, remap = merger.dedup()
    type_maps = {index: [remap[i] for i in tmap] for index, tmap in merger.type_maps.items()}
    return MergedBtf(final, type_maps)
