"""Pure parts of the loader: relocation, kconfig values, BTF fix-ups (no kernel needed,
except where the kernel is the judge of the BTF we produce)."""

from __future__ import annotations

import struct

import pytest

from conftest import compile_bpf, requires_root
from pybpf.abi.insn import BPF_PSEUDO_CALL, BpfPseudo
from pybpf.btf import Btf
from pybpf.btf.types import BtfDatasec, BtfKind, BtfVar, VarLinkage
from pybpf.errors import LoadError
from pybpf.load.btf_sanitize import BtfFeatures, kernel_btf
from pybpf.load.kconfig import encode_kconfig_value, kconfig_image, parse_kernel_config
from pybpf.load.program_image import Resolved, relocate_program
from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.specs import ExternKind, ExternSpec, KcfgType

_INSN = struct.Struct("<BBhi")
_MAP_REFS = (BpfPseudo.BPF_PSEUDO_MAP_FD, BpfPseudo.BPF_PSEUDO_MAP_VALUE)


def insns(code: bytes) -> list[tuple[int, int, int, int]]:
    return [_INSN.unpack_from(code, i) for i in range(0, len(code), 8)]


@pytest.fixture(scope="module")
def spec() -> ObjectSpec:
    return ObjectSpec.from_path(compile_bpf("load_globals"))


def fake_fds(spec: ObjectSpec) -> Resolved:
    fds = {m.name: 100 + i for i, m in enumerate(spec.maps)}
    kconfig = next(m.name for m in spec.maps if m.section_name == ".kconfig")
    return Resolved(map_fds=fds, kconfig_map=kconfig, string_offset=lambda s: 1)


def test_subprograms_are_appended_depth_first_once(spec: ObjectSpec) -> None:
    code = relocate_program(spec, spec.program("on_getpid"), fake_fds(spec))
    assert code.functions[0] == "on_getpid"
    assert sorted(code.functions[1:]) == ["add_scaled", "global_twice", "loop_cb"]
    # every call and function address lands on the start of an appended function
    boundaries = set()
    at = 0
    for name in code.functions:
        boundaries.add(at)
        at += spec.program(name).insn_count
    assert at == code.insn_count
    for pos, (op, regs, _off, imm) in enumerate(insns(code.insns)):
        is_call = op == 0x85 and regs >> 4 == BPF_PSEUDO_CALL
        is_func_addr = op == 0x18 and regs >> 4 == BpfPseudo.BPF_PSEUDO_FUNC
        if is_call or is_func_addr:
            assert pos + imm + 1 in boundaries


def test_map_and_global_data_loads_get_descriptors(spec: ObjectSpec) -> None:
    resolved = fake_fds(spec)
    code = relocate_program(spec, spec.program("on_getpid"), resolved)
    fds = set(resolved.map_fds.values())
    listing = insns(code.insns)
    kinds = set()
    for pos, (op, regs, _off, imm) in enumerate(listing):
        if op == 0x18 and regs >> 4 in _MAP_REFS:
            assert imm in fds
            kinds.add(regs >> 4)
            if regs >> 4 == BpfPseudo.BPF_PSEUDO_MAP_VALUE:
                assert 0 <= listing[pos + 1][3] < 4096  # offset into the value
    assert kinds == {BpfPseudo.BPF_PSEUDO_MAP_FD, BpfPseudo.BPF_PSEUDO_MAP_VALUE}


def test_func_info_has_one_record_per_function_at_its_start(spec: ObjectSpec) -> None:
    code = relocate_program(spec, spec.program("on_getpid"), fake_fds(spec))
    info = code.func_info
    offsets = [struct.unpack_from("<I", info, i)[0] for i in range(0, len(info), 8)]
    starts, at = [], 0
    for name in code.functions:
        starts.append(at)
        at += spec.program(name).insn_count
    assert offsets == starts
    assert len(code.line_info) % 16 == 0 and code.line_info


def test_missing_map_is_an_error_naming_program_and_instruction(spec: ObjectSpec) -> None:
    with pytest.raises(LoadError, match=r"on_getpid.*on_getpid\+\d+"):
        relocate_program(spec, spec.program("on_getpid"), Resolved(map_fds={}))


# ------------------------------------------------------------------------------ kconfig


def kcfg(name: str, kind: KcfgType, size: int, *, signed: bool = False, weak: bool = False,
         offset: int = 0) -> ExternSpec:  # fmt: skip
    return ExternSpec(name, ExternKind.KCONFIG, 0, weak, ".kconfig", offset=offset, size=size,
                      align=size, kcfg_type=kind, is_signed=signed)  # fmt: skip


