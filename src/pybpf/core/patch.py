"""Writing a relocation result into an instruction, as libbpf's ``bpf_core_patch_insn`` does.

Instructions are the little-endian ``struct bpf_insn``: ``u8 code``, ``u8 dst:4 src:4``,
``s16 off``, ``s32 imm``.  Which field holds the relocated value follows from the class:
ALU/ALU64 with an immediate operand take it in ``imm``; loads and stores take a byte offset in
``off`` (and, when the field changed size, a new access size in ``code``); ``ld_imm64`` takes
it split across its two slots.

An unsatisfiable relocation turns the instruction into a call to helper ``0xbad2310``, which
does not exist: if the code is dead (guarded by an existence check) the verifier prunes it; if
not, the verifier's "invalid func unknown#195896080" points right at it.
"""

from __future__ import annotations

import struct

from pybpf.abi.insn import (
    BPF_ALU,
    BPF_ALU64,
    BPF_LD,
    BPF_LDX,
    BPF_ST,
    BPF_STX,
    BPF_X,
    CALL,
    INSN,
    INSN_SIZE,
    LD_IMM64,
    SIZE_BYTES,
)
from pybpf.core.btfutil import SpecError
from pybpf.core.calc import U64, ReloResult

POISON_HELPER = 0xBAD2310
"""195896080: "bad relo" as a helper id no kernel has."""

SHRT_MAX = 0x7FFF

_BYTES_SIZE = {v: k for k, v in SIZE_BYTES.items()}

_OFF = struct.Struct("<h")
_IMM = struct.Struct("<i")


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def poison(insns: bytearray, index: int) -> None:
    """Replace instruction ``index`` (both slots of an ``ld_imm64``) with the poison call."""
    at = index * INSN_SIZE
    if insns[at] == LD_IMM64 and at + 2 * INSN_SIZE <= len(insns):
        INSN.pack_into(insns, at + INSN_SIZE, CALL, 0, 0, POISON_HELPER)
    INSN.pack_into(insns, at, CALL, 0, 0, POISON_HELPER)


def patch_insn(insns: bytearray, index: int, res: ReloResult) -> None:
    """Apply ``res`` to instruction ``index`` of ``insns``; a :class:`SpecError` if it does not
    have the form or the value the relocation expects."""
    at = index * INSN_SIZE
    if res.poison:
        poison(insns, index)
        return
    code, regs, off, imm = INSN.unpack_from(insns, at)
    cls = code & 0x07
    orig, new = res.orig_val, res.new_val
    if cls in (BPF_ALU, BPF_ALU64):
        if code & BPF_X:
            raise SpecError("ALU instruction with a register operand cannot be relocated")
        if res.validate and imm & U64 != orig:
            raise SpecError(f"unexpected ALU/ALU64 value: got {imm}, exp {orig} -> {new}")
        _IMM.pack_into(insns, at + 4, _s32(new))
        return
    if cls in (BPF_LDX, BPF_ST, BPF_STX):
        if res.validate and off & U64 != orig:
            raise SpecError(f"unexpected LDX/ST/STX value: got {off}, exp {orig} -> {new}")
        if new > SHRT_MAX:
            raise SpecError(f"LDX/ST/STX offset too big: {new}")
        if res.fail_memsz_adjust:
            # the field changed size and is neither a pointer nor an unsigned integer
            poison(insns, index)
            return
        _OFF.pack_into(insns, at + 2, new)
        if res.new_sz != res.orig_sz:
            if SIZE_BYTES[code & 0x18] != res.orig_sz:
                raise SpecError(
                    f"unexpected LDX/ST/STX memory size: got {SIZE_BYTES[code & 0x18]}, "
                    f"exp {res.orig_sz}"
                )
            size_code = _BYTES_SIZE.get(res.new_sz)
            if size_code is None:
                raise SpecError(f"invalid new LDX/ST/STX memory size {res.new_sz}")
            insns[at] = (code & 0xE0) | size_code | cls
        return
    if cls == BPF_LD:
        if (
            code != LD_IMM64
            or at + 2 * INSN_SIZE > len(insns)
            or regs >> 4 != 0
            or off != 0
            or insns[at + 8] != 0
            or insns[at + 9] != 0
            or _OFF.unpack_from(insns, at + 10)[0] != 0
        ):
            raise SpecError("ld_imm64 instruction has an unexpected form")
        (hi,) = _IMM.unpack_from(insns, at + 12)
        value = (imm & 0xFFFFFFFF) | ((hi << 32) & U64)
        if res.validate and value != orig:
            raise SpecError(f"unexpected LDIMM64 value: got {value}, exp {orig} -> {new}")
        _IMM.pack_into(insns, at + 4, _s32(new))
        _IMM.pack_into(insns, at + 12, _s32(new >> 32))
        return
    raise SpecError(
        f"cannot relocate instruction code {code:#04x} (src {regs >> 4}, dst {regs & 0xF}, "
        f"off {off}, imm {imm})"
    )
