"""Turn one entry-point program of an object into the instructions the kernel verifies.

An object file keeps each function apart and leaves holes where map descriptors, global
variable addresses and subprogram offsets go.  The kernel wants one flat instruction array
per program with every hole filled.  Following libbpf (``bpf_object__reloc_code``), each
subprogram the program reaches is appended after it, depth first, the first time a call
or a function-pointer load reaches it; so each entry point carries its own copy of what it
calls and no more, and the layout (hence the kernel's program tag) matches libbpf's.

Filling holes needs descriptors of maps that already exist in the kernel, which is why this
runs after map creation; it never issues a syscall itself, so it is testable without root.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pybpf.abi.btf import FUNC_INFO, LINE_INFO
from pybpf.abi.insn import (
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_KFUNC_CALL,
    CALL,
    INSN,
    INSN_SIZE,
    LD_IMM64,
    BpfPseudo,
)
from pybpf.errors import LoadError
from pybpf.load.ksyms import Ksym, KsymKind
from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.specs import ExternKind, ExternSpec, ProgramSpec, RelocKind, RelocSpec

FUNC_INFO_REC_SIZE = FUNC_INFO.size
LINE_INFO_REC_SIZE = LINE_INFO.size

_LINE_NUM_SHIFT = 10
_LINE_COL_MASK = 0x3FF


@dataclass(frozen=True, slots=True)
class RelocatedProgram:
    """A program ready for ``BPF_PROG_LOAD``.

    ``func_info``/``line_info`` are raw kernel records (``bpf_func_info``/``bpf_line_info``,
    instruction offsets in instructions), empty when the object has no ``.BTF.ext`` or when
    they do not cover every function (the kernel insists on one func_info per function).
    ``functions`` names what was laid out, entry point first.
    """

    insns: bytes
    func_info: bytes
    line_info: bytes
    functions: tuple[str, ...]

    @property
    def insn_count(self) -> int:
        return len(self.insns) // INSN_SIZE


@dataclass(frozen=True, slots=True)
class Resolved:
    """What the loader knows when relocating: map descriptors and extern values.

    ``map_fds`` is keyed by map name.  ``kconfig_map`` names the ``.kconfig`` map (externs
    live at :attr:`ExternSpec.offset` in its value).  ``string_offset`` gives the offset of a
    string in the BTF string table loaded into the kernel (line info refers to file names
    and source lines by offset); ``None`` drops func and line info.
    """

    map_fds: Mapping[str, int]
    kconfig_map: str | None = None
    string_offset: Callable[[str], int] | None = None
    ksyms: Mapping[str, Ksym] = field(default_factory=dict)


class _ImageBuilder:
    """The flat instruction array of one entry point under construction."""

    def __init__(self, obj: ObjectSpec, main: ProgramSpec, resolved: Resolved) -> None:
        self.obj = obj
        self.main = main
        self.resolved = resolved
        self.insns = bytearray()
        self.placed: dict[tuple[int, int], int] = {}
        self.order: list[tuple[ProgramSpec, int]] = []
        self.functions = _function_index(obj)
        self.externs = {e.name: e for e in obj.externs}

    def error(self, message: str) -> LoadError:
        return LoadError(f"program '{self.main.name}': {message}", program=self.main.name)

    # --------------------------------------------------------------------------- layout

    def place(self, func: ProgramSpec) -> int:
        """Append ``func`` and relocate it (recursively appending its callees)."""
        start = len(self.insns) // INSN_SIZE
        self.placed[(func.section_index, func.offset)] = start
        self.order.append((func, start))
        self.insns += func.insns
        self.relocate(func, start)
        return start

    def callee(self, section_index: int, byte_offset: int, where: str) -> int:
        """Start (in the flat array) of the function at ``byte_offset`` of a section."""
        key = (section_index, byte_offset)
        if key in self.placed:
            return self.placed[key]
        func = self.functions.get(key)
        if func is None:
            raise self.error(f"{where}: no function at offset {byte_offset:#x} of section "
                             f"#{section_index}")
        return self.place(func)

    # --------------------------------------------------------------------------- patching

    def relocate(self, func: ProgramSpec, start: int) -> None:
        relocs = {r.insn_index: r for r in func.relocations}
        count = func.insn_count
        for idx in range(count):
            at = (start + idx) * INSN_SIZE
            code, regs, _off, imm = INSN.unpack_from(self.insns, at)
            reloc = relocs.get(idx)
            where = f"{func.name}+{idx}"
            if reloc is not None:
                self.apply(reloc, start + idx, where)
            elif code == CALL and regs >> 4 == BPF_PSEUDO_CALL:
                # A call to a static function of the same section needs no relocation:
                # imm is already relative to the call within the section.
                target = func.offset // INSN_SIZE + idx + imm + 1
                self.patch_call(start + idx, func.section_index, target * INSN_SIZE, where)
            elif code == LD_IMM64 and regs >> 4 == BpfPseudo.BPF_PSEUDO_FUNC:
                raise self.error(f"{where}: function address without a relocation")

    def apply(self, reloc: RelocSpec, pos: int, where: str) -> None:
        kind = reloc.kind
        if kind is RelocKind.MAP:
            self.set_ld_imm64(pos, BpfPseudo.BPF_PSEUDO_MAP_FD, self.map_fd(reloc, where), 0, where)
        elif kind is RelocKind.DATA:
            fd = self.map_fd(reloc, where)
            self.set_ld_imm64(pos, BpfPseudo.BPF_PSEUDO_MAP_VALUE, fd, reloc.target_offset, where)
        elif kind is RelocKind.CALL:
            self.patch_call(pos, reloc.section_index, reloc.target_offset, where)
        elif kind is RelocKind.SUBPROG_ADDR:
            self.check_opcode(pos, LD_IMM64, where)
            target = self.callee(reloc.section_index, reloc.target_offset, where)
            self.set_imm(pos, target - pos - 1, src=BpfPseudo.BPF_PSEUDO_FUNC)
        elif kind is RelocKind.EXTERN_VAR:
            self.extern_var(reloc, pos, where)
        else:
            self.kfunc_call(reloc, pos, where)

    def map_fd(self, reloc: RelocSpec, where: str) -> int:
        name = reloc.map_name
        if name is None or name not in self.resolved.map_fds:
            raise self.error(f"{where}: relocation against '{reloc.symbol}' names no map "
                             f"that was created ({name!r})")
        return self.resolved.map_fds[name]

    def extern_var(self, reloc: RelocSpec, pos: int, where: str) -> None:
        name = reloc.extern_name or reloc.symbol
        ext: ExternSpec | None = self.externs.get(name)
        if ext is None:
            raise self.error(f"{where}: unknown extern '{name}'")
        if ext.kind is ExternKind.KCONFIG:
            kconfig = self.resolved.kconfig_map
            if kconfig is None or kconfig not in self.resolved.map_fds:
                raise self.error(f"{where}: extern '{name}' needs the .kconfig map")
            fd = self.resolved.map_fds[kconfig]
            self.set_ld_imm64(pos, BpfPseudo.BPF_PSEUDO_MAP_VALUE, fd, ext.offset, where)
            return
        ksym = self.resolved.ksyms.get(name)
        if ksym is None:
            raise self.error(f"{where}: extern '{name}' ({ext.kind.value}) is unresolved")
        if ksym.kind in (KsymKind.BTF_VAR, KsymKind.BTF_FUNC):
            # vmlinux: BTF object fd 0 in the second half
            self.set_ld_imm64(pos, BpfPseudo.BPF_PSEUDO_BTF_ID, ksym.value, 0, where)
        else:  # an address, or 0 for an unresolved __weak ksym
            address = ksym.value
            self.set_ld_imm64(pos, 0, address & 0xFFFFFFFF, address >> 32, where)

    def kfunc_call(self, reloc: RelocSpec, pos: int, where: str) -> None:
        name = reloc.extern_name or reloc.symbol
        ksym = self.resolved.ksyms.get(name)
        if ksym is None:
            raise self.error(f"{where}: call of unresolved function '{name}' (link the object "
                             "with its definition, or declare it __ksym)")
        self.check_opcode(pos, CALL, where)
        # off selects the BTF object in fd_array: 0 is vmlinux; an unresolved __weak kfunc
        # keeps imm 0, in a branch the verifier removes after bpf_ksym_exists()
        self.set_imm(pos, ksym.value, src=BPF_PSEUDO_KFUNC_CALL, off=0)

    def check_opcode(self, pos: int, expected: int, where: str) -> None:
        code = self.insns[pos * INSN_SIZE]
        if code != expected:
            raise self.error(f"{where}: relocation on opcode {code:#04x}, expected "
                             f"{expected:#04x}")

    def set_ld_imm64(self, pos: int, src: int, imm0: int, imm1: int, where: str) -> None:
        self.check_opcode(pos, LD_IMM64, where)
        if (pos + 1) * INSN_SIZE >= len(self.insns):
            raise self.error(f"{where}: ld_imm64 truncated")
        self.set_imm(pos, imm0, src=src)
        self.set_imm(pos + 1, imm1)

    def patch_call(self, pos: int, section_index: int, byte_offset: int, where: str) -> None:
        self.check_opcode(pos, CALL, where)
        target = self.callee(section_index, byte_offset, where)
        self.set_imm(pos, target - pos - 1, src=BPF_PSEUDO_CALL)

    def set_imm(self, pos: int, imm: int, *, src: int | None = None, off: int | None = None
                ) -> None:  # fmt: skip
        at = pos * INSN_SIZE
        code, regs, old_off, _ = INSN.unpack_from(self.insns, at)
        off = old_off if off is None else off
        if src is not None:
            regs = (regs & 0x0F) | (src << 4)
        imm = (imm + (1 << 31)) % (1 << 32) - (1 << 31)  # wrap as the kernel's s32
        INSN.pack_into(self.insns, at, code, regs, off, imm)

    # --------------------------------------------------------------------------- .BTF.ext

    def func_info(self) -> bytes:
        out = bytearray()
        for func, start in self.order:
            for rec in func.func_info:
                out += FUNC_INFO.pack(start + rec.insn_idx, rec.type_id)
        return bytes(out)

    def line_info(self, string_offset: Callable[[str], int]) -> bytes:
        out = bytearray()
        for func, start in self.order:
            for rec in func.line_info:
                line_col = (rec.line_num << _LINE_NUM_SHIFT) | (rec.line_col & _LINE_COL_MASK)
                out += LINE_INFO.pack(
                    start + rec.insn_idx,
                    string_offset(rec.file_name),
                    string_offset(rec.line),
                    line_col,
                )
        return bytes(out)


def _function_index(obj: ObjectSpec) -> dict[tuple[int, int], ProgramSpec]:
    """Every function of the object by (section index, byte offset)."""
    index: dict[tuple[int, int], ProgramSpec] = {}
    for func in (*obj.programs, *obj.subprograms):
        index.setdefault((func.section_index, func.offset), func)
    return index


def relocate_program(obj: ObjectSpec, prog: ProgramSpec, resolved: Resolved) -> RelocatedProgram:
    """Lay ``prog`` out with the subprograms it reaches and fill every relocation.

    Raises :class:`~pybpf.errors.LoadError` naming the program and instruction when a
    relocation cannot be satisfied.
    """
    layout = _ImageBuilder(obj, prog, resolved)
    layout.place(prog)
    pending = [func.name for func, _ in layout.order if func.core_relos]
    if pending:
        # field offsets would silently be those of the compiler's headers
        raise layout.error(f"CO-RE relocations of {', '.join(pending)} were not applied "
                           "(pybpf.core.relocate_object runs before this)")
    func_info = line_info = b""
    if resolved.string_offset is not None:
        func_info = layout.func_info()
        line_info = layout.line_info(resolved.string_offset)
        if len(func_info) != FUNC_INFO_REC_SIZE * len(layout.order):
            func_info = line_info = b""  # partial info is refused by the kernel: drop it
    return RelocatedProgram(
        insns=bytes(layout.insns),
        func_info=func_info,
        line_info=line_info,
        functions=tuple(func.name for func, _ in layout.order),
    )
