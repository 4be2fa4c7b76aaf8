"""Malformed CO-RE records never crash relocation: they relocate or raise :class:`CoreError`.

Records are mutated at random (type ids, access strings, kinds, instruction offsets) on a
real object against the real kernel BTF; any exception other than ``CoreError`` is a bug.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import compile_bpf
from pybpf.btf.ext import CoreRelo, CoreReloKind
from pybpf.core import CoreError, CoreRelocator, TargetBtf
from pybpf.obj import ObjectSpec

pytestmark = pytest.mark.skipif(
    not Path("/sys/kernel/btf/vmlinux").exists(), reason="needs vmlinux BTF"
)


def mutate(rng: random.Random, relo: CoreRelo, max_type: int, size: int) -> CoreRelo:
    choice = rng.randrange(5)
    if choice == 0:
        return replace(relo, type_id=rng.randrange(0, max_type + 3))
    if choice == 1:
        parts = [str(rng.choice([0, 1, 2, 3, 7, 40, 1000])) for _ in range(rng.randint(1, 5))]
        return replace(relo, access_str=":".join(parts))
    if choice == 2:
        return replace(relo, kind=rng.choice(list(CoreReloKind)))
    if choice == 3:
        return replace(relo, insn_off=rng.randrange(0, size + 16, 8))
    return replace(relo, type_id=rng.randrange(1, max_type), kind=rng.choice(list(CoreReloKind)))


def test_random_records_relocate_or_raise_core_error() -> None:
    spec = ObjectSpec.from_path(compile_bpf("core_kernel"))
    assert spec.btf is not None
    target = TargetBtf.running_kernel()
    rng = random.Random(1234)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(1500):
        prog = rng.choice([p for p in spec.programs if p.core_relos])
        relo = mutate(rng, rng.choice(prog.core_relos), spec.btf.end_id - 1, prog.size)
        insns = bytearray(prog.insns)
        try:
            CoreRelocator(spec.btf, target).relocate(insns, [relo], prog_name=prog.name)
            outcomes["ok"] += 1
        except CoreError as exc:
            assert prog.name in str(exc)
            outcomes["error"] += 1
        assert len(insns) == prog.size
    assert outcomes["ok"] and outcomes["error"]
