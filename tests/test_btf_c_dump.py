"""BTF to C: our dump must be byte-identical to ``bpftool btf dump file X format c``.

Every expectation here comes from an oracle: bpftool 7.1 for whole dumps, the system libbpf's
``btf_dump`` API (through a tiny C driver) for the incremental per-type API, and
``bpftool gen skeleton`` for single declarators.  Fixtures ``cdump_*.bpf.c`` collect the
corner cases; raw BTF built by hand covers what clang never emits.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from conftest import BUILD, CLANG, bpftool, btf_blob, compile_bpf
from pybpf.btf import Btf
from pybpf.btf.c_dump import CDumper, dump_c
from pybpf.btf.types import (
    BtfDatasec,
    BtfDeclTag,
    BtfFunc,
    BtfKind,
    BtfVar,
    VarLinkage,
)
from pybpf.errors import BtfError

VMLINUX = Path("/sys/kernel/btf/vmlinux")
FIXTURES = ["cdump_layout", "cdump_enums", "cdump_decls", "cdump_graph"]

pytestmark = pytest.mark.oracle


def object_btf(obj: Path) -> Btf:
    with obj.open("rb") as f:
        section = ELFFile(f).get_section_by_name(".BTF")
        assert section is not None, f"{obj} has no .BTF"
        data = section.data()
    return Btf.from_bytes(data, file=str(obj))


def show_diff(ours: str, ref: str, tmp: Path) -> str:
    (tmp / "ours.h").write_text(ours)
    (tmp / "ref.h").write_text(ref)
    diff = subprocess.run(
        ["diff", "-u", tmp / "ref.h", tmp / "ours.h"], capture_output=True, text=True
    ).stdout
    return "\n".join(diff.splitlines()[:60])


# ---------------------------------------------------------------------------- whole dumps


@pytest.mark.parametrize("name", FIXTURES)
def test_object_dump_is_byte_identical_to_bpftool(name: str, tmp_path: Path) -> None:
    obj = compile_bpf(name)
    ours = dump_c(object_btf(obj))
    ref = bpftool("btf", "dump", "file", obj, "format", "c")
    assert ours == ref, show_diff(ours, ref, tmp_path)


def test_dump_is_deterministic() -> None:
    btf = object_btf(compile_bpf("cdump_decls"))
    assert dump_c(btf) == dump_c(btf) == dump_c(object_btf(compile_bpf("cdump_decls")))


@pytest.fixture(scope="module")
def vmlinux_dump() -> tuple[str, float]:
    if not VMLINUX.exists():
        pytest.skip("kernel has no BTF (CONFIG_DEBUG_INFO_BTF)")
    start = time.perf_counter()
    text = dump_c(Btf.vmlinux())
    return text, time.perf_counter() - start


@pytest.mark.slow
def test_vmlinux_dump_is_byte_identical_to_bpftool(
    vmlinux_dump: tuple[str, float], tmp_path: Path
) -> None:
    """THE BIG ONE: the running kernel's vmlinux.h, parse included, in a few seconds."""
    ours, seconds = vmlinux_dump
    ref = bpftool("btf", "dump", "file", VMLINUX, "format", "c")
    assert ours == ref, show_diff(ours, ref, tmp_path)
    print(f"vmlinux.h: {len(ours.splitlines())} lines in {seconds:.2f} s")
    assert seconds < 15


@pytest.mark.slow
def test_our_vmlinux_h_compiles_into_a_bpf_program(
    vmlinux_dump: tuple[str, float], tmp_path: Path
) -> None:
    if CLANG is None:
        pytest.skip("clang-16 is not installed")
    (tmp_path / "vmlinux.h").write_text(vmlinux_dump[0])
    prog = tmp_path / "prog.bpf.c"
    prog.write_text(
        '#include "vmlinux.h"\n'
        "#include <bpf/bpf_helpers.h>\n"
        "#include <bpf/bpf_core_read.h>\n"
        'char LICENSE[] SEC("license") = "GPL";\n'
        'SEC("tp/sched/sched_switch")\n'
        "int on_switch(struct trace_event_raw_sched_switch *ctx)\n"
        "{\n"
        "\tstruct task_struct *task = (void *)bpf_get_current_task();\n"
        "\treturn BPF_CORE_READ(task, pid) + ctx->prev_pid + sizeof(struct sk_buff);\n"
        "}\n"
    )
    subprocess.run(
        [CLANG, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", f"-I{tmp_path}",
         "-c", prog, "-o", tmp_path / "prog.bpf.o"],
        check=True,
    )


