"""Symbol resolution: one output symbol per global name, one per local, for every input symbol.

Globals are resolved over *all* inputs before anything is emitted, so the result does not
depend on the order of the inputs: the one strong definition wins over ``__weak`` ones and
over ``extern`` declarations wherever they appear; without a strong one the first weak
definition wins; without any definition the symbol stays extern (legitimate for ``.kconfig``
and ``.ksyms`` externs, which the loader resolves).  The output symbol takes the winner's
section and offset, is strong if any file declared it strong, and takes the strictest
visibility any file gave it (``hidden`` is contagious, as in libbpf).

Every participant is checked against the winner: same BTF type (``btf_match``), same map
definition for maps, same section.  Locals are never merged: two files' ``static int
counter`` stay two symbols with the same name, which is what libbpf does too (statics are
reached through their own relocations, never by name).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pybpf.abi.sections import LOADER_EXTERN_SECTIONS, MAPS
from pybpf.elf.constants import SHN_LORESERVE, SHN_UNDEF, SymbolBinding, SymbolType
from pybpf.elf.reader import Symbol
from pybpf.errors import LinkError
from pybpf.linker.btf_match import btf_types_match
from pybpf.linker.inputs import EXTERN_DATASEC, InputObject
from pybpf.linker.mapdef import map_defs_differ, parse_map_def
from pybpf.linker.section_layout import OutSection, SectionLayout


@dataclass(eq=False, slots=True)
class OutSymbol:
    """A symbol of the output.  ``section`` is ``None`` for externs; ``shndx`` keeps special
    indices (``SHN_ABS``) of symbols that are not in any section."""

    name: str
    value: int
    size: int
    binding: int
    type: int
    visibility: int
    section: OutSection | None
    shndx: int = SHN_UNDEF

    @property
    def is_local(self) -> bool:
        return self.binding == SymbolBinding.STB_LOCAL


@dataclass(frozen=True, slots=True)
class SymRef:
    """One input's symbol."""

    obj: InputObject
    sym: Symbol

    @property
    def is_extern(self) -> bool:
        return self.sym.shndx == SHN_UNDEF

    @property
    def where(self) -> str:
        return self.obj.path


@dataclass(eq=False, slots=True)
class GlobalSymbol:
    """A resolved global: every input symbol of that name, and the one that defines it."""

    name: str
    refs: list[SymRef] = field(default_factory=list)
    winner: SymRef | None = None
    section: str | None = None
    """Output section name (definitions) or extern DATASEC name (loader externs)."""
    out: OutSymbol | None = None

    @property
    def is_extern(self) -> bool:
        return self.winner is None or self.winner.is_extern


@dataclass(slots=True)
class SymbolTable:
    """The resolution result: globals by name, and each input symbol's output symbol."""

    globals: dict[str, GlobalSymbol]
    locals: list[OutSymbol]
    by_input: dict[tuple[int, int], OutSymbol]

    def output_symbols(self) -> list[OutSymbol]:
        """All output symbols, locals first (ELF's rule), each in first-seen order."""
        globals_ = [g.out for g in self.globals.values() if g.out is not None]
        return [*self.locals, *globals_]


def resolve_symbols(
    inputs: list[InputObject], layout: SectionLayout, *, allow_unresolved: bool = False
) -> SymbolTable:
    """Resolve every global; unresolved externs (other than loader externs) are an error
    listing all of them, unless ``allow_unresolved`` (a library its user completes later)."""
    globals_: dict[str, GlobalSymbol] = {}
    for obj in inputs:
        for sym in obj.elf.symbols[1:]:
            if sym.binding == SymbolBinding.STB_LOCAL or sym.type == SymbolType.STT_SECTION:
                continue
            if _in_skipped_section(obj, sym, layout):
                continue
            globals_.setdefault(sym.name, GlobalSymbol(sym.name)).refs.append(SymRef(obj, sym))
    for g in globals_.values():
        _pick_winner(g)
        _check_participants(g, layout)
    unresolved = [
        g for g in globals_.values() if g.is_extern and g.section not in LOADER_EXTERN_SECTIONS
    ]
    if unresolved and not allow_unresolved:
        lines = [f"  {g.name} (referenced from {', '.join(_files(g))})" for g in unresolved]
        raise LinkError("unresolved extern symbols:\n" + "\n".join(lines))
    return _build_table(inputs, layout, globals_)


def _files(g: GlobalSymbol) -> list[str]:
    return list(dict.fromkeys(r.where for r in g.refs))


def _in_skipped_section(obj: InputObject, sym: Symbol, layout: SectionLayout) -> bool:
    if sym.shndx == SHN_UNDEF or sym.shndx >= SHN_LORESERVE:
        return False
    placement = layout.placement(obj, sym.shndx)
    return placement is None or placement.skipped


def _pick_winner(g: GlobalSymbol) -> None:
    strong = [r for r in g.refs if not r.is_extern and not r.sym.is_weak]
    if len(strong) > 1:
        a, b = strong[0], strong[1]
        raise LinkError(
            f"symbol {g.name!r} is defined in both {a.where} and {b.where} "
            "(two strong definitions; mark one __weak)"
        )
    weak = [r for r in g.refs if not r.is_extern]
    g.winner = strong[0] if strong else weak[0] if weak else g.refs[0]


