"""``struct bpf_insn``: the instruction format, its opcodes, and a tiny encoder.

Every layer that reads or patches instructions (the object parser, the linker, CO-RE, the
loader's relocations, the feature probes) uses these names, so an opcode is spelled once and
as in ``linux/bpf.h`` / ``linux/bpf_common.h``: ``BPF_CALL`` is the jump *operation* 0x80 and
:data:`CALL` the whole opcode ``BPF_JMP | BPF_CALL``.

An instruction is 8 bytes (16 for ``ld_imm64``), little-endian as the host:
``code:8 dst_reg:4 src_reg:4 off:16 imm:32``.  The encoder functions return one instruction's
bytes and follow the kernel's instruction macros (``BPF_MOV64_IMM`` is :func:`mov64_imm`...);
programs are ``b"".join(...)`` of them, for feature probes and hand-written test programs.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

from pybpf.abi.bpf import BpfFuncId

INSN_SIZE = 8
"""Bytes of one ``struct bpf_insn``; ``ld_imm64`` takes two."""
INSN = struct.Struct("<BBhi")
"""``code``, the register byte (``src_reg << 4 | dst_reg``), ``off``, ``imm`` (signed)."""


class Insn(NamedTuple):
    """One decoded instruction, fields as in ``struct bpf_insn``."""

    code: int
    dst: int
    src: int
    off: int
    imm: int


def encode(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """The 8 bytes of one instruction; ``imm`` may be given signed or as its u32 bit pattern."""
    imm &= 0xFFFFFFFF
    if imm & 0x80000000:
        imm -= 1 << 32
    return INSN.pack(code, (src << 4) | dst, off, imm)


def decode(data: bytes | memoryview, offset: int = 0) -> Insn:
    """The instruction at ``offset`` of ``data`` (``imm`` signed, as the kernel sees it)."""
    code, regs, off, imm = INSN.unpack_from(data, offset)
    return Insn(code, regs & 0x0F, regs >> 4, off, imm)


class Reg(IntEnum):
    """Registers: R0 return value, R1-R5 arguments, R6-R9 callee-saved, R10 frame pointer."""

    R0 = 0
    R1 = 1
    R2 = 2
    R3 = 3
    R4 = 4
    R5 = 5
    R6 = 6
    R7 = 7
    R8 = 8
    R9 = 9
    R10 = 10


# Instruction classes.
BPF_LD = 0x00
BPF_LDX = 0x01
BPF_ST = 0x02
BPF_STX = 0x03
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_JMP32 = 0x06
BPF_ALU64 = 0x07
# Sizes.
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_DW = 0x18
# Modes.
BPF_IMM = 0x00
BPF_MEM = 0x60
BPF_ATOMIC = 0xC0
# Source operand.
BPF_K = 0x00
BPF_X = 0x08
# ALU operations.
BPF_ADD = 0x00
BPF_SUB = 0x10
BPF_MUL = 0x20
BPF_DIV = 0x30
BPF_OR = 0x40
BPF_AND = 0x50
BPF_LSH = 0x60
BPF_RSH = 0x70
BPF_NEG = 0x80
BPF_MOD = 0x90
BPF_XOR = 0xA0
BPF_MOV = 0xB0
BPF_ARSH = 0xC0
# Jump operations.
BPF_JA = 0x00
BPF_JEQ = 0x10
BPF_JGT = 0x20
BPF_JGE = 0x30
BPF_JSET = 0x40
BPF_JNE = 0x50
BPF_JSGT = 0x60
BPF_JSGE = 0x70
BPF_CALL = 0x80
BPF_EXIT = 0x90
BPF_JLT = 0xA0
BPF_JLE = 0xB0

CALL = BPF_JMP | BPF_CALL
"""0x85: the whole ``call`` opcode (helper, subprogram or kfunc, told apart by ``src_reg``)."""
EXIT = BPF_JMP | BPF_EXIT
"""0x95: the whole ``exit`` opcode."""
LD_IMM64 = BPF_LD | BPF_IMM | BPF_DW
"""0x18: the two-slot 64-bit immediate load, the one that carries map and BTF references."""

SIZE_BYTES = {BPF_W: 4, BPF_H: 2, BPF_B: 1, BPF_DW: 8}
"""Bytes moved by each ``BPF_SIZE`` code of a load or store."""


class BpfPseudo(IntEnum):
    """``src_reg`` markers of ``ld_imm64`` (``BPF_PSEUDO_MAP_*``, ...) and of calls."""

    BPF_PSEUDO_MAP_FD = 1
    BPF_PSEUDO_MAP_VALUE = 2
    BPF_PSEUDO_BTF_ID = 3
    BPF_PSEUDO_FUNC = 4
    BPF_PSEUDO_MAP_IDX = 5
    BPF_PSEUDO_MAP_IDX_VALUE = 6


BPF_PSEUDO_CALL = 1
"""``src_reg`` of a ``call`` whose ``imm`` is a pc-relative subprogram offset."""
BPF_PSEUDO_KFUNC_CALL = 2
"""``src_reg`` of a ``call`` whose ``imm`` is the BTF id of a kernel function."""


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One raw instruction (the name the probe and test programs use for :func:`encode`)."""
    return encode(code, dst, src, off, imm)


