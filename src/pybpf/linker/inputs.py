"""One input object of a static link: parsed, checked, and indexed for the later stages.

Checks follow what libbpf's linker accepts (``linker_sanity_check_*`` in ``src/linker.c``): a
64-bit little-endian ``ET_REL`` BPF object with one symbol table, ``SHT_REL`` relocations
named ``.rel<target>``, power-of-two alignments, and instruction sections whose size is a
whole number of instructions.  Everything the linker rebuilds (symbol and string tables,
``.BTF``, ``.BTF.ext``, their relocations) or drops (DWARF, ``.llvm_addrsig``) is classified
here, so the layout stage only sees sections that end up in the output.

Beyond libbpf, every offset the later stages add a placement to is checked against the section
it points into (symbols, relocations, DATASEC entries, ``.BTF.ext`` records), and every FUNC's
type must be a FUNC_PROTO.  The later stages can then trust their input: a hostile object is
refused here, naming the file, the section and the symbol or offset, instead of surfacing as
a value that does not fit the output's fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pybpf.abi.insn import BPF_PSEUDO_CALL, CALL, INSN_SIZE
from pybpf.abi.sections import BTF, BTF_EXT, TEXT
from pybpf.btf.btf import Btf
from pybpf.btf.ext import BtfExt, CoreRelo, FuncInfo, LineInfo
from pybpf.btf.types import (
    BtfDatasec,
    BtfFunc,
    BtfFuncProto,
    BtfType,
    BtfVar,
    FuncLinkage,
    VarLinkage,
)
from pybpf.elf.constants import (
    MAX_SECTION_ALIGN,
    SHN_ABS,
    SHN_LORESERVE,
    SHN_UNDEF,
    BpfReloc,
    ElfType,
    SectionFlags,
    SectionType,
    SymbolBinding,
    SymbolType,
    SymbolVisibility,
)
from pybpf.elf.reader import ElfFile, Section
from pybpf.errors import BpfError, LinkError

EXTERN_DATASEC = ".extern"
"""Where clang puts the BTF of extern variables declared without a section attribute."""

ALLOWED_RELOCS = frozenset(
    {
        BpfReloc.R_BPF_64_64,
        BpfReloc.R_BPF_64_32,
        BpfReloc.R_BPF_64_ABS64,
        BpfReloc.R_BPF_64_ABS32,
        BpfReloc.R_BPF_64_NODYLD32,
    }
)


@dataclass(frozen=True, slots=True)
class GlobalBtf:
    """Where an input's BTF describes a non-static symbol: its VAR/FUNC and its DATASEC."""

    type_id: int
    datasec: str | None
    """Name of the DATASEC listing it (``.data``, ``.maps``, ``.kconfig``...), if any."""


@dataclass(slots=True)
class InputObject:
    """A parsed input with the indices the linker stages share."""

    index: int
    path: str
    elf: ElfFile
    btf: Btf | None
    ext: BtfExt | None
    content: list[Section] = field(default_factory=list)
    """Sections whose bytes go to the output (code and data), in file order."""
    globals_btf: dict[str, GlobalBtf] = field(default_factory=dict)
    types: list[BtfType] = field(default_factory=list)
    """Every type of ``btf``, decoded once when the input is checked: ``types[type_id - 1]``."""
    _datasecs: list[tuple[int, BtfDatasec]] | None = None

    def error(self, message: str) -> LinkError:
        return LinkError(f"{self.path}: {message}")

    def datasecs(self) -> list[tuple[int, BtfDatasec]]:
        """Every DATASEC of this input's BTF with its type id, in id order (computed once)."""
        if self._datasecs is None:
            self._datasecs = []
            for type_id, t in enumerate(self.types, 1):
                if t.__class__ is BtfDatasec:
                    assert isinstance(t, BtfDatasec)
                    self._datasecs.append((type_id, t))
        return self._datasecs


def is_dropped_section(sec: Section) -> bool:
    """Sections the linker neither copies nor rebuilds from their bytes."""
    if sec.index == 0:
        return True
    if sec.type in (SectionType.SHT_STRTAB, SectionType.SHT_SYMTAB, SectionType.SHT_REL):
        return True
    if sec.type == SectionType.SHT_LLVM_ADDRSIG or sec.name.startswith(".debug_"):
        return True
    if sec.name in (BTF, BTF_EXT):
        return True
    # A file without subprograms still has an empty .text: nothing to contribute.
    return sec.name == TEXT and sec.type == SectionType.SHT_PROGBITS and sec.size == 0


