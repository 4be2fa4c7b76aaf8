"""C skeleton and subskeleton generation: the spec is bpftool 7.1's output, byte for byte.

Every fixture object (standalone, library, linked applications) is run through ``bpftool gen
skeleton|subskeleton`` and through pybpf, with and without ``name``; the headers must be
identical.  The few places where pybpf deliberately differs (it refuses headers that could
not compile, and trusts the symbol table over a stale DATASEC) are tested for what pybpf does
instead.  Compiling and running the headers is in ``test_codegen_c_build.py``.
"""

from __future__ import annotations

import difflib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import BPFTOOL, BUILD, FIXTURES, bpftool, compile_bpf
from pybpf.elf.reader import ElfFile
from pybpf.errors import BpfError, CodegenError, ElfError
from pybpf.obj.maps import internal_map_name, user_map_name
from pybpf.obj.object_spec import ObjectSpec
from pybpf.skel.codegen import (
    default_object_name,
    generate,
    generate_c_skeleton,
    generate_c_subskeleton,
)
from pybpf.skel.codegen.bpftool_view import opened_view
from pybpf.skel.codegen.c_skeleton import hex_literal

pytestmark = pytest.mark.oracle

LONG_NAME = "a_name_longer_than_the_sixty_three_characters_bpftool_keeps_around_x"
"""70 characters: bpftool keeps 63, and the object-name prefix of map names gets cut too."""


def link(out_name: str, *inputs: Path) -> Path:
    """Link with bpftool (the reference linker) into the build directory."""
    out = BUILD / out_name
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    bpftool("gen", "object", tmp, *inputs)
    tmp.replace(out)
    return out


def build_objects() -> dict[str, Path]:
    """Every object the codegen tests use, compiled and linked.

    The library is linked file 2 first: file 1 declares ``extern`` a map file 2 defines, and
    bpftool 7.1 cannot open the result of the other order (GUIDE section 3).  Applications come
    before the library so that application 2's strong ``lib_weak`` precedes the weak default.
    """
    objs = {
        name: compile_bpf(f"skel_{name}")
        for name in (
            "globals", "strings", "minimal", "maponly",
            "lib1", "lib2", "app1", "app2", "weak_a", "weak_b",
        )
    }  # fmt: skip
    objs["lib"] = link("skel_lib.o", objs["lib2"], objs["lib1"])
    objs["final1"] = link("skel_app1.o", objs["app1"], objs["lib"])
    objs["final2"] = link("skel_app2.o", objs["app2"], objs["lib"])
    objs["weak"] = link("skel_weak.o", objs["weak_a"], objs["weak_b"])
    return objs


@pytest.fixture(scope="session")
def objects() -> dict[str, Path]:
    return build_objects()


def reference(kind: str, path: Path, name: str | None) -> str:
    """bpftool's header; with no name, given ours (see test_default_name_strips_bpf_o)."""
    return bpftool("gen", kind, path, "name", name or default_object_name(path))


def assert_same(ours: str, ref: str) -> None:
    if ours != ref:
        diff = difflib.unified_diff(
            ref.splitlines(True), ours.splitlines(True), "bpftool", "pybpf", n=2
        )
        pytest.fail("headers differ:\n" + "".join(list(diff)[:60]))


@dataclass(frozen=True)
class Case:
    obj: str
    kind: str
    name: str | None = None