def mov64_imm(dst: int, imm: int) -> bytes:
    """``dst = imm`` (a 32-bit immediate, sign-extended)."""
    return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)


def mov64_reg(dst: int, src: int) -> bytes:
    """``dst = src``."""
    return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src)


def alu64_imm(op: int, dst: int, imm: int) -> bytes:
    """``dst op= imm`` on 64 bits (``op`` is ``BPF_ADD``...)."""
    return insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm)


def alu64_reg(op: int, dst: int, src: int) -> bytes:
    """``dst op= src`` on 64 bits."""
    return insn(BPF_ALU64 | op | BPF_X, dst, src)


def ld_imm64(dst: int, imm: int, src: int = 0) -> bytes:
    """The 16-byte ``dst = imm64``; ``src`` is a ``BPF_PSEUDO_*`` marker when not 0."""
    first = insn(LD_IMM64, dst, src, 0, imm)
    return first + insn(0, 0, 0, 0, (imm >> 32) & 0xFFFFFFFF)


def ld_map_fd(dst: int, map_fd: int) -> bytes:
    """``dst = &map`` (``BPF_PSEUDO_MAP_FD``), the first argument of map helpers."""
    return ld_imm64(dst, map_fd, BpfPseudo.BPF_PSEUDO_MAP_FD)


def ld_map_value(dst: int, map_fd: int, offset: int = 0) -> bytes:
    """``dst = &map_value[0] + offset`` (``BPF_PSEUDO_MAP_VALUE``): global data access."""
    return ld_imm64(dst, (offset << 32) | map_fd, BpfPseudo.BPF_PSEUDO_MAP_VALUE)


def ldx_mem(size: int, dst: int, src: int, off: int) -> bytes:
    """``dst = *(size *)(src + off)``."""
    return insn(BPF_LDX | size | BPF_MEM, dst, src, off)


def stx_mem(size: int, dst: int, src: int, off: int) -> bytes:
    """``*(size *)(dst + off) = src``."""
    return insn(BPF_STX | size | BPF_MEM, dst, src, off)


def st_mem(size: int, dst: int, off: int, imm: int) -> bytes:
    """``*(size *)(dst + off) = imm``."""
    return insn(BPF_ST | size | BPF_MEM, dst, 0, off, imm)


def atomic_add(size: int, dst: int, src: int, off: int) -> bytes:
    """``lock *(size *)(dst + off) += src`` (``size`` is ``BPF_W`` or ``BPF_DW``)."""
    return insn(BPF_STX | size | BPF_ATOMIC, dst, src, off, BPF_ADD)


def jmp_imm(op: int, dst: int, imm: int, off: int) -> bytes:
    """``if (dst op imm) goto pc + 1 + off``."""
    return insn(BPF_JMP | op | BPF_K, dst, 0, off, imm)


def jmp_reg(op: int, dst: int, src: int, off: int) -> bytes:
    """``if (dst op src) goto pc + 1 + off``."""
    return insn(BPF_JMP | op | BPF_X, dst, src, off)


def ja(off: int) -> bytes:
    """``goto pc + 1 + off``."""
    return insn(BPF_JMP | BPF_JA, 0, 0, off)


def call(helper: BpfFuncId | int) -> bytes:
    """Call helper ``helper`` (arguments in R1-R5, result in R0)."""
    return insn(CALL, 0, 0, 0, int(helper))


def exit_insn() -> bytes:
    """``return R0``."""
    return insn(EXIT)


def return_imm(value: int) -> bytes:
    """``return value``: the shortest valid program body."""
    return mov64_imm(Reg.R0, value) + exit_insn()


def count_in_array(map_fd: int, index: int = 0) -> bytes:
    """``__sync_fetch_and_add(&array[index], 1); return 0;`` on a u64 array map.

    The canonical 'did my program run?' body of kernel tests: the user side reads the slot.
    """
    return b"".join(
        (
            st_mem(BPF_W, Reg.R10, -4, index),  # key on the stack
            mov64_reg(Reg.R2, Reg.R10),
            alu64_imm(BPF_ADD, Reg.R2, -4),
            ld_map_fd(Reg.R1, map_fd),
            call(BpfFuncId.BPF_FUNC_map_lookup_elem),
            jmp_imm(BPF_JEQ, Reg.R0, 0, 2),  # NULL: skip the increment
            mov64_imm(Reg.R1, 1),
            atomic_add(BPF_DW, Reg.R0, Reg.R1, 0),
            return_imm(0),
        )
    )