def load_input(index: int, path: str, data: bytes) -> InputObject:
    """Parse and check one input; every problem is a :class:`LinkError` naming the file."""
    try:
        elf = ElfFile(data, path=path, require_bpf=False)
    except BpfError as exc:
        raise LinkError(f"{path}: not a BPF object file: {exc}") from None
    if elf.machine != 247:
        raise LinkError(
            f"{path}: offset 0x12: not a BPF object (e_machine {elf.machine}, expected EM_BPF)"
        )
    if elf.e_type != ElfType.ET_REL:
        raise LinkError(
            f"{path}: offset 0x10: not a relocatable object (e_type {elf.e_type}, expected "
            f"ET_REL, as clang -c and gen object write)"
        )
    if elf.endian != "<":
        raise LinkError(f"{path}: big-endian BPF objects are not supported")
    try:
        btf, types, ext = _load_btf(elf)
    except BpfError as exc:
        raise LinkError(f"{path}: bad BTF: {exc}") from None
    obj = InputObject(index, path, elf, btf, ext, types=types)
    _check_sections(obj)
    _check_symbols(obj)
    _check_relocations(obj)
    obj.content = [s for s in elf.sections if not is_dropped_section(s)]
    _check_btf(obj)
    obj.globals_btf = _index_globals(obj)
    return obj


def load_file(index: int, path: str | Path) -> InputObject:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LinkError(f"{path}: cannot read: {exc.strerror}") from None
    return load_input(index, str(path), data)


def _load_btf(elf: ElfFile) -> tuple[Btf | None, list[BtfType], BtfExt | None]:
    """The input's BTF, all its types decoded (every one is checked here, once), its .BTF.ext."""
    sec = elf.section(BTF)
    if sec is None:
        return None, [], None
    btf = Btf.from_bytes(sec.data, file=elf.path, section=BTF)
    types = btf.decoded()
    ext_sec = elf.section(BTF_EXT)
    ext = None if ext_sec is None else BtfExt.from_bytes(ext_sec.data, btf, file=elf.path)
    return btf, types, ext


def _check_sections(obj: InputObject) -> None:
    symtabs = [s for s in obj.elf.sections if s.type == SectionType.SHT_SYMTAB]
    if len(symtabs) != 1:
        raise obj.error(f"expected one symbol table, found {len(symtabs)}")
    supported = (
        SectionType.SHT_NULL,
        SectionType.SHT_PROGBITS,
        SectionType.SHT_NOBITS,
        SectionType.SHT_SYMTAB,
        SectionType.SHT_STRTAB,
        SectionType.SHT_REL,
        SectionType.SHT_LLVM_ADDRSIG,
    )
    for sec in obj.elf.sections[1:]:
        if not sec.name:
            raise obj.error(f"section #{sec.index} has no name")
        if sec.name.startswith(".debug_"):
            continue
        if sec.type not in supported:
            raise obj.error(f"section {sec.name} has unsupported type {sec.type:#x}")
        if sec.addralign & (sec.addralign - 1) or sec.addralign > MAX_SECTION_ALIGN:
            # The layout pads to this alignment: a huge one would make a huge output.
            raise obj.error(
                f"section {sec.name} alignment {sec.addralign} is not a power of 2 up to "
                f"{MAX_SECTION_ALIGN}"
            )
        if sec.is_exec and sec.size % INSN_SIZE:
            raise obj.error(
                f"section {sec.name} size {sec.size} is not a multiple of {INSN_SIZE}"
            )


