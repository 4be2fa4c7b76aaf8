"""The object model's details: names, lookups, variables, relocations, externs, errors.

Oracles: libbpf's documented naming examples, pyelftools for symbols and relocations,
``bpftool gen object`` for the weak-then-strong link, the fixture sources for what a
relocation must point at, and libbpf (the C driver) for which bad objects are refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

from conftest import bpftool, compile_bpf
from pybpf.abi.bpf import MapFlags, MapType
from pybpf.btf.types import BtfDatasec, BtfFunc, VarLinkage
from pybpf.errors import BpfError, ObjectError
from pybpf.obj import ExternKind, KcfgType, MapKind, ObjectSpec, RelocKind
from pybpf.obj.maps import internal_map_name
from pybpf.obj.show import format_object
from pybpf.object import BpfObject
from test_obj_oracle import driver, libbpf_view  # noqa: F401 - the libbpf driver fixture


@pytest.fixture(scope="module")
def data_spec() -> ObjectSpec:
    return ObjectSpec.from_path(compile_bpf("obj_data"))


@pytest.fixture(scope="module")
def progs_spec() -> ObjectSpec:
    return ObjectSpec.from_path(compile_bpf("obj_progs"))


# ------------------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("section", "expected"),
    [(".rodata", "my_objec.rodata"), (".bss", "my_objec.bss"), (".kconfig", "my_obje.kconfig"),
     (".rodata.abracadabra", ".rodata.abracad")],
)
def test_internal_map_name_examples_from_libbpf(section: str, expected: str) -> None:
    """The examples of libbpf's internal_map_name() comment, object 'my_object_name'."""
    assert internal_map_name("my_object_name", section) == expected


def test_lookup_by_name_and_by_section(data_spec: ObjectSpec) -> None:
    assert data_spec.map(".rodata") is data_spec.map("obj_data.rodata")
    assert data_spec.map(".kconfig").kind is MapKind.KCONFIG
    long = data_spec.map(".data.a_rather_long_section_name")
    assert long.bpf_name == ".data.a_rather_" and long.ident == "data_a_rather_long_section_name"
    assert data_spec.map(".bss.extra").kind is MapKind.BSS
    with pytest.raises(ObjectError, match="no map named"):
        data_spec.map("nope")


# ------------------------------------------------------------------------------ variables


def _symbols(path: Path) -> dict[str, tuple[str, int, int]]:
    with path.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        return {
            s.name: (elf.get_section(s["st_shndx"]).name, s["st_value"], s["st_size"])
            for s in symtab.iter_symbols()
            if s["st_info"]["type"] == "STT_OBJECT" and isinstance(s["st_shndx"], int)
        }


@pytest.mark.parametrize("fixture", ["obj_data", "obj_progs", "obj_maps", "btfkinds"])
def test_variables_sit_where_the_symbols_say(fixture: str) -> None:
    path = compile_bpf(fixture)
    spec = ObjectSpec.from_path(path)
    symbols = _symbols(path)
    checked = 0
    for v in spec.variables:
        if v.section_name == ".kconfig":
            continue
        assert symbols[v.name] == (v.section_name, v.offset, v.size), v
        checked += 1
    assert checked or fixture == "obj_maps"  # obj_maps has maps only


def test_variable_linkage(data_spec: ObjectSpec) -> None:
    by_name = {v.name: v for v in data_spec.variables}
    assert by_name["od_static_data"].linkage is VarLinkage.STATIC
    assert by_name["od_hidden"].linkage is VarLinkage.STATIC  # __hidden, as libbpf
    assert by_name["od_weak"].is_weak and not by_name["od_counter"].is_weak
    assert [v.name for v in data_spec.variables_of(".rodata")] == ["od_limit", "od_const_pair"]
    image = data_spec.map(".data").initial_value
    counter = by_name["od_counter"]
    assert int.from_bytes(image[counter.offset : counter.offset + 4], "little") == 7


def test_weak_then_strong_trusts_the_symbol_table(tmp_path: Path) -> None:
    """bpftool 7.1 leaves the DATASEC entry of 'ow_shared' at the weak copy's offset."""
    out = tmp_path / "weak.o"
    bpftool("gen", "object", out, compile_bpf("obj_weak1"), compile_bpf("obj_weak2"))
    spec = ObjectSpec.from_path(out)
    shared = next(v for v in spec.variables if v.name == "ow_shared")
    assert _symbols(out)["ow_shared"][1:] == (shared.offset, shared.size)
    image = spec.map(".data").initial_value
    assert int.from_bytes(image[shared.offset : shared.offset + 4], "little") == 2
    relocs = [r for p in spec.programs for r in p.relocations if r.symbol == "ow_shared"]
    assert relocs and all(r.target_offset == shared.offset for r in relocs)