def _ref_section(ref: SymRef, layout: SectionLayout) -> str | None:
    """The section a reference places the symbol in: its ELF section for definitions, its
    BTF DATASEC for externs (none for plain ``extern`` variables and functions)."""
    if not ref.is_extern:
        if ref.sym.shndx >= SHN_LORESERVE:
            return None
        placement = layout.placement(ref.obj, ref.sym.shndx)
        return None if placement is None else placement.section.name
    info = ref.obj.globals_btf.get(ref.sym.name)
    if info is None or info.datasec == EXTERN_DATASEC:
        return None
    return info.datasec


def _check_participants(g: GlobalSymbol, layout: SectionLayout) -> None:
    winner = g.winner
    assert winner is not None
    sections = [(r, s) for r in g.refs if (s := _ref_section(r, layout)) is not None]
    g.section = _ref_section(winner, layout) or (sections[0][1] if sections else None)
    for ref, sec in sections:
        if sec != g.section:
            raise LinkError(
                f"symbol {g.name!r} is in section {sec!r} in {ref.where} but in "
                f"{g.section!r} in {winner.where}"
            )
    for ref in g.refs:
        if ref is winner:
            continue
        reason = _type_mismatch(g, ref, winner)
        if reason:
            what = "map" if g.section == MAPS else "type"
            raise LinkError(
                f"symbol {g.name!r}: {what} in {ref.where} differs from {winner.where}: {reason}"
            )


def _type_mismatch(g: GlobalSymbol, a: SymRef, b: SymRef) -> str | None:
    info_a = a.obj.globals_btf.get(g.name)
    info_b = b.obj.globals_btf.get(g.name)
    if info_a is None or info_b is None:
        missing = a if info_a is None else b
        if missing.is_extern or (a.obj.btf is not None and b.obj.btf is not None):
            return f"no BTF for it in {missing.where}"
        return None  # an object without BTF: nothing to compare
    btf_a, btf_b = a.obj.btf, b.obj.btf
    assert btf_a is not None and btf_b is not None
    if g.section == MAPS:
        try:
            def_a = parse_map_def(btf_a, info_a.type_id)
            def_b = parse_map_def(btf_b, info_b.type_id)
        except (ValueError, LinkError) as exc:
            return f"invalid map definition: {exc}"
        return map_defs_differ(def_a, def_b)
    return btf_types_match(btf_a, info_a.type_id, btf_b, info_b.type_id, exact=True)


def _build_table(
    inputs: list[InputObject], layout: SectionLayout, globals_: dict[str, GlobalSymbol]
) -> SymbolTable:
    for g in globals_.values():
        g.out = _global_out(g, layout)
    locals_: list[OutSymbol] = []
    section_syms: dict[str, OutSymbol] = {}
    by_input: dict[tuple[int, int], OutSymbol] = {}
    for obj in inputs:
        for sym in obj.elf.symbols[1:]:
            out = _map_symbol(obj, sym, layout, globals_, locals_, section_syms)
            if out is not None:
                by_input[(obj.index, sym.index)] = out
    return SymbolTable(globals_, locals_, by_input)


def _global_out(g: GlobalSymbol, layout: SectionLayout) -> OutSymbol:
    winner = g.winner
    assert winner is not None
    sym = winner.sym
    binding = (
        SymbolBinding.STB_GLOBAL
        if any(r.sym.binding == SymbolBinding.STB_GLOBAL for r in g.refs)
        else SymbolBinding.STB_WEAK
    )
    visibility = max(r.sym.visibility for r in g.refs)
    if winner.is_extern:
        return OutSymbol(g.name, 0, 0, binding, SymbolType.STT_NOTYPE, visibility, None)
    if sym.shndx >= SHN_LORESERVE:
        return OutSymbol(
            g.name, sym.value, sym.size, binding, sym.type, visibility, None, sym.shndx
        )
    placement = layout.placement(winner.obj, sym.shndx)
    assert placement is not None
    return OutSymbol(
        g.name,
        placement.offset + sym.value,
        sym.size,
        binding,
        sym.type,
        visibility,
        placement.section,
    )


def _map_symbol(
    obj: InputObject,
    sym: Symbol,
    layout: SectionLayout,
    globals_: dict[str, GlobalSymbol],
    locals_: list[OutSymbol],
    section_syms: dict[str, OutSymbol],
) -> OutSymbol | None:
    if sym.binding != SymbolBinding.STB_LOCAL:
        g = globals_.get(sym.name)
        return None if g is None else g.out
    if sym.shndx >= SHN_LORESERVE:  # STT_FILE and other section-less locals
        out = OutSymbol(
            sym.name, sym.value, sym.size, sym.binding, sym.type, sym.visibility, None, sym.shndx
        )
        locals_.append(out)
        return out
    placement = layout.placement(obj, sym.shndx)
    if placement is None or placement.skipped:
        return None  # DWARF, .BTF and other dropped sections
    section = placement.section
    if sym.type == SymbolType.STT_SECTION:
        out_sec = section_syms.get(section.name)
        if out_sec is None:
            out_sec = OutSymbol(
                "", 0, 0, SymbolBinding.STB_LOCAL, SymbolType.STT_SECTION, 0, section
            )
            section_syms[section.name] = out_sec
            locals_.append(out_sec)
        return out_sec
    out = OutSymbol(
        sym.name,
        placement.offset + sym.value,
        sym.size,
        sym.binding,
        sym.type,
        sym.visibility,
        section,
    )
    locals_.append(out)
    return out