def _check_symbols(obj: InputObject) -> None:
    for sym in obj.elf.symbols[1:]:
        where = f"symbol #{sym.index} ({sym.name or '<unnamed>'})"
        if sym.binding not in (
            SymbolBinding.STB_LOCAL,
            SymbolBinding.STB_GLOBAL,
            SymbolBinding.STB_WEAK,
        ):
            raise obj.error(f"{where} has unsupported binding {sym.binding}")
        if sym.visibility not in (SymbolVisibility.STV_DEFAULT, SymbolVisibility.STV_HIDDEN):
            raise obj.error(f"{where} has unsupported visibility {sym.visibility}")
        if sym.shndx == SHN_UNDEF and (
            sym.binding == SymbolBinding.STB_LOCAL or sym.type != SymbolType.STT_NOTYPE
        ):
            raise obj.error(f"{where} is an invalid extern (local or typed undefined symbol)")
        if sym.is_extern and obj.elf.section(BTF) is None:
            raise obj.error(f"extern {sym.name!r} needs BTF, but the object has no .BTF")
        if sym.type == SymbolType.STT_SECTION and (
            not SHN_UNDEF < sym.shndx < SHN_LORESERVE or sym.value
        ):
            # Relocations against it add its section's placement: it must be that section.
            raise obj.error(
                f"{where} is a section symbol with section index {sym.shndx:#x} and value "
                f"{sym.value:#x} (expected a section and 0)"
            )
        if sym.shndx >= SHN_LORESERVE and sym.shndx != SHN_ABS and sym.is_global:
            # clang puts BPF globals in real sections; COMMON or an unknown reserved index
            # would reach the output as a symbol that no loader can place.
            raise obj.error(f"{where} is in reserved section index {sym.shndx:#x}")
        if SHN_UNDEF < sym.shndx < SHN_LORESERVE:
            sec = obj.elf.sections[sym.shndx]
            if sym.type == SymbolType.STT_FUNC and not sec.flags & SectionFlags.SHF_EXECINSTR:
                # Calls are resolved against code: a function in a data section would link
                # into an output whose calls to it no loader accepts.
                raise obj.error(f"{where} is a function in non-executable section {sec.name}")
            if not is_dropped_section(sec) and sym.value + sym.size > sec.size:
                raise obj.error(
                    f"{where}: {sym.size} bytes at {sym.value:#x} lie outside section "
                    f"{sec.name} ({sec.size} bytes)"
                )


def _check_relocations(obj: InputObject) -> None:
    symtab = next(s for s in obj.elf.sections if s.type == SectionType.SHT_SYMTAB)
    for rel in obj.elf.relocation_sections:
        sec = rel.section
        if sec.type != SectionType.SHT_REL:
            raise obj.error(f"section {sec.name}: only SHT_REL relocations are supported")
        target = obj.elf.sections[rel.target]
        if sec.name != ".rel" + target.name:
            raise obj.error(
                f"relocation section {sec.name} does not match its target {target.name}"
            )
        if is_dropped_section(target):
            continue
        if sec.link != symtab.index:
            raise obj.error(f"relocation section {sec.name} does not use the symbol table")
        if target.type not in (SectionType.SHT_PROGBITS, SectionType.SHT_NOBITS):
            raise obj.error(f"relocation section {sec.name} relocates a non-data section")
        for i, r in enumerate(rel.relocations):
            if r.type not in ALLOWED_RELOCS:
                raise obj.error(f"{sec.name}: relocation #{i} has unsupported type {r.type}")
            if r.symbol == 0:
                raise obj.error(f"{sec.name}: relocation #{i} refers to the null symbol")
            if target.flags & SectionFlags.SHF_EXECINSTR and r.offset % INSN_SIZE:
                raise obj.error(
                    f"{sec.name}: relocation #{i} at {r.offset:#x} is not on an instruction"
                )
            width = _patched_bytes(r.type, bool(target.flags & SectionFlags.SHF_EXECINSTR))
            if r.offset + width > target.size:
                raise obj.error(
                    f"{sec.name}: relocation #{i} patches {width} bytes at {r.offset:#x}, "
                    f"outside {target.name} ({target.size} bytes)"
                )
            if target.flags & SectionFlags.SHF_EXECINSTR:
                _check_call_insn(obj, target, sec.name, i, r.offset)


