"""The live skeleton/subskeleton runtime on opened (not loaded) objects: no kernel needed.

The objects are the skeleton test library (``skel_lib1/2.bpf.c``) linked into two applications
whose own globals move the library's variables to other offsets.  Values read here are the
initial values the fixtures' C source gives; offsets are never taken from the library.
"""

from __future__ import annotations

import ctypes
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import BPFTOOL, compile_bpf
from pybpf.object import BpfObject
from pybpf.skel.description import describe
from pybpf.skel.runtime import DestroyedError, SkeletonError, Subskeleton, bind
from pybpf.skel.values import VariableError

LIB_VARIABLES = {
    ".data": ["lib_shared", "lib_tag", "lib_counter", "lib_hist", "lib_stats", "lib_weak"],
    ".rodata": ["lib_scale2", "lib_scale", "lib_cfg", "lib_target_tgid"],
    ".bss": ["lib_calls", "lib_kversion_seen", "lib_hz_seen", "lib_missing_seen",
             "lib_localversion_seen", "lib_result", "lib_hook", "lib_cb"],
    ".data.custom": ["lib_custom", "lib_custom_arr"],
    ".kconfig": ["CONFIG_HZ", "CONFIG_PYBPF_SURELY_MISSING", "LINUX_KERNEL_VERSION",
                 "CONFIG_LOCALVERSION"],
}  # fmt: skip
"""Every non-static global of the library, by section (``lib_static`` is not exposed)."""


def _link_bpftool(out: Path, inputs: list[Path]) -> None:
    if BPFTOOL is None:
        pytest.skip("bpftool is not installed")
    subprocess.run([BPFTOOL, "gen", "object", str(out), *map(str, inputs)], check=True)


def _link_pybpf(out: Path, inputs: list[Path]) -> None:
    from pybpf.linker import link_files

    link_files(str(out), [str(p) for p in inputs], [])


LINKERS: dict[str, Callable[[Path, list[Path]], None]] = {
    "bpftool": _link_bpftool,
    "pybpf": _link_pybpf,
}


def build_skel_objects(out_dir: Path, linker: str = "bpftool") -> dict[str, Path]:
    """The library (file 2 first: bpftool 7.1 needs an extern map's definition first) and the
    two applications (application first, so app2's strong ``lib_weak`` precedes the weak one).
    """
    objs = {n: compile_bpf(f"skel_{n}") for n in ("lib1", "lib2", "app1", "app2")}
    link = LINKERS[linker]
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "lib": out_dir / "skel_lib.o",
        "final1": out_dir / "skel_app1.o",
        "final2": out_dir / "skel_app2.o",
    }
    link(result["lib"], [objs["lib2"], objs["lib1"]])
    link(result["final1"], [objs["app1"], result["lib"]])
    link(result["final2"], [objs["app2"], result["lib"]])
    return result


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    objs = build_skel_objects(tmp_path_factory.mktemp("skel_rt"))
    objs["mismatch"] = compile_bpf("pyskel_mismatch")
    objs["globals"] = compile_bpf("skel_globals")
    return objs


@pytest.mark.parametrize("final", ["final1", "final2"])
def test_subskeleton_exposes_every_library_global_at_the_final_objects_offsets(
    objects: dict[str, Path], final: str
) -> None:
    obj = BpfObject.open(objects[final])
    lib = Subskeleton.open(obj, objects["lib"])
    exposed = {n for ident in lib.sections for n in lib.sections[ident].variables()}
    for section, names in LIB_VARIABLES.items():
        ident = section.lstrip(".").replace(".", "_")
        accessor = lib.sections[ident]
        assert sorted(accessor.variables()) == sorted(names)
        for name in names:
            target = next(v for v in obj.spec.variables if v.name == name)
            assert accessor.variables()[name].offset == target.offset
    assert "lib_static" not in exposed
    assert sorted(exposed) == sorted(n for names in LIB_VARIABLES.values() for n in names)
    assert sorted(lib.maps) == ["bss", "data", "data_custom", "kconfig", "lib_map2", "rodata"]
    assert list(lib.progs) == ["lib_on_getpid"]
    assert lib.maps.lib_map2 is obj.map("lib_map2")
    assert lib.progs.lib_on_getpid is obj.program("lib_on_getpid")


def test_the_two_applications_place_the_library_differently(objects: dict[str, Path]) -> None:
    offsets = {}
    for final in ("final1", "final2"):
        lib = Subskeleton.open(BpfObject.open(objects[final]), objects["lib"])
        offsets[final] = {n: c.offset for n, c in lib.data.variables().items()}
    assert offsets["final1"] != offsets["final2"]