def test_kconfig_values_follow_libbpf_rules() -> None:
    assert encode_kconfig_value(kcfg("A", KcfgType.BOOL, 1), "y") == b"\1"
    assert encode_kconfig_value(kcfg("A", KcfgType.TRISTATE, 4), "m") == struct.pack("<I", 2)
    assert encode_kconfig_value(kcfg("A", KcfgType.CHAR, 1), "m") == b"m"
    assert encode_kconfig_value(kcfg("A", KcfgType.INT, 4), "0x10") == struct.pack("<I", 16)
    assert encode_kconfig_value(kcfg("A", KcfgType.INT, 2), "010") == struct.pack("<H", 8)
    assert encode_kconfig_value(kcfg("A", KcfgType.INT, 4, signed=True), "-1") == b"\xff" * 4
    assert encode_kconfig_value(kcfg("A", KcfgType.CHAR_ARR, 6), '"abcdefgh"') == b"abcde\0"
    with pytest.raises(LoadError, match="does not fit"):
        encode_kconfig_value(kcfg("A", KcfgType.INT, 1), "300")
    with pytest.raises(LoadError, match="tristate or char"):
        encode_kconfig_value(kcfg("A", KcfgType.BOOL, 1), "m")
    with pytest.raises(LoadError, match="char array"):
        encode_kconfig_value(kcfg("A", KcfgType.INT, 4), '"x"')


def test_kconfig_image_places_values_and_defaults_weak_ones(spec: ObjectSpec) -> None:
    config = parse_kernel_config(["# CONFIG_X is not set", "CONFIG_HZ=100",
                                  "CONFIG_BPF_SYSCALL=y"])  # fmt: skip
    kconfig_map = next(m for m in spec.maps if m.section_name == ".kconfig")
    image = kconfig_image(spec, kconfig_map.value_size, config)
    slots = {e.name: e for e in spec.externs}
    hz = slots["CONFIG_HZ"]
    assert image[hz.offset : hz.offset + 4] == struct.pack("<i", 100)
    missing = slots["CONFIG_PYBPF_SURELY_MISSING"]
    assert image[missing.offset : missing.offset + 4] == bytes(4)
    with pytest.raises(LoadError, match="CONFIG_BPF_SYSCALL"):
        kconfig_image(spec, kconfig_map.value_size, {})


# ------------------------------------------------------------------------------ BTF


def test_kernel_btf_has_datasec_sizes_offsets_and_allocated_externs(spec: ObjectSpec) -> None:
    fixed = kernel_btf(spec, BtfFeatures())
    assert fixed is not None
    btf = Btf.from_bytes(fixed.data)
    for type_id in btf.type_ids():
        t = btf[type_id]
        if not isinstance(t, BtfDatasec):
            continue
        # the compiler leaves 0; the loader fills in the section's size (for .kconfig, which
        # has no section, the size of the map it lays out)
        section = spec.elf.section(t.name)
        if section is not None:
            assert t.size == section.size > 0, t.name
        else:
            assert t.name == ".kconfig"
            kconfig_map = next(m for m in spec.maps if m.section_name == ".kconfig")
            assert t.size == kconfig_map.value_size > 0
        offsets = [v.offset for v in t.vars]
        assert offsets == sorted(offsets), t.name
        for v in t.vars:
            var = btf[v.type]
            if isinstance(var, BtfVar):
                assert var.linkage is not VarLinkage.GLOBAL_EXTERN, var.name
    by_name = {e.name: e.offset for e in spec.externs}
    kconfig = btf[btf.find_one(".kconfig")]
    assert isinstance(kconfig, BtfDatasec)
    assert {btf.name_of(v.type): v.offset for v in kconfig.vars} == by_name


@requires_root
@pytest.mark.kernel
def test_btf_sanitized_for_an_old_kernel_is_accepted(spec: ObjectSpec) -> None:
    from pybpf.kernel.btf import btf_load

    fixed = kernel_btf(spec, BtfFeatures.none())
    assert fixed is not None
    btf = Btf.from_bytes(fixed.data)
    kinds = {btf.kind_of(i) for i in btf.type_ids()}
    assert not kinds & {BtfKind.VAR, BtfKind.DATASEC, BtfKind.FUNC, BtfKind.FUNC_PROTO,
                        BtfKind.FLOAT, BtfKind.DECL_TAG, BtfKind.TYPE_TAG}  # fmt: skip
    btf_load(fixed.data).fd.close()
