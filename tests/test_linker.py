"""The static linker: linked objects load and behave under system libbpf in every input order.

Oracle: the values the programs compute, derived by hand from the fixture sources (see
EXPECTED), read back through a skeleton that *bpftool* generates from our linked object and
that a C driver runs on *system libbpf*.  The skeleton lays out ``.data``/``.bss``/``.rodata``
from the object's BTF DATASECs, so a stale DATASEC offset (bpftool 7.1's weak-then-strong
fault) shows up as a wrong value.  Where bpftool 7.1 links correctly, its output must give
the same lines and at least as many BTF types as ours.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from conftest import BPFTOOL, FIXTURES, bpftool, compile_bpf, requires_root
from pybpf.btf.btf import Btf
from pybpf.btf.types import BtfDatasec, BtfKind
from pybpf.elf import ElfFile
from pybpf.linker import link_objects

FIXTURE_SET = ("link_lib1", "link_lib2", "link_app")

# Values computed from the sources.  lib1_prog runs first, then app_main.
#   lib1_prog: weak_counter 7 -> 8 (lib2's strong copy), lib1's static counter 1 -> 2,
#              lib1_accum.sum += lib_pair.b (lib2's {3, 4}) -> 4, calls -> 1.
#   lib1_entry(5) = lib2_scale(5) + helper_lib1(5) + lib_policy(5) + lib2_value
#                 = (helper_lib2(5) + 100) * 10 + (5 + 2) + 5 * 3 + 1000
#                 = (5 - 20 + 100) * 10 + 7 + 15 + 1000 = 1872
EXPECTED = {
    "results[0]": 1872,  # R_ENTRY
    "results[1]": 8,  # R_WEAK_COUNTER: strong 7, +1 by lib1_prog
    "results[2]": 5,  # R_WEAK_ONLY: weak default kept
    "results[3]": 7,  # R_PAIR: 3 + 4 from the strong copy
    "results[4]": 12,  # R_POLICY: lib_policy(4), strong x * 3
    "results[5]": 11,  # R_KNOB: .rodata initial value
    "results[6]": 1,  # R_KVER: LINUX_KERNEL_VERSION resolved by libbpf
    "results[7]": 1872,  # R_MAP: shared_map[1] written by lib1_entry
    "results[8]": 10,  # R_LOOP: 1 + 2 + 3 + 4 through a bpf_loop callback
    "results[9]": 39,  # R_CUSTOM: custom_a 9 + custom_b 30
    "results[10]": 0,  # R_MISSING: weak kconfig extern, absent
    "results[11]": 41,  # R_CORE: task_struct.pid exists (1) + 10 * its size (4)
    "weak_counter": 8,
    "weak_only": 5,
    "lib_pair.a": 3,
    "lib_pair.b": 4,
    "lib2_value": 1000,
    "lib1_accum.sum": 4,
    "lib1_accum.calls": 1,
    "app_runs": 1,  # helper_app(1) = 1 * 300, / 300
    "custom_a": 9,
    "custom_b": 30,
    "lib_rodata_knob": 11,
    "shared_map[1]": 1872,
}

DRIVER = FIXTURES / "link_skel_driver.c"


def fixture_objects() -> dict[str, Path]:
    return {name: compile_bpf(name) for name in FIXTURE_SET}


def run_skeleton_driver(obj: Path, workdir: Path, *args: str) -> dict[str, int]:
    """Generate a skeleton of ``obj`` with bpftool, build the C driver on libbpf, run it."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "linked.skel.h").write_text(bpftool("gen", "skeleton", obj, "name", "linked"))
    exe = workdir / "driver"
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-Wall",
            f"-I{workdir}",
            f"-I{FIXTURES}",
            str(DRIVER),
            "-o",
            str(exe),
            "-lbpf",
        ],
        check=True,
    )
    result = subprocess.run([str(exe), *args], capture_output=True, text=True)
    assert result.returncode == 0, f"driver failed ({result.returncode}): {result.stderr}"
    values: dict[str, int] = {}
    for line in result.stdout.splitlines():
        key, value = line.split()
        values[key] = int(value)
    return values