# ---------------------------------------------------------------------------- incremental API

DRIVER_SOURCE = r"""
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <bpf/btf.h>

static void out(void *ctx, const char *fmt, va_list args) { vprintf(fmt, args); }

/* argv: object, then t<ID> (btf_dump__dump_type) or d<ID>:<lvl>:<strip>:<name>
 * (btf_dump__emit_type_decl), all on one btf_dump; outputs separated by "\n@@\n". */
int main(int argc, char **argv)
{
	struct btf *btf = btf__parse(argv[1], NULL);
	struct btf_dump *d;

	if (!btf || !(d = btf_dump__new(btf, out, NULL, NULL)))
		return 2;
	for (int i = 2; i < argc; i++) {
		char *p = argv[i] + 1;
		if (argv[i][0] == 't') {
			if (btf_dump__dump_type(d, atoi(p)))
				return 3;
		} else {
			LIBBPF_OPTS(btf_dump_emit_type_decl_opts, opts);
			int id = strtol(p, &p, 10);
			opts.indent_level = strtol(p + 1, &p, 10);
			opts.strip_mods = strtol(p + 1, &p, 10);
			opts.field_name = p + 1;
			if (btf_dump__emit_type_decl(d, id, &opts))
				return 4;
		}
		printf("\n@@\n");
	}
	btf_dump__free(d);
	return 0;
}
"""


@pytest.fixture(scope="module")
def libbpf_driver() -> Path:
    gcc = shutil.which("gcc")
    if gcc is None or not Path("/usr/include/bpf/btf.h").exists():
        pytest.skip("needs gcc and libbpf-dev")
    BUILD.mkdir(exist_ok=True)
    src = BUILD / "btf_dump_driver.c"
    exe = BUILD / "btf_dump_driver"
    if not exe.exists() or not src.exists() or src.read_text() != DRIVER_SOURCE:
        src.write_text(DRIVER_SOURCE)
        subprocess.run([gcc, "-O2", "-Wall", src, "-o", exe, "-lbpf"], check=True)
    return exe


def declarable(btf: Btf, type_id: int) -> bool:
    return not isinstance(btf[type_id], BtfFunc | BtfVar | BtfDatasec | BtfDeclTag)


