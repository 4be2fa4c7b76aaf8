"""Merging the inputs' ``.BTF.ext``: func_info, line_info and CO-RE records per output section.

An input's records for section ``S`` move to the output's ``S`` with their instruction
offsets shifted by where that input's ``S`` was placed (offsets are bytes in object files),
and their type ids mapped to the final, deduplicated ids.  Strings (file names, source lines,
access strings) are carried as text by :class:`~pybpf.btf.ext.BtfExt` and re-interned into
the output's ``.BTF`` string table when encoding.  Records stay in input order inside a
section, which keeps them sorted, because inputs are placed in input order too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TypeVar

from pybpf.btf.ext import BtfExt, CoreRelo, FuncInfo, LineInfo
from pybpf.errors import LinkError
from pybpf.linker.btf_merge import MergedBtf
from pybpf.linker.inputs import InputObject
from pybpf.linker.section_layout import SectionLayout

_R = TypeVar("_R", FuncInfo, LineInfo, CoreRelo)


def merge_btf_ext(
    inputs: list[InputObject], layout: SectionLayout, btf: MergedBtf
) -> BtfExt | None:
    """The linked ``.BTF.ext``, or ``None`` when no input has one."""
    with_ext = [obj for obj in inputs if obj.ext is not None]
    if not with_ext:
        return None
    order = list(layout.sections)
    funcs: dict[str, list[FuncInfo]] = {}
    lines: dict[str, list[LineInfo]] = {}
    relos: dict[str, list[CoreRelo]] = {}
    for obj in with_ext:
        ext = obj.ext
        assert ext is not None
        tmap = btf.type_maps[obj.index]

        def func(r: FuncInfo, delta: int, tmap: list[int] = tmap) -> FuncInfo:
            return FuncInfo(r.insn_off + delta, tmap[r.type_id])

        def line(r: LineInfo, delta: int) -> LineInfo:
            return replace(r, insn_off=r.insn_off + delta)

        def core(r: CoreRelo, delta: int, tmap: list[int] = tmap) -> CoreRelo:
            return replace(r, insn_off=r.insn_off + delta, type_id=tmap[r.type_id])

        _append(obj, layout, ext.func_info, funcs, func)
        _append(obj, layout, ext.line_info, lines, line)
        _append(obj, layout, ext.core_relos, relos, core)
    return BtfExt(_ordered(funcs, order), _ordered(lines, order), _ordered(relos, order))


def _append(
    obj: InputObject,
    layout: SectionLayout,
    table: Mapping[str, tuple[_R, ...]],
    out: dict[str, list[_R]],
    shift: Callable[[_R, int], _R],
) -> None:
    for name, records in table.items():
        placement = layout.placement_by_name(obj, name)
        if placement is None or placement.skipped:
            raise LinkError(f"{obj.path}: .BTF.ext refers to section {name!r}, which it lacks")
        target = out.setdefault(placement.section.name, [])
        target.extend(shift(r, placement.offset) for r in records)


def _ordered(table: dict[str, list[_R]], order: list[str]) -> dict[str, tuple[_R, ...]]:
    return {name: tuple(table[name]) for name in order if table.get(name)}
