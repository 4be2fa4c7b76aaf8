"""The object model against libbpf: what ``bpf_object__open_file()`` reports, we report.

A small C driver (``fixtures/obj_driver.c``, linked against the system libbpf 1.1) opens each
fixture object and prints every map's definition and initial image and every program's name,
section, type and expected attach type.  The same lines are built from our
:class:`ObjectSpec`; the two must be identical.  No kernel is involved: open only parses.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, FIXTURES, compile_bpf
from pybpf.errors import ObjectError
from pybpf.obj import MapSpec, ObjectSpec

pytestmark = pytest.mark.oracle

FIXTURE_OBJECTS = ["obj_maps", "obj_data", "obj_progs", "btfkinds"]


@pytest.fixture(scope="module")
def driver() -> Path:
    gcc = shutil.which("gcc")
    if gcc is None or not Path("/usr/include/bpf/libbpf.h").exists():
        pytest.skip("needs gcc and libbpf-dev")
    BUILD.mkdir(exist_ok=True)
    src = FIXTURES / "obj_driver.c"
    exe = BUILD / "obj_driver"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        subprocess.run([gcc, "-O2", "-Wall", str(src), "-o", str(exe), "-lbpf"], check=True)
    return exe


def libbpf_view(driver: Path, obj: Path, name: str | None = None) -> list[str]:
    args = [str(driver), str(obj)] + ([name] if name else [])
    result = subprocess.run(args, capture_output=True, text=True)
    return result.stdout.splitlines()


def _def_line(what: str, m: MapSpec) -> str:
    return (
        f"{what} {m.name} type={int(m.type)} key={m.key_size} value={m.value_size} "
        f"max={m.max_entries} flags={int(m.flags):#x} numa={m.numa_node} extra={m.map_extra} "
        f"internal={int(m.is_internal)} btf_key={m.key_type_id} btf_value={m.value_type_id} "
        f"pinned={int(m.pinning == 1)}"
    ).replace("flags=0x0 ", "flags=0 ")


def our_view(spec: ObjectSpec) -> list[str]:
    lines = [f"object {spec.name}"]
    for m in spec.maps:
        image = m.initial_value.hex() if m.is_internal else ""
        lines.append(_def_line("map", m) + f" image={image}")
        if m.inner is not None:
            lines.append(_def_line("inner", m.inner))
    for p in spec.programs:
        lines.append(
            f"prog {p.name} sec={p.section_name} type={int(p.prog_type)} "
            f"attach={p.expected_attach_type_value} autoload={int(p.autoload)} "
            f"insns={p.insn_count}"
        )
    return lines


@pytest.mark.parametrize("fixture", FIXTURE_OBJECTS)
def test_open_matches_libbpf(driver: Path, fixture: str) -> None:
    obj = compile_bpf(fixture)
    expected = libbpf_view(driver, obj)
    assert len(expected) > 2, expected
    assert our_view(ObjectSpec.from_path(obj)) == expected


@pytest.mark.parametrize("name", ["a_very_long_object_name", "x", "my_object_name"])
def test_internal_map_names_follow_object_name(driver: Path, name: str) -> None:
    """libbpf's internal_map_name(): object-name prefix, 7-char suffix, 15-char limit."""
    obj = compile_bpf("obj_data")
    assert our_view(ObjectSpec.from_path(obj, name=name)) == libbpf_view(driver, obj, name)


def test_object_name_from_long_file_name(driver: Path, tmp_path: Path) -> None:
    obj = tmp_path / "an_object_with_a_long_name.v2.bpf.o"
    obj.write_bytes(compile_bpf("obj_progs").read_bytes())
    assert our_view(ObjectSpec.from_path(obj)) == libbpf_view(driver, obj)


def test_legacy_maps_section_is_refused_like_libbpf(driver: Path) -> None:
    obj = compile_bpf("obj_legacy")
    assert libbpf_view(driver, obj)[0].startswith("error")
    with pytest.raises(ObjectError, match="legacy map definitions") as info:
        ObjectSpec.from_path(obj)
    assert info.value.section == "maps" and info.value.file == str(obj)


def test_map_in_map_and_prog_array_slots_follow_the_source() -> None:
    """``.values = {...}`` in obj_maps.bpf.c: slot index -> map or program name."""
    spec = ObjectSpec.from_path(compile_bpf("obj_maps"))
    assert spec.map("om_outer_array").init_slots == ((0, "om_inner_a"), (3, "om_inner_b"))
    assert spec.map("om_jmp").init_slots == ((1, "om_tail_a"), (2, "om_tail_b"))
    assert spec.map("om_outer_hash").init_slots == ()
    inner = spec.map("om_outer_hash").inner
    assert inner is not None and inner.name == "om_outer_hash.inner"