def link_to(path: Path, inputs: list[Path]) -> Path:
    path.write_bytes(link_objects(inputs))
    return path


def btf_type_count(obj: Path) -> int:
    return len(Btf.from_bytes(ElfFile.open(obj).section(".BTF").data))  # type: ignore[union-attr]


ORDERS = list(itertools.permutations(FIXTURE_SET))


@pytest.mark.kernel
@requires_root
@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o).replace("link_", "") for o in ORDERS])
def test_every_order_loads_and_computes_the_source_values(
    order: tuple[str, ...], tmp_path: Path
) -> None:
    objs = fixture_objects()
    linked = link_to(tmp_path / "linked.o", [objs[name] for name in order])
    assert run_skeleton_driver(linked, tmp_path) == EXPECTED
    assert run_with_pybpf(linked) == EXPECTED


def run_with_pybpf(obj: Path) -> dict[str, int]:
    """What the C driver does, with pybpf's loader and Python skeleton instead of libbpf."""
    from pybpf import Skeleton

    with Skeleton.open(obj) as skel:
        skel.load()
        for prog in (skel.progs.lib1_prog, skel.progs.app_main):
            assert prog.test_run().retval == 0
        values = {f"results[{i}]": int(v) for i, v in enumerate(skel.bss.results)}
        data, bss = skel.data, skel.bss
        values |= {
            "weak_counter": data.weak_counter,
            "weak_only": data.weak_only,
            "lib_pair.a": data.lib_pair.a,
            "lib_pair.b": data.lib_pair.b,
            "lib2_value": data.lib2_value,
            "lib1_accum.sum": bss.lib1_accum.sum,
            "lib1_accum.calls": bss.lib1_accum.calls,
            "app_runs": bss.app_runs,
            "custom_a": skel.data_custom.custom_a,
            "custom_b": skel.data_custom.custom_b,
            "lib_rodata_knob": skel.rodata.lib_rodata_knob,
        }
        values["shared_map[1]"] = skel.maps.shared_map[1]  # typed by the map's BTF
        return values


@pytest.mark.kernel
@requires_root
def test_rodata_written_before_load_reaches_the_program(tmp_path: Path) -> None:
    objs = fixture_objects()
    linked = link_to(tmp_path / "linked.o", [objs[n] for n in FIXTURE_SET])
    values = run_skeleton_driver(linked, tmp_path, "42")
    assert values["results[5]"] == 42
    assert values["lib_rodata_knob"] == 42


@pytest.mark.kernel
@requires_root
def test_same_values_as_bpftool_where_bpftool_is_right(tmp_path: Path) -> None:
    # Strong definitions first: bpftool 7.1 links this order correctly.
    objs = fixture_objects()
    inputs = [objs["link_lib2"], objs["link_lib1"], objs["link_app"]]
    ours = link_to(tmp_path / "ours.o", inputs)
    theirs = tmp_path / "theirs.o"
    bpftool("gen", "object", theirs, *inputs)
    assert run_skeleton_driver(theirs, tmp_path / "b") == EXPECTED
    assert run_skeleton_driver(ours, tmp_path / "a") == EXPECTED


