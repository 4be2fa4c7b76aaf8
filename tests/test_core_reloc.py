"""CO-RE relocation against the running kernel, checked against libbpf instruction by instruction.

``fixtures/core_kernel.bpf.c`` uses every relocation kind on real kernel types (task_struct,
sk_buff, the tc context, enums and enum64s, flavors, types that do not exist).  The C driver
``fixtures/core_driver.c`` loads it with the system libbpf and prints each program's final
instructions (``bpf_program__insns`` after load: what libbpf handed the kernel) and the
kernel's translated instructions.  We relocate the object's original instructions with
:func:`relocate_core` and compare every instruction a CO-RE record points at, whole (code,
registers, offset, immediate): same bytes, or the test fails naming program, index and kind.
"""

from __future__ import annotations

import difflib
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, FIXTURES, compile_bpf
from pybpf.btf.btf import Btf
from pybpf.btf.ext import CoreReloKind
from pybpf.btf.types import BtfKind, BtfStruct
from pybpf.core import CoreRelocator, TargetBtf, relocate_core
from pybpf.obj import ObjectSpec

requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="libbpf loads need root")
POISON = struct.pack("<BBhi", 0x85, 0, 0, 0xBAD2310)
INSN = 8
Listing = dict[str, tuple[list[bytes], list[bytes]]]
"""Per program: (libbpf's final instructions, the kernel's xlated instructions)."""


def build_driver() -> Path:
    gcc = shutil.which("gcc")
    if gcc is None or not Path("/usr/include/bpf/libbpf.h").exists():
        pytest.skip("needs gcc and libbpf-dev")
    BUILD.mkdir(exist_ok=True)
    src = FIXTURES / "core_driver.c"
    exe = BUILD / "core_driver"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        tmp = exe.with_suffix(f".{os.getpid()}")
        subprocess.run([gcc, "-O2", "-Wall", str(src), "-o", str(tmp), "-lbpf"], check=True)
        tmp.replace(exe)
    return exe


def libbpf_insns(obj: Path, target_btf: Path | None = None) -> Listing:
    """Per program: (libbpf's final instructions, the kernel's xlated instructions)."""
    args = [str(build_driver()), str(obj)] + ([str(target_btf)] if target_btf else [])
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    progs: Listing = {}
    i = 0
    while i < len(lines):
        _, name, count = lines[i].split()
        final = [bytes.fromhex(x) for x in lines[i + 1 : i + 1 + int(count)]]
        i += 1 + int(count)
        _, xcount = lines[i].split()
        xlated = [bytes.fromhex(x) for x in lines[i + 1 : i + 1 + int(xcount)]]
        i += 1 + int(xcount)
        progs[name] = (final, xlated)
    return progs


def our_insns(spec: ObjectSpec, target: TargetBtf) -> dict[str, bytearray]:
    assert spec.btf is not None
    relocator = CoreRelocator(spec.btf, target)
    out: dict[str, bytearray] = {}
    for prog in (*spec.programs, *spec.subprograms):
        insns = bytearray(prog.insns)
        relocator.relocate(insns, prog.core_relos, prog_name=prog.name)
        out[prog.name] = insns
    return out


def compare(spec: ObjectSpec, ours: dict[str, bytearray], theirs: Listing) -> list[str]:
    diffs = []
    for prog in spec.programs:
        final, _ = theirs[prog.name]
        for relo in prog.core_relos:
            k = relo.insn_off // INSN
            mine = bytes(ours[prog.name][k * INSN : (k + 1) * INSN])
            if mine != final[k]:
                diffs.append(
                    f"{prog.name} insn {k} {relo.kind.name} {relo.access_str}: "
                    f"ours {mine.hex()} libbpf {final[k].hex()}"
                )
    return diffs


@pytest.fixture(scope="module")
def core_obj() -> Path:
    return compile_bpf("core_kernel")


@pytest.fixture(scope="module")
def spec(core_obj: Path) -> ObjectSpec:
    return ObjectSpec.from_path(core_obj)


def test_fixture_covers_every_relocation_kind(spec: ObjectSpec) -> None:
    kinds = {r.kind for p in spec.programs for r in p.core_relos}
    assert kinds == set(CoreReloKind)
    assert [s.name for s in spec.subprograms if s.core_relos] == ["skb_len_plus_mark"]


@requires_root
def test_subprogram_relocations_match_libbpfs_appended_copy(
    core_obj: Path, spec: ObjectSpec
) -> None:
    """libbpf appends the called subprogram after ``core_skb``; its relocated instructions
    are those we compute for the subprogram on its own."""
    final, _ = libbpf_insns(core_obj)["core_skb"]
    main = spec.program("core_skb")
    sub = spec.program("skb_len_plus_mark")
    ours = our_insns(spec, TargetBtf.running_kernel())["skb_len_plus_mark"]
    start = main.size // INSN
    assert len(final) == start + sub.size // INSN
    for relo in sub.core_relos:
        k = relo.insn_off // INSN
        assert bytes(ours[k * INSN : (k + 1) * INSN]) == final[start + k], relo