def _check_call_insn(
    obj: InputObject, target: Section, rel_name: str, index: int, offset: int
) -> None:
    """A relocated ``call`` must be a BPF-to-BPF call (``src_reg == BPF_PSEUDO_CALL``).

    The object layer types a call to an extern by its relocation alone, so an input whose call
    carries another ``src_reg`` opens; once the linker binds that call to a real function the
    output would not.  Refusing it here names the input instead of the output.
    """
    if offset + 2 > len(target.data) or target.data[offset] != CALL:
        return
    regs = target.data[offset + 1]
    src_reg = regs >> 4 if obj.elf.endian == "<" else regs & 0xF
    if src_reg != BPF_PSEUDO_CALL:
        raise obj.error(
            f"{rel_name}: relocation #{index} is on a call at {offset:#x} in {target.name} "
            f"with src_reg {src_reg} (a BPF-to-BPF call has src_reg {BPF_PSEUDO_CALL})"
        )


def _patched_bytes(kind: int, in_code: bool) -> int:
    """How many bytes at its offset a relocation of ``kind`` covers: a whole instruction in
    code (two for ``ld_imm64``), the patched word in data."""
    if in_code:
        return 2 * INSN_SIZE if kind == BpfReloc.R_BPF_64_64 else INSN_SIZE
    return 8 if kind in (BpfReloc.R_BPF_64_ABS64, BpfReloc.R_BPF_64_64) else 4


def _check_btf(obj: InputObject) -> None:
    """FUNCs must have prototypes, and whatever the BTF places in a linked section (DATASEC
    entries, ``.BTF.ext`` records) must lie inside that section."""
    types = obj.types
    for type_id, t in enumerate(types, 1):
        if isinstance(t, BtfFunc) and not (
            0 < t.type <= len(types) and isinstance(types[t.type - 1], BtfFuncProto)
        ):
            raise obj.error(
                f"section .BTF: type #{type_id} FUNC {t.name!r} refers to type {t.type}, "
                "not to a FUNC_PROTO"
            )
    linked = {sec.name: sec for sec in obj.content}
    for type_id, ds in obj.datasecs():
        sec = linked.get(ds.name)
        if sec is None:
            continue  # .kconfig, .ksyms, .extern: no bytes of their own
        for info in ds.vars:
            if info.offset + info.size > sec.size:
                raise obj.error(
                    f"section .BTF: DATASEC {ds.name!r} (type #{type_id}) places type "
                    f"#{info.type} at {info.offset:#x}+{info.size}, outside section "
                    f"{ds.name} ({sec.size} bytes)"
                )
    if obj.ext is None:
        return
    tables: tuple[tuple[str, Mapping[str, tuple[FuncInfo | LineInfo | CoreRelo, ...]]], ...] = (
        ("func_info", obj.ext.func_info),
        ("line_info", obj.ext.line_info),
        ("CO-RE relocation", obj.ext.core_relos),
    )
    for what, table in tables:
        for name, records in table.items():
            sec = linked.get(name)
            if sec is None:
                raise obj.error(f"section .BTF.ext: {what} for section {name!r}, which it lacks")
            for r in records:
                if r.insn_off >= sec.size:
                    raise obj.error(
                        f"section .BTF.ext: {what} at {r.insn_off:#x} is outside section "
                        f"{name} ({sec.size} bytes)"
                    )


def _is_non_static(t: BtfVar | BtfFunc) -> bool:
    if isinstance(t, BtfVar):
        return t.linkage != VarLinkage.STATIC
    return t.linkage != FuncLinkage.STATIC


def _index_globals(obj: InputObject) -> dict[str, GlobalBtf]:
    """Map each non-static VAR/FUNC name to its type id and DATASEC (libbpf's
    ``find_glob_sym_btf``), refusing ambiguous BTF."""
    btf = obj.btf
    if btf is None:
        return {}
    types = obj.types
    free: dict[str, int] = {}
    for type_id, t in enumerate(types, 1):
        if isinstance(t, BtfVar | BtfFunc) and _is_non_static(t):
            free.setdefault(t.name, type_id)
    found: dict[str, GlobalBtf] = {}
    for _, sec in obj.datasecs():
        for info in sec.vars:
            t = btf[info.type]
            if not isinstance(t, BtfVar | BtfFunc) or not _is_non_static(t):
                continue
            if t.name in found and found[t.name].type_id != info.type:
                raise obj.error(
                    f"BTF of global {t.name!r} is ambiguous (types {info.type} and "
                    f"{found[t.name].type_id})"
                )
            found.setdefault(t.name, GlobalBtf(info.type, sec.name))
    for name, type_id in free.items():
        found.setdefault(name, GlobalBtf(type_id, None))
    return found