@pytest.mark.parametrize("final", ["final1", "final2"])
def test_values_before_load_are_the_initial_image(objects: dict[str, Path], final: str) -> None:
    obj = BpfObject.open(objects[final])
    lib = Subskeleton.open(obj, objects["lib"])
    assert lib.data.lib_counter == 100
    assert lib.data.lib_shared == 42
    assert lib.data.lib_tag == b"lib2"
    assert list(lib.data.lib_hist) == [1, 2, 3, 4]
    stats = lib.data.lib_stats
    assert (stats.hits, stats.flags, stats.sum) == (5, 1, 50)
    assert lib.data.lib_weak == (99 if final == "final2" else 11)
    assert lib.rodata.lib_scale == 1
    assert (lib.rodata.lib_cfg.mode, lib.rodata.lib_cfg.base, lib.rodata.lib_cfg.step) == (
        b"a", 1000, 1,
    )  # fmt: skip
    assert lib.data_custom.lib_custom == 7
    assert list(lib.data_custom.lib_custom_arr) == [70, 71, 72]
    assert lib.bss.lib_hook == 0 and lib.bss.lib_cb == 0
    assert lib.bss.lib_localversion_seen == b""
    assert lib.kconfig.CONFIG_HZ == 0  # filled in only at load


def test_struct_and_array_views_have_the_btf_size_and_alias_the_image(
    objects: dict[str, Path],
) -> None:
    obj = BpfObject.open(objects["final1"])
    lib = Subskeleton.open(obj, objects["lib"])
    btf = obj.spec.btf
    assert btf is not None
    for name in ("lib_cfg", "lib_stats", "lib_hist", "lib_custom_arr"):
        var = next(v for v in obj.spec.variables if v.name == name)
        section = lib.sections[var.section_name.lstrip(".").replace(".", "_")]
        assert ctypes.sizeof(getattr(section, name)) == btf.size_of(var.type_id) == var.size
    lib.rodata.lib_cfg.base = 2000
    lib.data.lib_hist[2] = 33
    image = obj.map(".rodata").memory
    offset = lib.rodata.variables()["lib_cfg"].offset
    assert int.from_bytes(image[offset + 8 : offset + 16], "little", signed=True) == 2000
    assert Subskeleton.open(obj, objects["lib"]).data.lib_hist[2] == 33


def test_writes_through_the_subskeleton_are_seen_by_the_applications_skeleton(
    objects: dict[str, Path],
) -> None:
    from pybpf.skel.runtime import Skeleton

    skel = Skeleton.open(objects["final2"], "skel_app2")
    lib = Subskeleton.open(skel.obj, objects["lib"])
    lib.data.lib_counter = 200
    lib.data.lib_tag = b"libX"
    lib.data_custom.lib_custom = 17
    assert skel.data.lib_counter == 200
    assert skel.data.lib_tag == b"libX"
    assert skel.data_custom.lib_custom == 17
    assert skel.rodata_app2.app2_note == b"hi"
    assert sorted(skel.sections) == [
        "bss", "data", "data_custom", "kconfig", "rodata", "rodata_app2",
    ]  # fmt: skip


def test_scalar_char_array_and_view_writes_are_checked(objects: dict[str, Path]) -> None:
    lib = Subskeleton.open(BpfObject.open(objects["final1"]), objects["lib"])
    lib.data.lib_tag = b"12345678"  # exactly the array, no NUL: allowed as in C
    assert lib.data.lib_tag == b"12345678"
    lib.data.lib_tag = "ab"
    assert lib.data.lib_tag == b"ab"
    with pytest.raises(VariableError, match="9 bytes do not fit char\\[8\\]"):
        lib.data.lib_tag = b"123456789"
    with pytest.raises(VariableError, match="lib_counter"):
        lib.data.lib_counter = 1 << 40
    with pytest.raises(VariableError, match="expected int"):
        lib.data.lib_counter = "7"
    with pytest.raises(VariableError, match="expected 16 bytes"):
        lib.data.lib_stats = b"\0" * 8
    with pytest.raises(VariableError, match="no variable 'nope'"):
        lib.data.nope = 1


def test_kconfig_is_never_writable(objects: dict[str, Path]) -> None:
    lib = Subskeleton.open(BpfObject.open(objects["final1"]), objects["lib"])
    with pytest.raises(VariableError, match=r"\.kconfig.*CONFIG_HZ.*read-only"):
        lib.kconfig.CONFIG_HZ = 100


