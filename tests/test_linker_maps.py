"""Map-in-map across files: ``R_BPF_64_ABS64`` relocations in ``.maps`` against extern maps.

link_mim_b's outer map lists link_mim_a's inner maps as its initial slots.  Oracle: system
libbpf opens and loads the linked object (C driver, no skeleton), fills the outer map's slots
with the inner maps (checked by map id) and the programs compute the values the sources say:
prog_b adds hidden_twice(slot + 1) + 1000 * (slot + 1) through each slot, then prog_a adds
hidden_twice(50) to inner_b.  Also checked against bpftool's output, in the order bpftool
7.1 links correctly.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import FIXTURES, bpftool, compile_bpf, requires_root
from pybpf.elf import ElfFile
from pybpf.elf.constants import SymbolVisibility
from pybpf.linker import link_objects

EXPECTED = {
    "inner_a": 2 + 1000,
    "outer[0]_is_inner_a": 1,
    "inner_b": 4 + 2000 + 100,
    "outer[1]_is_inner_b": 1,
}


def run_driver(obj: Path, workdir: Path) -> dict[str, int]:
    exe = workdir / "mim_driver"
    subprocess.run(
        ["gcc", "-O2", "-Wall", str(FIXTURES / "link_mim_driver.c"), "-o", str(exe), "-lbpf"],
        check=True,
    )
    result = subprocess.run([str(exe), str(obj)], capture_output=True, text=True)
    assert result.returncode == 0, f"driver failed ({result.returncode}): {result.stderr}"
    return {k: int(v) for k, v in (line.split() for line in result.stdout.splitlines())}


@pytest.mark.kernel
@requires_root
@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_outer_map_slots_resolve_in_either_order(order: tuple[str, str], tmp_path: Path) -> None:
    # "b a" puts the outer map's file first; libbpf 1.1 creates maps in .maps order and
    # fills slots at once, so the linker places the inner maps' .maps first.
    objs = [compile_bpf(f"link_mim_{x}") for x in order]
    linked = tmp_path / "mim.o"
    linked.write_bytes(link_objects(objs))
    assert run_driver(linked, tmp_path) == EXPECTED


@pytest.mark.kernel
@requires_root
def test_same_behaviour_as_bpftool(tmp_path: Path) -> None:
    objs = [compile_bpf("link_mim_a"), compile_bpf("link_mim_b")]
    theirs = tmp_path / "theirs.o"
    bpftool("gen", "object", theirs, *objs)
    assert run_driver(theirs, tmp_path) == EXPECTED


def test_hidden_visibility_is_contagious(tmp_path: Path) -> None:
    objs = [compile_bpf("link_mim_a"), compile_bpf("link_mim_b")]
    theirs = tmp_path / "theirs.o"
    bpftool("gen", "object", theirs, *objs)
    for elf in (ElfFile.from_bytes(link_objects(objs)), ElfFile.open(theirs)):
        sym = elf.symbol_named("hidden_twice")
        assert sym is not None and sym.visibility == SymbolVisibility.STV_HIDDEN


def test_maps_relocations_point_at_the_inner_maps() -> None:
    objs = [compile_bpf("link_mim_b"), compile_bpf("link_mim_a")]
    elf = ElfFile.from_bytes(link_objects(objs))
    maps = elf.section(".maps")
    assert maps is not None
    targets = sorted(elf.symbols[r.symbol].name for r in elf.relocations_for(maps.index))
    assert targets == ["inner_a", "inner_b"]
    outer = elf.symbol_named("outer")
    inner = elf.symbol_named("inner_a")
    assert outer is not None and inner is not None
    assert inner.value < outer.value  # inner maps are created first