def test_weak_then_strong_datasec_offsets_follow_the_strong_copy(tmp_path: Path) -> None:
    # lib1 (weak weak_counter, lib_pair) before lib2 (strong): bpftool 7.1 leaves the VARs
    # at the weak copies' offsets.  Ours must put them where the symbols are.
    objs = fixture_objects()
    linked = link_to(tmp_path / "linked.o", [objs[n] for n in FIXTURE_SET])
    elf = ElfFile.open(linked)
    btf = Btf.from_bytes(elf.section(".BTF").data)  # type: ignore[union-attr]
    checked = 0
    for type_id in btf.type_ids():
        if btf.kind_of(type_id) != BtfKind.DATASEC:
            continue
        sec = btf[type_id]
        assert isinstance(sec, BtfDatasec)
        offsets = [v.offset for v in sec.vars]
        assert offsets == sorted(offsets), f"{sec.name}: entries not sorted"
        for v in sec.vars:
            name = btf.name_of(v.type)
            found = [s for s in elf.symbols if s.name == name and s.is_global]
            if not found or found[0].is_extern:
                continue  # a static (checked by the driver) or a .kconfig extern
            sym = found[0]
            assert elf.sections[sym.shndx].name == sec.name
            assert v.offset == sym.value, f"{sec.name}: {btf.name_of(v.type)}"
            checked += 1
    assert checked >= 10
    data = elf.section(".data")
    assert data is not None
    strong = elf.symbol_named("weak_counter")
    assert strong is not None
    assert (
        int.from_bytes(data.data[strong.value : strong.value + 4], "little") == 7
    )  # the strong one


def test_btf_has_no_more_types_than_bpftool(tmp_path: Path) -> None:
    objs = fixture_objects()
    compared = 0
    for order in ORDERS:
        inputs = [objs[n] for n in order]
        theirs = tmp_path / "theirs.o"
        if BPFTOOL is None:
            pytest.skip("bpftool is not installed")
        result = subprocess.run(
            [BPFTOOL, "gen", "object", str(theirs), *map(str, inputs)], capture_output=True
        )
        if result.returncode != 0:
            continue  # bpftool 7.1 refuses some orders (extern before weak before strong)
        ours = link_to(tmp_path / "ours.o", inputs)
        assert btf_type_count(ours) <= btf_type_count(theirs), order
        compared += 1
    assert compared >= 2


def test_linking_is_deterministic() -> None:
    objs = fixture_objects()
    inputs = [objs[n] for n in FIXTURE_SET]
    assert link_objects(inputs) == link_objects(inputs)


@pytest.mark.kernel
@requires_root
def test_relinking_a_linked_object_changes_no_behaviour(tmp_path: Path) -> None:
    objs = fixture_objects()
    once = link_to(tmp_path / "once.o", [objs[n] for n in FIXTURE_SET])
    twice = link_to(tmp_path / "twice.o", [once])
    assert run_skeleton_driver(twice, tmp_path / "t") == EXPECTED
    # Libraries linked first, then linked with the app: the subskeleton workflow.
    lib = link_to(tmp_path / "lib.o", [objs["link_lib1"], objs["link_lib2"]])
    app = link_to(tmp_path / "app.o", [objs["link_app"], lib])
    assert run_skeleton_driver(app, tmp_path / "a") == EXPECTED
    assert btf_type_count(twice) == btf_type_count(once)


def test_extern_map_before_its_definition_keeps_one_map_at_the_definition(
    tmp_path: Path,
) -> None:
    # app and lib1 declare shared_map extern; lib2 defines it last.
    objs = fixture_objects()
    linked = link_to(
        tmp_path / "linked.o", [objs["link_app"], objs["link_lib1"], objs["link_lib2"]]
    )
    elf = ElfFile.open(linked)
    sym = elf.symbol_named("shared_map")
    assert sym is not None and not sym.is_extern
    assert elf.sections[sym.shndx].name == ".maps"
    btf = Btf.from_bytes(elf.section(".BTF").data)  # type: ignore[union-attr]
    maps = btf[btf.find_one(".maps", BtfKind.DATASEC)]
    assert isinstance(maps, BtfDatasec)
    assert [(btf.name_of(v.type), v.offset) for v in maps.vars] == [("shared_map", sym.value)]


def test_cli_gen_object_writes_the_linked_object(tmp_path: Path) -> None:
    objs = fixture_objects()
    out = tmp_path / "cli.o"
    from pybpf.linker import link_files

    link_files(str(out), [str(objs[n]) for n in FIXTURE_SET], [])
    assert out.read_bytes() == link_objects([objs[n] for n in FIXTURE_SET])