@pytest.mark.parametrize(
    "source", ["path", "bytes", "spec", "object"], ids=lambda s: f"library-as-{s}"
)
def test_the_library_can_be_given_in_every_form(objects: dict[str, Path], source: str) -> None:
    from pybpf.obj import ObjectSpec

    path = objects["lib"]
    library: object = {
        "path": path,
        "bytes": path.read_bytes(),
        "spec": ObjectSpec.from_path(path),
        "object": BpfObject.open(path),
    }[source]
    lib = Subskeleton.open(BpfObject.open(objects["final2"]), library)  # type: ignore[arg-type]
    assert lib.data.lib_weak == 99


def test_a_description_alone_binds_without_the_library_object(objects: dict[str, Path]) -> None:
    from pybpf.obj import ObjectSpec

    desc = describe(ObjectSpec.from_path(objects["lib"]))
    lib = Subskeleton.from_description(BpfObject.open(objects["final1"]), desc)
    assert lib.rodata.lib_cfg.base == 1000
    assert desc.name == "skel_lib"
    assert [v.name for s in desc.sections for v in s.variables if s.section == ".kconfig"] == (
        LIB_VARIABLES[".kconfig"]
    )


def test_binding_to_another_object_names_every_missing_or_mistyped_symbol(
    objects: dict[str, Path],
) -> None:
    obj = BpfObject.open(objects["mismatch"])
    with pytest.raises(SkeletonError) as info:
        Subskeleton.open(obj, objects["lib"])
    message = str(info.value)
    assert "map 'lib_map2' has another definition" in message
    for section in (".bss", ".data.custom", ".kconfig"):
        assert f"map '{section}' is missing" in message
    assert "program 'lib_on_getpid' is missing" in message
    assert "variable 'lib_counter' (.data) has type long long in the object, expected int" in (
        message
    )
    assert (
        "variable 'lib_cfg' (.rodata) has type struct lib_cfg in the object, expected "
        "struct lib_cfg (same name, another layout)" in message
    )
    expected_missing = [
        (section, name)
        for section, names in LIB_VARIABLES.items()
        for name in names
        if name not in ("lib_counter", "lib_cfg", "lib_shared")
    ]
    for section, name in expected_missing:
        assert f"variable '{name}' ({section}) is missing" in message
    assert "lib_shared" not in message  # present with the same type


def test_binding_to_an_object_without_the_library_lists_everything(
    objects: dict[str, Path],
) -> None:
    other = BpfObject.open(objects["globals"])
    shared = {v.name for v in other.spec.variables}
    assert shared & {"CONFIG_HZ", "LINUX_KERNEL_VERSION"}  # kconfig both use, same types
    with pytest.raises(SkeletonError) as info:
        Subskeleton.open(other, objects["lib"])
    message = str(info.value)
    for section, names in LIB_VARIABLES.items():
        for name in names:
            if name not in shared:
                assert f"variable '{name}' ({section}) is missing" in message
    assert "program 'lib_on_getpid' is missing" in message


def test_a_generated_class_of_the_wrong_size_is_refused(objects: dict[str, Path]) -> None:
    import dataclasses

    from pybpf.obj import ObjectSpec

    desc = describe(ObjectSpec.from_path(objects["lib"]))

    class Short(ctypes.Structure):
        _fields_ = [("mode", ctypes.c_char)]

    sections = tuple(
        dataclasses.replace(
            s,
            variables=tuple(
                dataclasses.replace(v, ctype=Short) if v.name == "lib_cfg" else v
                for v in s.variables
            ),
        )
        for s in desc.sections
    )
    with pytest.raises(SkeletonError, match=r"lib_cfg.*ctypes class has 1 bytes.*BTF says 24"):
        bind(BpfObject.open(objects["final1"]), dataclasses.replace(desc, sections=sections))


def test_destroying_a_subskeleton_leaves_the_object_alone(objects: dict[str, Path]) -> None:
    obj = BpfObject.open(objects["final1"])
    with Subskeleton.open(obj, objects["lib"]) as lib:
        lib.data.lib_counter = 5
    with pytest.raises(DestroyedError, match="subskeleton 'skel_lib' was destroyed"):
        lib.data  # noqa: B018
    assert Subskeleton.open(obj, objects["lib"]).data.lib_counter == 5
    assert len(lib.maps) == 0