@requires_root
def test_every_relocated_instruction_matches_libbpf(core_obj: Path, spec: ObjectSpec) -> None:
    theirs = libbpf_insns(core_obj)
    ours = our_insns(spec, TargetBtf.running_kernel())
    assert compare(spec, ours, theirs) == []


def _align(ours: list[bytes], xlated: list[bytes]) -> dict[int, int]:
    """Map our instruction indices to the kernel's: the verifier drops dead code and inlines
    helpers, so indices move; opcodes and registers of the rest line up."""
    matcher = difflib.SequenceMatcher(
        None, [i[:2] for i in ours], [i[:2] for i in xlated], autojunk=False
    )
    mapping: dict[int, int] = {}
    for block in matcher.get_matching_blocks():
        for n in range(block.size):
            mapping[block.a + n] = block.b + n
    return mapping


@requires_root
def test_relocated_immediates_are_what_the_kernel_verified(
    core_obj: Path, spec: ObjectSpec
) -> None:
    """Ground truth from the kernel: every ALU immediate CO-RE wrote (offsets, sizes,
    existence flags, shifts) is in the translated program the kernel holds."""
    theirs = libbpf_insns(core_obj)
    ours = our_insns(spec, TargetBtf.running_kernel())
    checked = 0
    for prog in spec.programs:
        _, xlated = theirs[prog.name]
        mine = [bytes(ours[prog.name][k : k + INSN]) for k in range(0, prog.size, INSN)]
        where = _align(mine, xlated)
        for relo in prog.core_relos:
            k = relo.insn_off // INSN
            if mine[k][0] & 0x07 in (0x04, 0x07) and k in where:  # ALU/ALU64 immediates
                assert mine[k] == xlated[where[k]], (prog.name, k, relo.kind.name)
                checked += 1
    assert checked >= 40