def test_static_symbols_stay_apart() -> None:
    objs = fixture_objects()
    elf = ElfFile.from_bytes(link_objects([objs[n] for n in FIXTURE_SET]))
    helpers = [s for s in elf.symbols if s.name == "helper"]
    assert len(helpers) == 3
    assert len({s.value for s in helpers}) == 3
    assert all(not s.is_global for s in helpers)


def _symbol_set(elf: ElfFile) -> set[tuple[object, ...]]:
    def section(shndx: int) -> object:
        return elf.sections[shndx].name if 0 < shndx < 0xFF00 else shndx

    return {
        (s.name, s.value, s.size, s.binding, s.type, s.visibility, section(s.shndx))
        for s in elf.symbols[1:]
    }


def _relocation_set(elf: ElfFile) -> set[tuple[object, ...]]:
    out: set[tuple[object, ...]] = set()
    for rel in elf.relocation_sections:
        for r in rel.relocations:
            sym = elf.symbols[r.symbol]
            name = sym.name if sym.type != 3 else f"section {elf.sections[sym.shndx].name}"
            out.add((elf.sections[rel.target].name, r.offset, r.type, name))
    return out


def test_same_layout_symbols_and_relocations_as_bpftool(tmp_path: Path) -> None:
    # In the order bpftool 7.1 links correctly, libbpf's linker is the oracle for the whole
    # ELF side: same section bytes, same symbols at the same offsets, same relocations.
    objs = fixture_objects()
    inputs = [objs["link_lib2"], objs["link_lib1"], objs["link_app"]]
    theirs_path = tmp_path / "theirs.o"
    bpftool("gen", "object", theirs_path, *inputs)
    ours = ElfFile.from_bytes(link_objects(inputs))
    theirs = ElfFile.open(theirs_path)
    rebuilt = (".strtab", ".symtab", ".BTF", ".BTF.ext")
    content = {
        s.name: (s.type, int(s.flags), s.size, s.addralign, s.data)
        for s in theirs.sections[1:]
        if s.name not in rebuilt and s.type != 9
    }
    assert {
        s.name: (s.type, int(s.flags), s.size, s.addralign, s.data)
        for s in ours.sections[1:]
        if s.name not in rebuilt and s.type != 9
    } == content
    assert _symbol_set(ours) == _symbol_set(theirs)
    assert _relocation_set(ours) == _relocation_set(theirs)


def _ext_records(elf: ElfFile) -> tuple[set[tuple[object, ...]], ...]:
    from pybpf.btf.ext import BtfExt

    btf = Btf.from_bytes(elf.section(".BTF").data)  # type: ignore[union-attr]
    ext = BtfExt.from_bytes(elf.section(".BTF.ext").data, btf)  # type: ignore[union-attr]
    funcs: set[tuple[object, ...]] = {
        (sec, r.insn_off, btf.name_of(r.type_id))
        for sec, records in ext.func_info.items()
        for r in records
    }
    lines: set[tuple[object, ...]] = {
        (sec, r.insn_off, r.file_name, r.line, r.line_num, r.line_col)
        for sec, records in ext.line_info.items()
        for r in records
    }
    relos: set[tuple[object, ...]] = {
        (sec, r.insn_off, btf.name_of(r.type_id), r.access_str, r.kind)
        for sec, records in ext.core_relos.items()
        for r in records
    }
    return funcs, lines, relos


def test_same_btf_ext_records_as_bpftool(tmp_path: Path) -> None:
    objs = fixture_objects()
    inputs = [objs["link_lib2"], objs["link_lib1"], objs["link_app"]]
    theirs = tmp_path / "theirs.o"
    bpftool("gen", "object", theirs, *inputs)
    ours = _ext_records(ElfFile.from_bytes(link_objects(inputs)))
    assert ours == _ext_records(ElfFile.open(theirs))
    assert all(ours)  # func_info, line_info and CO-RE records all present