def _placed(spec: ObjectSpec) -> dict[str, tuple[str, int]]:
    """Every DATASEC entry by VAR name: (DATASEC name, placed offset)."""
    assert spec.btf is not None
    return {
        spec.btf.name_of(info.type): (spec.btf.name_of(sec_id), info.offset)
        for sec_id, entries in spec.datasec_entries.items()
        for info in entries
    }


@pytest.mark.parametrize("fixture", ["obj_data", "obj_maps"])
def test_datasec_entries_agree_with_variables_maps_and_externs(fixture: str) -> None:
    """One placement of every DATASEC entry: where the variable, map or kconfig slot is."""
    spec = ObjectSpec.from_path(compile_bpf(fixture))
    assert spec.btf is not None
    datasecs = [i for i in spec.btf.type_ids() if spec.btf.kind_of(i).name == "DATASEC"]
    assert sorted(spec.datasec_entries) == datasecs
    placed = _placed(spec)
    for v in spec.variables:
        assert placed[v.name] == (v.section_name, v.offset), v
    for m in spec.maps:
        if not m.is_internal:
            assert placed[m.name] == (".maps", m.def_offset), m
    for e in spec.externs:
        if e.kind is ExternKind.KCONFIG:
            assert placed[e.name] == (".kconfig", e.offset), e


def test_weak_then_strong_datasec_entry_is_placed_at_the_symbol(tmp_path: Path) -> None:
    out = tmp_path / "weak.o"
    bpftool("gen", "object", out, compile_bpf("obj_weak1"), compile_bpf("obj_weak2"))
    spec = ObjectSpec.from_path(out)
    assert spec.btf is not None
    data = spec.btf[spec.btf.find_one(".data")]
    assert isinstance(data, BtfDatasec)
    stale = next(v.offset for v in data.vars if spec.btf.name_of(v.type) == "ow_shared")
    symbol = _symbols(out)["ow_shared"][1]
    assert stale != symbol and _placed(spec)["ow_shared"] == (".data", symbol)


# ------------------------------------------------------------------------------ programs


def test_relocations_cover_every_elf_relocation(progs_spec: ObjectSpec) -> None:
    path = compile_bpf("obj_progs")
    funcs = progs_spec.programs + progs_spec.subprograms
    with path.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        for section in elf.iter_sections():
            if not isinstance(section, RelocationSection):
                continue
            target = elf.get_section(section["sh_info"])
            if not target["sh_flags"] & 0x4:  # SHF_EXECINSTR
                continue
            for rel in section.iter_relocations():
                off = rel["r_offset"]
                prog = next(p for p in funcs if p.section_index == section["sh_info"]
                            and p.offset <= off < p.offset + p.size)
                sym = symtab.get_symbol(rel["r_info_sym"])
                name = sym.name or elf.get_section(sym["st_shndx"]).name
                assert any(r.insn_index == (off - prog.offset) // 8 and r.symbol == name
                           for r in prog.relocations), (prog.name, off, name)


def test_calls_and_callbacks_follow_the_source(progs_spec: ObjectSpec) -> None:
    op_tp = progs_spec.program("op_tp")
    kinds = {(r.kind, r.target) for r in op_tp.relocations}
    assert (RelocKind.SUBPROG_ADDR, "op_loop_cb") in kinds
    assert (RelocKind.CALL, "op_global_add") in kinds
    assert (RelocKind.CALL, "op_weak_hook") in kinds
    assert {(r.kind, r.target) for r in progs_spec.program("op_raw_tp").relocations} == {
        (RelocKind.CALL, "op_static_add")}
    assert {p.name for p in progs_spec.subprograms} == {
        "op_static_add", "op_global_add", "op_weak_hook", "op_loop_cb", "op_loop_cb2"}
    assert not progs_spec.program("op_optional").autoload
    static_add = progs_spec.program("op_static_add")
    assert static_add.is_subprog and not static_add.is_global
    data = static_add.relocations[0]
    assert data.kind is RelocKind.DATA and data.map_name == "obj_prog.bss"


def test_btf_ext_records_are_function_relative(progs_spec: ObjectSpec) -> None:
    btf = progs_spec.btf
    assert btf is not None
    for p in progs_spec.programs + progs_spec.subprograms:
        assert [fi.insn_off for fi in p.func_info] == [0]
        func = btf[p.func_info[0].type_id]
        assert isinstance(func, BtfFunc) and func.name == p.name
        assert p.line_info and all(0 <= li.insn_off < p.size for li in p.line_info)


