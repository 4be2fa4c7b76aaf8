"""Placing input sections into output sections: same name, one output section, in input order.

Each input section is appended at the output's current size rounded up to the output's
alignment so far (the largest alignment seen, as libbpf's ``extend_sec`` does; over-aligning
is harmless and keeps our offsets equal to bpftool's for the same inputs).  ``license`` and
``version`` are not concatenated: every input must carry the same bytes, and the first copy
is kept.  Sections of one name must agree on type, flags and entry size, or the objects were
not built for each other.

One departure from plain input order: ``.maps``.  libbpf creates maps in ``.maps`` order and
fills a map-in-map's initial slots right after creating it, so an outer map placed before
the inner maps it names fails to load ("failed to initialize slot").  Inputs whose ``.maps``
define maps that another input's ``.maps`` refers to (``R_BPF_64_ABS64`` relocations) are
therefore placed first, otherwise keeping input order; that makes the result loadable
whatever order the files were given in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pybpf.abi.sections import LICENSE, MAPS
from pybpf.elf.constants import SHN_LORESERVE, SHN_UNDEF, SectionFlags, SectionType
from pybpf.elf.reader import Section
from pybpf.errors import LinkError
from pybpf.linker.inputs import InputObject

DEDUPED_SECTIONS = (LICENSE, "version")
MAX_SECTION_SIZE = 0xFFFFFFFF
"""Output sections are described by BTF DATASECs and ``.BTF.ext`` offsets, 32-bit fields."""


@dataclass(slots=True)
class OutSection:
    """An output code/data section being assembled."""

    name: str
    type: int
    flags: int
    entsize: int
    addralign: int = 1
    size: int = 0
    data: bytearray = field(default_factory=bytearray)
    first_file: str = ""
    placed: bool = False

    @property
    def is_exec(self) -> bool:
        return self.type == SectionType.SHT_PROGBITS and bool(
            self.flags & SectionFlags.SHF_EXECINSTR
        )

    @property
    def is_nobits(self) -> bool:
        return self.type == SectionType.SHT_NOBITS


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an input section went: the output section and the byte offset in it."""

    section: OutSection
    offset: int
    skipped: bool = False
    """True for a deduplicated ``license``/``version`` copy: its bytes were not appended."""


class SectionLayout:
    """Output sections by name, in order of first appearance, and every input's placements."""

    def __init__(self) -> None:
        self.sections: dict[str, OutSection] = {}
        self._placed: dict[tuple[int, int], Placement] = {}

    def place_all(self, inputs: list[InputObject]) -> None:
        deferred: dict[int, Section] = {}
        for obj in inputs:
            for sec in obj.content:
                if sec.name == MAPS and obj.elf.section(MAPS) is sec:
                    self._out_section(obj, sec)  # keep the output section order
                    deferred[obj.index] = sec
                else:
                    self._place(obj, sec)
        for obj in maps_order(inputs):
            if obj.index in deferred:
                self._place(obj, deferred[obj.index])

    def _out_section(self, obj: InputObject, sec: Section) -> tuple[OutSection, bool]:
        out = self.sections.get(sec.name)
        if out is None:
            out = OutSection(sec.name, sec.type, int(sec.flags), sec.entsize, first_file=obj.path)
            self.sections[sec.name] = out
            return out, True
        return out, False

    def _place(self, obj: InputObject, sec: Section) -> None:
        out, _ = self._out_section(obj, sec)
        if not out.placed:
            out.first_file = obj.path
            out.placed = True
        else:
            self._check_compatible(out, obj, sec)
            if sec.name in DEDUPED_SECTIONS:
                if bytes(out.data) != bytes(sec.data):
                    raise LinkError(
                        f"section {sec.name!r} differs between {out.first_file} "
                        f"({_show(bytes(out.data))}) and {obj.path} ({_show(bytes(sec.data))})"
                    )
                self._placed[(obj.index, sec.index)] = Placement(out, 0, skipped=True)
                return
        align = max(out.addralign, sec.addralign, 1)
        offset = -(-out.size // align) * align
        if offset + sec.size > MAX_SECTION_SIZE:
            raise LinkError(
                f"{obj.path}: section {sec.name!r} ({sec.size} bytes) would end at "
                f"{offset + sec.size:#x} in the output, past the 4 GiB BTF can describe"
            )
        if not out.is_nobits:
            out.data += bytes(offset - out.size)
            out.data += sec.data
        out.size = offset + sec.size
        out.addralign = align
        self._placed[(obj.index, sec.index)] = Placement(out, offset)

    @staticmethod
    def _check_compatible(out: OutSection, obj: InputObject, sec: Section) -> None:
        for what, mine, theirs in (
            ("type", out.type, sec.type),
            ("flags", out.flags, int(sec.flags)),
            ("entry size", out.entsize, sec.entsize),
        ):
            if mine != theirs:
                raise LinkError(
                    f"section {sec.name!r}: {what} {theirs:#x} in {obj.path} differs from "
                    f"{mine:#x} in {out.first_file}"
                )

    def placement(self, obj: InputObject, section_index: int) -> Placement | None:
        """Where section ``section_index`` of ``obj`` went (``None``: dropped)."""
        return self._placed.get((obj.index, section_index))

    def placement_by_name(self, obj: InputObject, name: str) -> Placement | None:
        sec = obj.elf.section(name)
        return None if sec is None else self.placement(obj, sec.index)


def maps_order(inputs: list[InputObject]) -> list[InputObject]:
    """Inputs in the order their ``.maps`` should be placed: an input defining a map that
    another input's ``.maps`` names (an inner map) comes before it; otherwise input order.
    Cycles, which libbpf could not load in any order, fall back to input order."""
    definer: dict[str, InputObject] = {}
    for obj in inputs:
        for sym in obj.elf.symbols[1:]:
            if (
                sym.is_global
                and SHN_UNDEF < sym.shndx < SHN_LORESERVE
                and obj.elf.sections[sym.shndx].name == MAPS
                and (sym.name not in definer or not sym.is_weak)
            ):
                definer[sym.name] = obj
    needs: dict[int, set[int]] = {obj.index: set() for obj in inputs}
    for obj in inputs:
        for rel in obj.elf.relocation_sections:
            if obj.elf.sections[rel.target].name != MAPS:
                continue
            for r in rel.relocations:
                other = definer.get(obj.elf.symbols[r.symbol].name)
                if other is not None and other is not obj:
                    needs[obj.index].add(other.index)
    order: list[InputObject] = []
    remaining = list(inputs)
    while remaining:
        done = {o.index for o in order}
        ready = next((o for o in remaining if needs[o.index] <= done), remaining[0])
        order.append(ready)
        remaining.remove(ready)
    return order


def _show(data: bytes) -> str:
    return repr(data.rstrip(b"\0").decode("utf-8", "replace"))