def as_bpftool_spells_it(libbpf_text: str) -> str:
    """Undo the system libbpf's two known differences from the copy inside bpftool 7.1.

    libbpf 1.1.2 adds ``mode(byte)``/``mode(word)`` to 1- and 8-byte enums and prints a
    prototype without parameters as ``()``; bpftool 7.1 (built from Linux 6.1.y sources)
    prints neither attribute and ``(void)``.  Both were checked against bpftool in the
    whole-dump tests above; ``()`` appears in libbpf's C output only for such prototypes.
    """
    text = libbpf_text.replace(" __attribute__((mode(byte)))", "")
    text = text.replace(" __attribute__((mode(word)))", "")
    return text.replace("()", "(void)")


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_dumping_matches_libbpf(name: str, seed: int, libbpf_driver: Path) -> None:
    """Interleaved dump_type / emit_type_decl calls on one dumper: same output, same state.

    A random order of roots exercises "emitted once per dumper", forward declarations left
    over from earlier calls, and ``___N`` renaming that depends on what was named first.
    """
    obj = compile_bpf(name)
    btf = object_btf(obj)
    rng = random.Random(seed)
    ids = list(btf.type_ids())
    rng.shuffle(ids)
    commands: list[str] = []
    dumper = CDumper(btf)
    ours: list[str] = []
    for type_id in ids:
        if declarable(btf, type_id) and rng.random() < 0.4:
            level, strip, field = rng.randrange(3), rng.random() < 0.5, rng.choice(["", "x"])
            commands.append(f"d{type_id}:{level}:{int(strip)}:{field}")
            ours.append(dumper.type_declaration(type_id, field, level, strip))
        commands.append(f"t{type_id}")
        ours.append(dumper.emit_type(type_id))
    result = subprocess.run([libbpf_driver, obj, *commands], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ref = as_bpftool_spells_it(result.stdout).split("\n@@\n")
    assert ref[-1] == ""
    assert ours == ref[:-1]


def test_type_declarations_match_bpftool_skeleton() -> None:
    """Skeletons declare each global with emit_type_decl (indent 2, modifiers stripped)."""
    obj = compile_bpf("cdump_decls")
    btf = object_btf(obj)
    skel = bpftool("gen", "skeleton", obj, "name", "cdump_decls")
    dumper = CDumper(btf)
    checked = 0
    for type_id in btf.type_ids():
        sec = btf[type_id]
        if not isinstance(sec, BtfDatasec) or sec.name not in (".bss", ".data", ".rodata"):
            continue
        for info in sec.vars:
            var = btf[info.type]
            assert isinstance(var, BtfVar)
            decl = dumper.type_declaration(var.type, var.name, 2, strip_mods=True)
            if var.linkage == VarLinkage.STATIC:
                continue
            assert f"\t\t{decl};\n" in skel, decl
            checked += 1
    assert checked >= 6


def test_declarators_of_globals_match_libbpf(libbpf_driver: Path) -> None:
    """Each global's declarator, qualifiers kept and stripped, at several indent levels.

    Covers ``int (* (*f)(int))[4]`` (function returning pointer to array) and
    ``volatile const int`` (BTF keeps clang's CONST -> VOLATILE order; libbpf prints the
    qualifiers innermost first).
    """
    obj = compile_bpf("cdump_decls")
    btf = object_btf(obj)
    dumper = CDumper(btf)
    commands: list[str] = []
    ours: list[str] = []
    for type_id in btf.type_ids():
        var = btf[type_id]
        if not isinstance(var, BtfVar):
            continue
        for level, strip in ((0, False), (1, True), (3, False)):
            commands.append(f"d{var.type}:{level}:{int(strip)}:{var.name}")
            ours.append(dumper.type_declaration(var.type, var.name, level, strip))
    assert len(ours) >= 18
    result = subprocess.run([libbpf_driver, obj, *commands], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert ours == as_bpftool_spells_it(result.stdout).split("\n@@\n")[:-1]


def test_a_type_is_emitted_once_per_dumper() -> None:
    btf = object_btf(compile_bpf("cdump_graph"))
    holder = btf.find_one("holder", BtfKind.STRUCT)
    dumper = CDumper(btf)
    first = dumper.emit_type(holder)
    assert "struct holder {" in first
    assert dumper.emit_type(holder) == ""
    assert "struct holder {" in CDumper(btf).emit_type(holder)


def test_bad_type_id_is_an_error() -> None:
    btf = object_btf(compile_bpf("cdump_graph"))
    with pytest.raises(BtfError, match="out of range"):
        CDumper(btf).emit_type(btf.end_id)
    with pytest.raises(BtfError, match="out of range"):
        CDumper(btf).type_declaration(-1, "x")


# ---------------------------------------------------------------------------- hand-built BTF


class RawBtf:
    """A minimal BTF encoder for inputs clang never produces."""

    def __init__(self, base: Btf | None = None) -> None:
        self.strings = bytearray(b"\0")
        self.types = bytearray()
        # Split BTF continues the base's string offsets.
        self.str_base = 0 if base is None else base.start_str_off + len(base.string_bytes)

    def s(self, name: str) -> int:
        if not name:
            return 0
        off = len(self.strings)
        self.strings += name.encode() + b"\0"
        return self.str_base + off

    def add(self, name: str, kind: int, vlen: int, size_or_type: int, extra: bytes = b"",
            kflag: bool = False) -> None:
        info = (int(kflag) << 31) | (kind << 24) | vlen
        self.types += struct.pack("<III", self.s(name), info, size_or_type) + extra

    def int_(self, name: str, size: int, enc: int = 0) -> None:
        self.add(name, BtfKind.INT, 0, size, struct.pack("<I", (enc << 24) | size * 8))

    def members(self, *ms: tuple[str, int, int]) -> bytes:
        return b"".join(struct.pack("<III", self.s(n), t, off) for n, t, off in ms)

    def encode(self) -> bytes:
        return btf_blob(bytes(self.types), bytes(self.strings))


def compare_raw(raw: RawBtf, tmp_path: Path) -> str:
    path = tmp_path / "raw.btf"
    path.write_bytes(raw.encode())
    ours = dump_c(Btf.from_path(path))
    ref = bpftool("btf", "dump", "file", path, "format", "c")
    assert ours == ref, show_diff(ours, ref, tmp_path)
    return ours


def test_special_names_and_kinds_clang_never_emits(tmp_path: Path) -> None:
    r = RawBtf()
    long_name = "n" * 300
    r.int_("long", 8, 1)                                                    # 1
    r.int_("int", 4, 1)                                                     # 2
    r.add("", BtfKind.PTR, 0, 0)                                            # 3 void *
    r.add("__builtin_va_list", BtfKind.TYPEDEF, 0, 3)                       # 4 not re-declared
    r.add("__gnuc_va_list", BtfKind.TYPEDEF, 0, 0)                          # 5 old GCC: to void
    r.int_("__Poly8_t", 1)                                                  # 6 aliased
    # (a member of the void-typedef crashes bpftool with SIGFPE, so it is not a member here)
    r.add("uses", BtfKind.STRUCT, 2, 16, r.members(("a", 4, 0), ("c", 6, 64)))  # 7
    r.add("fwd_enum", BtfKind.ENUM, 0, 4)                                   # 8 enum forward
    r.add("fwd_enum", BtfKind.ENUM, 0, 4)                                   # 9 not renamed
    r.add("u", BtfKind.FWD, 0, 0, kflag=True)                               # 10 union fwd
    r.add("u", BtfKind.UNION, 1, 4, r.members(("x", 2, 0)))                 # 11
    r.add("u", BtfKind.STRUCT, 1, 4, r.members(("y", 2, 0)))                # 12 u___2
    r.add(long_name, BtfKind.STRUCT, 0, 0)                                  # 13
    r.add(long_name, BtfKind.STRUCT, 0, 0)                                  # 14 truncated
    r.add("double", BtfKind.FLOAT, 0, 8)                                    # 15
    r.add("", BtfKind.FUNC_PROTO, 3, 2,
          struct.pack("<IIIIII", r.s("fmt"), 3, r.s("d"), 15, 0, 0))        # 16 varargs
    r.add("", BtfKind.PTR, 0, 16)                                           # 17
    r.add("user", BtfKind.TYPE_TAG, 0, 2)                                   # 18
    r.add("", BtfKind.PTR, 0, 18)                                           # 19
    r.add("", BtfKind.CONST, 0, 19)                                         # 20
    r.add("", BtfKind.VOLATILE, 0, 20)                                      # 21
    r.add("", BtfKind.RESTRICT, 0, 3)                                       # 22
    r.add("tagged", BtfKind.STRUCT, 4, 32,
          r.members(("fp", 17, 0), ("p", 21, 64), ("e", 8, 128), ("r", 22, 192)))  # 23
    r.add("tagged", BtfKind.DECL_TAG, 0, 23, struct.pack("<i", -1))         # 24 ignored
    r.add("f", BtfKind.FUNC, 1, 16)                                         # 25 skipped
    r.add("v", BtfKind.VAR, 0, 23, struct.pack("<I", 1))                    # 26 skipped
    r.add(".data", BtfKind.DATASEC, 1, 32, struct.pack("<III", 26, 0, 32))  # 27 skipped
    r.add("e64", BtfKind.ENUM64, 2, 8,
          struct.pack("<IIIIII", r.s("LO"), 1, 0, r.s("HI"), 0, 0x80000000))  # 28
    r.add("", BtfKind.ENUM, 1, 4, struct.pack("<Ii", r.s("int"), -1), kflag=True)  # 29
    out = compare_raw(r, tmp_path)
    assert "typedef __builtin_va_list __gnuc_va_list;" in out
    assert "u___2" in out


def test_anonymous_cycle_is_rejected_like_bpftool(tmp_path: Path) -> None:
    """An anonymous struct that contains a pointer to itself cannot be written in C."""
    r = RawBtf()
    r.add("", BtfKind.STRUCT, 1, 8, r.members(("next", 2, 0)))  # 1
    r.add("", BtfKind.PTR, 0, 1)                                # 2
    r.add("holder", BtfKind.STRUCT, 1, 8, r.members(("s", 1, 0)))
    path = tmp_path / "cycle.btf"
    path.write_bytes(r.encode())
    result = subprocess.run(["bpftool", "btf", "dump", "file", path, "format", "c"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    with pytest.raises(BtfError, match="unsatisfiable type cycle"):
        dump_c(Btf.from_path(path))


def test_pointer_size_follows_long_like_libbpf(tmp_path: Path) -> None:
    """Raw BTF of a 32-bit kernel: 4-byte pointers change alignment and padding units."""
    r = RawBtf()
    r.int_("char", 1, 1)                                              # 1
    r.int_("long", 4, 1)                                              # 2
    r.int_("long long", 8, 1)                                         # 3
    r.add("", BtfKind.PTR, 0, 0)                                      # 4
    r.add("s32", BtfKind.STRUCT, 5, 24, r.members(
        ("a", 1, 0), ("p", 4, 32), ("b", 1, 64), ("c", 3, 96), ("d", 1, 160)))
    r.add("gap", BtfKind.STRUCT, 2, 16, r.members(("a", 1, 0), ("b", 1, 96)))
    out = compare_raw(r, tmp_path)
    assert "long: 32;" in out


@pytest.mark.slow
def test_split_btf_dump_matches_bpftool(tmp_path: Path) -> None:
    """Module-style split BTF on top of vmlinux: ids and strings continue the base's."""
    if not VMLINUX.exists():
        pytest.skip("kernel has no BTF (CONFIG_DEBUG_INFO_BTF)")
    base = Btf.vmlinux()
    task = base.find_one("task_struct", BtfKind.STRUCT)
    list_head = base.find_one("list_head", BtfKind.STRUCT)
    u32 = base.find_one("u32", BtfKind.TYPEDEF)
    first = base.end_id
    r = RawBtf(base)
    r.add("", BtfKind.PTR, 0, task)                                   # first
    r.add("mod_state", BtfKind.STRUCT, 3, 32, r.members(
        ("owner", first, 0), ("node", list_head, 64), ("count", u32, 192)))
    r.add("mod_state_t", BtfKind.TYPEDEF, 0, first + 1)
    r.add("list_head", BtfKind.STRUCT, 1, 8, r.members(("x", first, 0)))  # clashes: ___2
    path = tmp_path / "split.btf"
    path.write_bytes(r.encode())
    ours = dump_c(Btf.from_path(path, base=base))
    ref = bpftool("-B", VMLINUX, "btf", "dump", "file", path, "format", "c")
    assert ours == ref, show_diff(ours, ref, tmp_path)
    assert "struct list_head___2 {" in ours


def test_absurdly_deep_type_graph_is_a_btf_error() -> None:
    r = RawBtf()
    r.int_("int", 4, 1)
    depth = 30_000
    for i in range(depth):
        r.add("", BtfKind.PTR, 0, i + 1)
    r.add("deep", BtfKind.TYPEDEF, 0, depth + 1)
    btf = Btf.from_bytes(r.encode())
    with pytest.raises(BtfError, match="nested too deeply"):
        dump_c(btf)
