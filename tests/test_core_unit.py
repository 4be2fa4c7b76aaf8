"""CO-RE rules on small hand-built BTFs: the cases a kernel fixture cannot pin down.

Each test builds a local (object) BTF and a target (kernel) BTF with :class:`BtfBuilder`,
one relocation record and the instruction clang would emit, and checks what libbpf's
``relo_core.c`` specifies: members found by name through anonymous members, candidate
ambiguity refused, candidate narrowing across relocations, load size adjustment (and
poisoning where it would be wrong), ``ld_imm64`` poisoning of both slots, flexible arrays,
module BTF searched only when vmlinux has no candidate.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pybpf.btf.btf import Btf
from pybpf.btf.builder import BtfBuilder
from pybpf.btf.ext import CoreRelo, CoreReloKind
from pybpf.btf.types import (
    BtfArray,
    BtfEnum,
    BtfEnumValue,
    BtfInt,
    BtfMember,
    BtfStruct,
    BtfType,
    BtfUnion,
    IntEncoding,
)
from pybpf.core import CoreError, CoreRelocator, TargetBtf, relocate_core

INSN = struct.Struct("<BBhi")
MOV64_IMM = 0xB7
LDX_DW = 0x79
LDX_W = 0x61
LD_IMM64 = 0x18
POISON = INSN.pack(0x85, 0, 0, 0xBAD2310)

INT = BtfInt("int", 4, IntEncoding.SIGNED, 0, 32)
UINT = BtfInt("unsigned int", 4, IntEncoding.NONE, 0, 32)
U64 = BtfInt("unsigned long long", 8, IntEncoding.NONE, 0, 64)
S64 = BtfInt("long long", 8, IntEncoding.SIGNED, 0, 64)


def btf_of(*types: BtfType) -> Btf:
    builder = BtfBuilder()
    for t in types:
        builder.add(t)
    return builder.to_btf()


def target_of(*types: BtfType) -> TargetBtf:
    return TargetBtf.from_btf(btf_of(*types))


def field(name: str, type_id: int, byte: int) -> BtfMember:
    return BtfMember(name, type_id, byte * 8)


def relocate_one(
    insn: bytes, relo: CoreRelo, local: Btf, target: TargetBtf, *, tail: bytes = b""
) -> bytes:
    insns = bytearray(insn + tail)
    relocate_core(insns, [relo], local, target, prog_name="p")
    return bytes(insns)


# local: [1] int, [2] struct foo { int a; int b; }
LOCAL_FOO = btf_of(INT, BtfStruct("foo", 8, (field("a", 1, 0), field("b", 1, 4))))
OFFSET_OF_B = CoreRelo(0, 2, "0:1", CoreReloKind.FIELD_BYTE_OFFSET)


def test_member_found_by_name_inside_an_anonymous_union() -> None:
    target = target_of(
        INT,
        BtfUnion("", 4, (field("x", 1, 0), field("b", 1, 0))),
        BtfStruct("foo", 16, (field("a", 1, 0), field("pad", 1, 4), field("", 2, 8))),
    )
    out = relocate_one(INSN.pack(MOV64_IMM, 1, 0, 4), OFFSET_OF_B, LOCAL_FOO, target)
    assert out == INSN.pack(MOV64_IMM, 1, 0, 8)


def test_instruction_not_holding_the_local_value_is_refused() -> None:
    target = target_of(INT, BtfStruct("foo", 8, (field("b", 1, 0),)))
    with pytest.raises(CoreError, match=r"prog 'p': relo #0: insn #0: .*got 5, exp 4"):
        relocate_one(INSN.pack(MOV64_IMM, 1, 0, 5), OFFSET_OF_B, LOCAL_FOO, target)


def test_candidates_disagreeing_on_an_offset_are_an_error() -> None:
    target = target_of(
        INT,
        BtfStruct("foo", 8, (field("b", 1, 0),)),
        BtfStruct("foo___v2", 8, (field("b", 1, 4),)),
    )
    with pytest.raises(CoreError, match="field offset ambiguity"):
        relocate_one(INSN.pack(MOV64_IMM, 1, 0, 4), OFFSET_OF_B, LOCAL_FOO, target)


def test_candidates_agreeing_are_fine() -> None:
    target = target_of(
        INT,
        BtfStruct("foo", 8, (field("b", 1, 4),)),
        BtfStruct("foo___v2", 12, (field("z", 1, 0), field("b", 1, 4))),
    )
    out = relocate_one(INSN.pack(MOV64_IMM, 1, 0, 4), OFFSET_OF_B, LOCAL_FOO, target)
    assert out == INSN.pack(MOV64_IMM, 1, 0, 4)


def test_a_relocation_narrows_the_candidates_of_later_ones() -> None:
    """libbpf keeps, per local type, only candidates that matched: after ``a`` (only in
    foo___v2) is resolved, ``b`` is no longer ambiguous."""
    target = target_of(
        INT,
        BtfStruct("foo", 8, (field("b", 1, 0),)),
        BtfStruct("foo___v2", 12, (field("a", 1, 0), field("b", 1, 8))),
    )
    insns = bytearray(INSN.pack(MOV64_IMM, 1, 0, 0) + INSN.pack(MOV64_IMM, 2, 0, 4))
    relos = [
        CoreRelo(0, 2, "0:0", CoreReloKind.FIELD_BYTE_OFFSET),
        CoreRelo(8, 2, "0:1", CoreReloKind.FIELD_BYTE_OFFSET),
    ]
    CoreRelocator(LOCAL_FOO, target).relocate(insns, relos, prog_name="p")
    assert insns == INSN.pack(MOV64_IMM, 1, 0, 0) + INSN.pack(MOV64_IMM, 2, 0, 8)


def test_load_size_follows_an_unsigned_field_that_shrank() -> None:
    local = btf_of(U64, BtfStruct("foo", 16, (field("a", 1, 0), field("x", 1, 8))))
    target = target_of(UINT, BtfStruct("foo", 8, (field("x", 1, 4),)))
    relo = CoreRelo(0, 2, "0:1", CoreReloKind.FIELD_BYTE_OFFSET)
    out = relocate_one(INSN.pack(LDX_DW, 0x12, 8, 0), relo, local, target)
    assert out == INSN.pack(LDX_W, 0x12, 4, 0)


def test_signed_field_that_shrank_is_poisoned_not_misread() -> None:
    local = btf_of(S64, BtfStruct("foo", 16, (field("a", 1, 0), field("x", 1, 8))))
    target = target_of(INT, BtfStruct("foo", 8, (field("x", 1, 4),)))
    relo = CoreRelo(0, 2, "0:1", CoreReloKind.FIELD_BYTE_OFFSET)
    assert relocate_one(INSN.pack(LDX_DW, 0x12, 8, 0), relo, local, target) == POISON


def test_missing_enumerator_poisons_both_ld_imm64_slots() -> None:
    local = btf_of(BtfEnum("e", 4, (BtfEnumValue("A", 1), BtfEnumValue("GONE", 2))))
    target = target_of(BtfEnum("e", 4, (BtfEnumValue("A", 10),)))
    gone = CoreRelo(0, 1, "1", CoreReloKind.ENUMVAL_VALUE)
    ld = INSN.pack(LD_IMM64, 1, 0, 2) + INSN.pack(0, 0, 0, 0)
    assert relocate_one(ld, gone, local, target) == POISON + POISON
    present = CoreRelo(0, 1, "0", CoreReloKind.ENUMVAL_VALUE)
    ld = INSN.pack(LD_IMM64, 1, 0, 1) + INSN.pack(0, 0, 0, 0)
    assert relocate_one(ld, present, local, target) == INSN.pack(LD_IMM64, 1, 0, 10) + bytes(8)


def test_flexible_array_elements_past_the_declared_length() -> None:
    # [1] int, [2] int[0], [3] struct s { int n; int data[]; }
    local = btf_of(
        INT, BtfArray(1, 1, 0), BtfStruct("s", 4, (field("n", 1, 0), field("data", 2, 4)))
    )
    target = target_of(
        INT, BtfArray(1, 1, 0), BtfStruct("s", 16, (field("n", 1, 0), field("data", 2, 16)))
    )
    relo = CoreRelo(0, 3, "0:1:5", CoreReloKind.FIELD_BYTE_OFFSET)
    out = relocate_one(INSN.pack(MOV64_IMM, 1, 0, 4 + 5 * 4), relo, local, target)
    assert out == INSN.pack(MOV64_IMM, 1, 0, 16 + 5 * 4)


def test_anonymous_local_type_is_refused_with_its_program_named() -> None:
    local = btf_of(INT, BtfStruct("", 4, (field("a", 1, 0),)))
    relo = CoreRelo(0, 2, "0:0", CoreReloKind.FIELD_BYTE_OFFSET)
    with pytest.raises(CoreError, match=r"prog 'p'.*anonymous"):
        relocate_one(INSN.pack(MOV64_IMM, 1, 0, 0), relo, local, target_of(INT))


def test_offset_outside_the_program_is_refused() -> None:
    relo = CoreRelo(16, 2, "0:1", CoreReloKind.FIELD_BYTE_OFFSET)
    with pytest.raises(CoreError, match="outside the program"):
        relocate_one(INSN.pack(MOV64_IMM, 1, 0, 4), relo, LOCAL_FOO, target_of(INT))


def test_module_btf_is_searched_only_without_vmlinux_candidates(tmp_path: Path) -> None:
    vmlinux = btf_of(INT, BtfStruct("foo", 8, (field("b", 1, 4),)))
    module = BtfBuilder(base=vmlinux)
    module.add(BtfStruct("modtype", 12, (field("b", 1, 8),)))
    (tmp_path / "vmlinux").write_bytes(BtfBuilder.from_btf(vmlinux).encode())
    (tmp_path / "mymod").write_bytes(module.encode())
    target = TargetBtf.running_kernel(btf_dir=tmp_path, cache_dir=None)
    local_mod = btf_of(INT, BtfStruct("modtype", 8, (field("a", 1, 0), field("b", 1, 4))))
    [cand] = target.find_candidates(local_mod, 2)
    assert (cand.source, cand.type_id) == ("mymod", 3)
    out = relocate_one(INSN.pack(MOV64_IMM, 1, 0, 4), OFFSET_OF_B, local_mod, target)
    assert out == INSN.pack(MOV64_IMM, 1, 0, 8)
    [cand] = target.find_candidates(LOCAL_FOO, 2)
    assert cand.source == "vmlinux"
    assert TargetBtf.from_path(tmp_path / "vmlinux").find_candidates(local_mod, 2) == []