CASES = [
    *(Case("globals", kind, name) for kind in ("skeleton", "subskeleton")
      for name in (None, "gg", LONG_NAME, "abcdefghij")),
    *(Case(obj, kind) for obj in ("minimal", "maponly", "lib2", "lib", "final1", "final2")
      for kind in ("skeleton", "subskeleton")),
    Case("strings", "skeleton"),
    Case("lib", "subskeleton", "skel_lib"),
    Case("final1", "skeleton", "skel_app1"),
    Case("final2", "skeleton", "skel_app2"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.kind}-{c.obj}-{c.name}")
def test_header_identical_to_bpftool(objects: dict[str, Path], case: Case) -> None:
    path = objects[case.obj]
    ours = generate(case.kind, path, name=case.name)
    assert_same(ours, reference(case.kind, path, case.name))


OTHER_FIXTURES = sorted(
    p.name.removesuffix(".bpf.c")
    for p in FIXTURES.glob("*.bpf.c")
    if not p.name.startswith("skel_")
)


@pytest.mark.parametrize("fixture", OTHER_FIXTURES)
def test_every_other_fixture_matches_bpftool(fixture: str) -> None:
    """A sweep over the whole project's fixtures: wherever bpftool makes a header, ours is
    the same; where it refuses the object, so do we (but for bpftool 7.1's missing .bss.*)."""
    path = compile_bpf(fixture)
    assert BPFTOOL is not None
    for kind in ("skeleton", "subskeleton"):
        ref = subprocess.run(
            [BPFTOOL, "gen", kind, path, "name", default_object_name(path)],
            capture_output=True,
            text=True,
        )
        if ref.returncode == 0:
            assert_same(generate(kind, path), ref.stdout)
        elif "in section '.bss." in ref.stderr:
            # the libbpf inside bpftool 7.1 has no .bss.* maps; libbpf 1.1 (and we) do
            assert generate(kind, path)
        else:  # unresolved externs, legacy maps: what libbpf cannot open, we refuse too
            with pytest.raises(CodegenError):
                generate(kind, path)


STRUCT_OPS_SOURCE = """\
/* struct_ops maps come last in libbpf's map list, after .kconfig. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

int calls = 5;
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, int);
} plain SEC(".maps");

SEC("struct_ops/init")
void BPF_PROG(cc_init, struct sock *sk) { calls++; }

SEC(".struct_ops")
struct tcp_congestion_ops cc_one = { .init = (void *)cc_init, .name = "pybpf_cc1" };
SEC(".struct_ops")
struct tcp_congestion_ops cc_two = { .init = (void *)cc_init, .name = "pybpf_cc2" };

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.skipif(not Path("/sys/kernel/btf/vmlinux").exists(), reason="no vmlinux BTF")
def test_struct_ops_maps_match_bpftool(tmp_path: Path) -> None:
    (tmp_path / "vmlinux.h").write_text(
        bpftool("btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c")
    )
    source = tmp_path / "skel_structops.bpf.c"
    source.write_text(STRUCT_OPS_SOURCE)
    path = compile_bpf(str(source), f"-I{tmp_path}", out_name="skel_structops")
    for kind in ("skeleton", "subskeleton"):
        assert_same(generate(kind, path), reference(kind, path, None))
    assert "\t\tstruct bpf_map *cc_two;\n\t} maps;" in generate("skeleton", path)


def test_view_is_a_projection_of_the_object_model(objects: dict[str, Path]) -> None:
    """bpftool's view, projected from :class:`ObjectSpec`, names the same maps and programs.

    Except ``.bss.*`` sections: libbpf 1.1 maps them, the libbpf inside bpftool 7.1 (whose
    headers we reproduce) does not.
    """
    for key in ("globals", "strings", "lib", "final1", "final2"):
        spec = ObjectSpec.from_path(objects[key])
        view = opened_view(spec, spec.name)
        spec_maps = [m.name for m in spec.maps if not m.section_name.startswith(".bss.")]
        assert [m.name for m in view.maps] == spec_maps
        assert list(view.programs) == [p.name for p in spec.programs]
        assert generate_c_skeleton(spec, "x") == generate_c_skeleton(spec.elf, "x")


def test_generators_accept_an_elf_or_anything_holding_one(objects: dict[str, Path]) -> None:
    elf = ElfFile.open(objects["final1"])

    @dataclass
    class SpecLike:
        elf: ElfFile

    assert generate_c_skeleton(SpecLike(elf), "x") == generate_c_skeleton(elf, "x")
    assert generate_c_subskeleton(SpecLike(elf), "x") == generate_c_subskeleton(elf, "x")


def test_output_is_deterministic(objects: dict[str, Path]) -> None:
    path = objects["final2"]
    assert generate("skeleton", path) == generate("skeleton", path)
    assert generate("subskeleton", path) == generate("subskeleton", path)


def test_default_name_strips_bpf_o(objects: dict[str, Path]) -> None:
    """Deliberate difference: bpftool names x.bpf.o "x_bpf"; we name it "x".

    Everything else in the header is bpftool's, as if given that name explicitly.
    """
    header = generate("skeleton", objects["globals"])
    assert "struct skel_globals {" in header
    assert "#ifndef __SKEL_GLOBALS_SKEL_H__" in header
    theirs = bpftool("gen", "skeleton", objects["globals"])
    assert "struct skel_globals_bpf {" in theirs
    assert header == bpftool("gen", "skeleton", objects["globals"], "name", "skel_globals")


# ------------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("x.bpf.o", "x"),
        ("x.bpf", "x_bpf"),
        ("x.o", "x"),
        ("/some/dir/my-prog.o", "my_prog"),
        ("noext", "noext"),
        ("a.b.c", "a_b_c"),
        ("é.o", "__"),
        ("y" * 70 + ".o", "y" * 63),
        ("w" * 70 + ".bpf.o", "w" * 63),
        ("z" * 61 + ".o", "z" * 61),
    ],
)
def test_default_object_name(path: str, expected: str) -> None:
    assert default_object_name(path) == expected


@pytest.mark.parametrize(
    ("obj_name", "section", "expected"),
    [
        ("my_object_name", ".rodata", "my_objec.rodata"),
        ("my_object_name", ".bss", "my_objec.bss"),
        ("my_object_name", ".kconfig", "my_obje.kconfig"),
        ("my_object_name", ".rodata.abracadabra", ".rodata.abracad"),
        ("", ".data", ".data"),
        ("a-b", ".data", "a_b.data"),
    ],
)
def test_internal_map_name_follows_libbpf(obj_name: str, section: str, expected: str) -> None:
    assert internal_map_name(obj_name, section) == expected


def test_custom_sections_keep_their_full_name_for_user_space() -> None:
    assert user_map_name("obj", ".data.a_very_long_custom_name") == ".data.a_very_long_custom_name"
    assert user_map_name("my_object_name", ".data") == "my_objec.data"


def test_library_view_lists_maps_and_programs_in_libbpf_order(objects: dict[str, Path]) -> None:
    view = opened_view(ObjectSpec.from_path(objects["final1"]), "")
    assert [m.name for m in view.maps] == [
        "lib_map2", ".data", ".rodata", ".data.custom", ".bss", ".kconfig",
    ]  # fmt: skip
    # lib_compute lives in .text: a subprogram, not a program.
    assert view.programs == ("app1_on_getpid", "lib_on_getpid")


def test_hex_literal_breaks_lines_like_bpftool() -> None:
    text = hex_literal(bytes([0, 1, 0xFF]) * 40)
    lines = text.split("\\\n")
    assert all(len(line) <= 78 for line in lines)
    assert lines[0].startswith("\\0\\x01\\xff")
    assert "".join(lines).count("\\0") == 40


# ------------------------------------------------------------------------------ differences


def test_weak_then_strong_uses_the_symbol_offset(objects: dict[str, Path]) -> None:
    """bpftool 7.1's linker leaves the DATASEC VAR of an overridden __weak at the weak copy's
    offset; the BPF code uses the symbol's.  Our struct follows the symbol."""
    path = objects["weak"]
    elf = ElfFile.open(path)
    sym = elf.symbol_named("shared_knob")
    assert sym is not None and sym.value == 16
    ours = generate("skeleton", path)
    assert (
        "\t\tchar __pad0[4];\n\t\tint a_only;\n\t\tlong long b_first;\n\t\tint shared_knob;\n"
    ) in ours
    # The reference describes the stale slot at offset 0.
    assert "\tstruct skel_weak__data {\n\t\tint shared_knob;\n" in reference("skeleton", path, None)


def test_subskeleton_of_string_constants_section(objects: dict[str, Path]) -> None:
    """``.rodata.str1.1`` is a map without a DATASEC.  bpftool prints nothing at all for such a
    library; pybpf emits a full subskeleton where that map simply has no variables."""
    path = objects["strings"]
    assert reference("subskeleton", path, None) == ""
    ours = generate("subskeleton", path)
    assert "\t\tstruct bpf_map *rodata_str1_1;\n" in ours
    assert '\ts->vars[0].name = "long_named";\n' in ours
    assert "\ts->var_cnt = 2;\n" in ours


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("name", ["1abc", "a-b", "", "with space", "dots.are.bad"])
def test_invalid_names_are_refused(objects: dict[str, Path], name: str) -> None:
    for kind in ("skeleton", "subskeleton"):
        with pytest.raises(CodegenError, match="invalid object name"):
            generate(kind, objects["minimal"], name=name)


def test_default_name_that_is_no_identifier_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "1abc.o"
    path.write_bytes(compile_bpf("skel_minimal").read_bytes())
    with pytest.raises(CodegenError, match="invalid object name '1abc'"):
        generate("skeleton", path)
    assert "struct ok {" in generate("skeleton", path, name="ok")


def test_unreadable_and_non_bpf_files(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match="cannot read"):
        generate("skeleton", tmp_path / "missing.o")
    with pytest.raises(ElfError, match="cannot read"):
        generate("subskeleton", tmp_path)
    text = tmp_path / "text.o"
    text.write_text("not an object\n" * 10)
    with pytest.raises(ElfError, match="not an ELF file"):
        generate("skeleton", text)


def test_object_without_btf(tmp_path: Path) -> None:
    no_btf = compile_bpf("skel_strings", "-g0", out_name="skel_strings_nobtf")
    with pytest.raises(CodegenError, match="no BTF to describe its global data"):
        generate("skeleton", no_btf)
    with pytest.raises(CodegenError, match="needs BTF type information"):
        generate("subskeleton", no_btf)
    for obj in ("skel_globals", "skel_maponly"):
        path = compile_bpf(obj, "-g0", out_name=f"{obj}_nobtf")
        with pytest.raises(CodegenError, match="no BTF"):
            generate("skeleton", path)
    # Without global data, a BTF-less object still has a (bpftool-identical) skeleton.
    minimal = compile_bpf("skel_minimal", "-g0", out_name="skel_minimal_nobtf")
    assert_same(generate("skeleton", minimal), reference("skeleton", minimal, None))


def test_unresolved_externs_are_refused_like_libbpf(objects: dict[str, Path]) -> None:
    """An unlinked library file still has its extern variable and map: libbpf cannot open it."""
    for obj in ("lib1", "app1"):
        with pytest.raises(CodegenError, match="extern"):
            generate("skeleton", objects[obj])
        assert BPFTOOL is not None
        ref = subprocess.run([BPFTOOL, "gen", "skeleton", objects[obj]], capture_output=True)
        assert ref.returncode != 0


def test_errors_are_one_line_bpf_errors(objects: dict[str, Path]) -> None:
    with pytest.raises(BpfError) as info:
        generate("skeleton", objects["lib1"])
    assert "\n" not in str(info.value)
    assert str(objects["lib1"].name) in str(info.value)


def test_unknown_kind_or_language(objects: dict[str, Path]) -> None:
    with pytest.raises(CodegenError):
        generate("skeletons", objects["minimal"])
    with pytest.raises(CodegenError, match="language"):
        generate("skeleton", objects["minimal"], lang="rust")