def test_externs(data_spec: ObjectSpec) -> None:
    kinds = {e.name: e.kind for e in data_spec.externs}
    assert kinds["LINUX_KERNEL_VERSION"] is ExternKind.KCONFIG
    assert kinds["bpf_prog_active"] is ExternKind.KSYM
    assert kinds["bpf_task_acquire"] is ExternKind.FUNC
    jit = data_spec.extern("CONFIG_BPF_JIT")
    assert jit.kcfg_type is KcfgType.TRISTATE and jit.is_weak
    assert data_spec.extern("CONFIG_DEFAULT_HOSTNAME").kcfg_type is KcfgType.CHAR_ARR
    kfunc = data_spec.program("od_kfunc")
    assert (RelocKind.EXTERN_FUNC, "bpf_task_release") in {
        (r.kind, r.extern_name) for r in kfunc.relocations}
    kconfig = data_spec.map(".kconfig")
    ends = [e.offset + e.size for e in data_spec.externs if e.kind is ExternKind.KCONFIG]
    assert kconfig.value_size == max(ends)
    assert kconfig.flags == MapFlags.BPF_F_RDONLY_PROG | MapFlags.BPF_F_MMAPABLE


# ------------------------------------------------------------------------------ refusals

BAD_SOURCES = {
    "static_program": 'static int f(void *c) { return 0; }\n'
                      'SEC("xdp") static int g(void *c) { return f(c); }\n'
                      'SEC("xdp") int h(void *c) { return g(c); }',
    "unknown_map_field": 'struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);'
                         ' __type(key, int); __type(value, int); __uint(bogus, 1); }'
                         ' m SEC(".maps");',
    "map_without_type": 'struct { __uint(max_entries, 1); __type(key, int); } m SEC(".maps");',
    "conflicting_key_size": 'struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(key_size, 8);'
                            ' __type(key, int); __type(value, int); __uint(max_entries, 2); }'
                            ' m SEC(".maps");',
    "static_map": 'static struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);'
                  ' __type(key, int); __type(value, int); } m SEC(".maps");\n'
                  'SEC("xdp") int p(void *c) { int k = 0; return !!bpf_map_lookup_elem(&m, &k); }',
    "pinned_inner": 'struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);'
                    ' __type(key, int); __type(value, int); __uint(pinning, 1); };\n'
                    'struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 1);'
                    ' __type(key, int); __array(values, struct inner); } m SEC(".maps");',
    "kconfig_struct": 'struct s { int a; }; extern struct s CONFIG_X __kconfig;\n'
                      'SEC("xdp") int p(void *c) { return CONFIG_X.a; }',
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_refused_like_libbpf(case: str, tmp_path: Path, driver: Path) -> None:  # noqa: F811
    src = tmp_path / f"bad_{case}.bpf.c"
    src.write_text("#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
                   'char LICENSE[] SEC("license") = "GPL";\n' + BAD_SOURCES[case] + "\n")
    obj = compile_bpf(str(src), out_name=f"bad_{case}")
    assert libbpf_view(driver, obj)[0].startswith("error")
    with pytest.raises(ObjectError) as info:
        ObjectSpec.from_path(obj)
    assert info.value.file == str(obj)


# ------------------------------------------------------------------------------ live object


def test_bpf_object_before_load() -> None:
    path = compile_bpf("obj_data")
    obj = BpfObject.open(path.read_bytes(), name="obj_data")
    assert [m.name for m in obj.maps] == [m.name for m in ObjectSpec.from_path(path).maps]
    rodata = obj.map(".rodata")
    assert rodata is obj.map("obj_data.rodata") and rodata.type is MapType.ARRAY
    new = bytes(range(len(rodata.initial_value)))
    rodata.initial_value = new
    assert rodata.initial_value == new and bytes(rodata.image) == new
    with pytest.raises(BpfError, match="expected"):
        rodata.initial_value = b"\0"
    prog = obj.program("od_prog")
    assert prog.section_name == "raw_tp/sys_enter"
    obj.loaded = True
    with pytest.raises(BpfError, match="after load"):
        rodata.initial_value = new
    with pytest.raises(BpfError, match="after load"):
        rodata.max_entries = 2


def test_show_lists_everything(data_spec: ObjectSpec) -> None:
    import json

    text = format_object(data_spec)
    for m in data_spec.maps:
        assert m.name in text
    for v in data_spec.variables:
        assert v.name in text
    doc = json.loads(format_object(data_spec, as_json=True))
    assert doc["programs"][1]["attach_type"] == "BPF_TRACE_RAW_TP"
    assert doc["maps"][1]["flags"] == ["BPF_F_RDONLY_PROG", "BPF_F_MMAPABLE"]
    assert {"name": "od_const_pair", "offset": 8, "size": 16,
            "type": "const volatile struct pair", "linkage": "global",
            "weak": False} in doc["variables"][".rodata"]