def test_values_follow_the_kernel_btf(spec: ObjectSpec) -> None:
    """Independent of libbpf: offsets, sizes and ids are those of the kernel's BTF."""
    vmlinux = Btf.vmlinux()
    task_id = vmlinux.find_one("task_struct", BtfKind.STRUCT)
    task = vmlinux[task_id]
    assert isinstance(task, BtfStruct)
    offsets = {m.name: m.offset // 8 for m in task.members}
    ours = our_insns(spec, TargetBtf.running_kernel())
    prog = spec.program("core_task")
    by_access: dict[tuple[CoreReloKind, str], list[tuple[int, int]]] = {}
    for relo in prog.core_relos:
        k = relo.insn_off // INSN
        _, _, off, imm = struct.unpack_from("<BBhi", ours["core_task"], k * INSN)
        by_access.setdefault((relo.kind, relo.access_str), []).append((off, imm))
    # 0:3 is "pid" in the local struct, 0:2 is "tgid"
    assert (0, offsets["pid"]) in by_access[(CoreReloKind.FIELD_BYTE_OFFSET, "0:3")]
    assert (0, offsets["tgid"]) in by_access[(CoreReloKind.FIELD_BYTE_OFFSET, "0:2")]
    assert (0, vmlinux.size_of(task_id)) in by_access[(CoreReloKind.TYPE_SIZE, "0")]
    assert by_access[(CoreReloKind.TYPE_ID_TARGET, "0")][0][1] == task_id


def test_unsatisfied_relocations_are_poisoned_only_where_expected(spec: ObjectSpec) -> None:
    ours = our_insns(spec, TargetBtf.running_kernel())
    poisoned = {
        (p.name, r.kind, r.access_str)
        for p in spec.programs
        for r in p.core_relos
        if bytes(ours[p.name][r.insn_off : r.insn_off + INSN]) == POISON
    }
    assert poisoned == {
        ("core_task", CoreReloKind.FIELD_BYTE_OFFSET, "0:0"),  # task_struct___old.state
        ("core_types", CoreReloKind.FIELD_BYTE_OFFSET, "0:0"),  # pybpf_absent___x.a
        ("core_enums", CoreReloKind.ENUMVAL_VALUE, "1"),  # BPF_MAP_TYPE_PYBPF_ABSENT___x
    }


def test_relocate_core_entry_point_equals_shared_relocator(spec: ObjectSpec) -> None:
    target = TargetBtf.running_kernel()
    shared = our_insns(spec, target)
    assert spec.btf is not None
    for prog in spec.programs:
        insns = bytearray(prog.insns)
        relocate_core(insns, prog.core_relos, spec.btf, target, prog_name=prog.name)
        assert insns == shared[prog.name]
        assert len(insns) == len(prog.insns)


def _generated_source(vmlinux: Btf, structs: int = 60, per_struct: int = 4) -> str:
    """Field offset/size/existence and type size relocations over many real kernel structs
    (each named once in vmlinux), local definitions in a different member order."""
    from pybpf.btf.types import BtfInt, BtfPtr

    lines = [
        "#include <linux/bpf.h>",
        "#include <bpf/bpf_helpers.h>",
        "#include <bpf/bpf_core_read.h>",
        'char LICENSE[] SEC("license") = "GPL";',
    ]
    body: list[str] = []
    chosen = 0
    for type_id in vmlinux.type_ids():
        if chosen == structs:
            break
        t = vmlinux[type_id]
        if not isinstance(t, BtfStruct) or not t.name or "___" in t.name:
            continue
        if len(vmlinux.find(t.name, BtfKind.STRUCT)) != 1:
            continue
        fields = []
        for m in t.members:
            mt = vmlinux[vmlinux.resolve(m.type)] if m.type else None
            if not m.name or m.bitfield_size:
                continue
            if isinstance(mt, BtfPtr):
                fields.append(f"void *{m.name};")
            elif isinstance(mt, BtfInt) and mt.size in (1, 2, 4, 8) and not mt.bits_offset:
                fields.append(f"__u{mt.size * 8} {m.name};")
        if len(fields) < per_struct:
            continue
        picked = fields[:per_struct][::-1]  # reversed: every offset must move
        lines.append(
            f"struct {t.name} {{ {' '.join(picked)} }} __attribute__((preserve_access_index));"
        )
        for decl in picked:
            field = decl.rstrip(";").split()[-1].lstrip("*")
            body.append(f"o[{len(body)}] = bpf_core_field_offset(struct {t.name}, {field});")
            body.append(f"o[{len(body)}] = bpf_core_field_size(struct {t.name}, {field});")
        body.append(f"o[{len(body)}] = bpf_core_field_exists(struct {t.name}, {field});")
        body.append(f"o[{len(body)}] = bpf_core_type_size(struct {t.name});")
        chosen += 1
    lines.append(f"__u64 gen_out[{len(body)}];")
    lines.append('SEC("raw_tp/sys_enter") int core_generated(void *ctx) {')
    lines.append("volatile __u64 *o = gen_out;")
    lines += body
    lines.append("return 0; }")
    return "\n".join(lines) + "\n"


@requires_root
def test_many_kernel_structs_match_libbpf(tmp_path: Path) -> None:
    source = tmp_path / "core_generated.c"
    source.write_text(_generated_source(Btf.vmlinux()))
    obj = compile_bpf(str(source))
    spec = ObjectSpec.from_path(obj)
    assert sum(len(p.core_relos) for p in spec.programs) > 500
    ours = our_insns(spec, TargetBtf.running_kernel())
    assert compare(spec, ours, libbpf_insns(obj)) == []


def _mask_map_pointers(insns: list[bytes]) -> list[bytes]:
    """Blank the immediates of map-pointer ``ld_imm64`` pairs: each load makes its own maps,
    so the kernel addresses in them differ between any two loads of one object."""
    out: list[bytes] = []
    skip_next = False
    for insn in insns:
        if skip_next:
            out.append(insn[:4] + bytes(4))
            skip_next = False
            continue
        if insn[0] == 0x18 and (insn[1] >> 4) in (
            1,
            2,
            5,
            6,
        ):  # BPF_PSEUDO_MAP_{FD,VALUE,IDX,IDX_VALUE}
            out.append(insn[:4] + bytes(4))
            skip_next = True
        else:
            out.append(insn)
    return out


@requires_root
def test_xlated_code_equals_libbpfs_program_by_program() -> None:
    """The same object loaded by pybpf and by libbpf: the kernel's translated instructions
    (what `bpftool prog dump xlated` prints) are equal for every program."""
    from pybpf.kernel.progs import prog_get_info_by_fd
    from pybpf.object import BpfObject

    path = compile_bpf("core_kernel")
    theirs = libbpf_insns(path)
    with BpfObject.open(path) as obj:
        obj.load()
        compared = 0
        for prog in obj.programs:
            assert prog.fd is not None
            info = prog_get_info_by_fd(prog.fd, xlated_insns=True)
            assert info.xlated_insns is not None
            mine = [info.xlated_insns[i : i + INSN] for i in range(0, len(info.xlated_insns), INSN)]
            assert _mask_map_pointers(mine) == _mask_map_pointers(theirs[prog.name][1]), prog.name
            compared += 1
    assert compared == len(theirs) >= 3
