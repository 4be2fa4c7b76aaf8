"""``pybpf gen min_core_btf`` against ``bpftool gen min_core_btf``.

The minimal BTF must (1) relocate the objects exactly as the full vmlinux BTF does, for us
and for libbpf (``btf_custom_path``), and (2) be no larger than bpftool's for the same
inputs.  It is in fact the same BTF: bpftool's dump of both files is identical.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from conftest import bpftool, compile_bpf
from pybpf.btf.btf import Btf
from pybpf.btf.ext import CoreRelo, CoreReloKind
from pybpf.cli import main as cli_main
from pybpf.core import CoreRelocator, TargetBtf
from pybpf.core.min_btf import write_min_core_btf
from pybpf.obj import ObjectSpec

VMLINUX = "/sys/kernel/btf/vmlinux"
pytestmark = pytest.mark.skipif(not Path(VMLINUX).exists(), reason="needs vmlinux BTF")


def relocated(spec: ObjectSpec, target: TargetBtf) -> dict[str, bytes]:
    """Each program relocated against ``target``, with kernel type ids (which differ between
    a minimal BTF and vmlinux by construction) replaced by the name and kind they denote."""
    assert spec.btf is not None
    relocator = CoreRelocator(spec.btf, target)
    out = {}
    for prog in spec.programs:
        insns = bytearray(prog.insns)
        relocator.relocate(insns, prog.core_relos, prog_name=prog.name)
        out[prog.name] = bytes(without_target_ids(insns, prog.core_relos, target.main))
    return out


def without_target_ids(insns: bytearray, relos: tuple[CoreRelo, ...], btf: Btf) -> bytearray:
    for relo in relos:
        if relo.kind == CoreReloKind.TYPE_ID_TARGET:
            (type_id,) = struct.unpack_from("<i", insns, relo.insn_off + 4)
            denoted = f"{btf.kind_of(type_id).name} {btf.name_of(type_id)}" if type_id else ""
            insns[relo.insn_off + 4 : relo.insn_off + 8] = zlib.crc32(denoted.encode()).to_bytes(
                4, "little"
            )
    return insns


@pytest.fixture(scope="module")
def objects() -> list[Path]:
    return [compile_bpf("core_kernel"), compile_bpf("btfkinds_core")]


@pytest.fixture(scope="module")
def outputs(objects: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("minbtf")
    ours, theirs = out / "ours.btf", out / "theirs.btf"
    write_min_core_btf(VMLINUX, str(ours), [str(objects[0])])
    bpftool("gen", "min_core_btf", VMLINUX, theirs, objects[0])
    return ours, theirs


def test_no_larger_than_bpftools(outputs: tuple[Path, Path]) -> None:
    ours, theirs = outputs
    assert ours.stat().st_size <= theirs.stat().st_size


def test_same_types_as_bpftool(outputs: tuple[Path, Path]) -> None:
    ours, theirs = outputs
    assert bpftool("btf", "dump", "file", ours) == bpftool("btf", "dump", "file", theirs)
    Btf.from_path(ours).validate()


def test_relocates_like_the_full_kernel_btf(
    outputs: tuple[Path, Path], objects: list[Path]
) -> None:
    spec = ObjectSpec.from_path(objects[0])
    full = relocated(spec, TargetBtf.running_kernel())
    assert relocated(spec, TargetBtf.from_path(outputs[0])) == full


@pytest.mark.skipif(os.geteuid() != 0, reason="libbpf loads need root")
def test_libbpf_accepts_it_as_custom_target_btf(
    outputs: tuple[Path, Path], objects: list[Path]
) -> None:
    from test_core_reloc import libbpf_insns

    spec = ObjectSpec.from_path(objects[0])
    full = libbpf_insns(objects[0])
    custom = libbpf_insns(objects[0], outputs[0])
    small = Btf.from_path(outputs[0])
    for prog in spec.programs:
        with_min = bytearray(b"".join(custom[prog.name][0][: prog.size // 8]))
        with_full = bytearray(b"".join(full[prog.name][0][: prog.size // 8]))
        assert without_target_ids(with_min, prog.core_relos, small) == without_target_ids(
            with_full, prog.core_relos, Btf.vmlinux()
        )


def test_several_objects_and_the_command_line(objects: list[Path], tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.btf", tmp_path / "theirs.btf"
    assert cli_main(["gen", "min_core_btf", VMLINUX, str(ours), *map(str, objects)]) == 0
    bpftool("gen", "min_core_btf", VMLINUX, theirs, *objects)
    assert ours.stat().st_size <= theirs.stat().st_size
    for obj in objects:
        spec = ObjectSpec.from_path(obj)
        assert relocated(spec, TargetBtf.from_path(ours)) == relocated(
            spec, TargetBtf.running_kernel()
        )
