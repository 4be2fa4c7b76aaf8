"""The BTF model (`pybpf.btf.Btf`) checked against ground truth.

Truth comes from outside pybpf: gcc compiles the fixture's shared header into a host program
that prints real ``sizeof``/``_Alignof``/``offsetof``, bitfield positions and enum values;
libbpf (``btf__resolve_size``/``btf__align_of``/``btf__resolve_type``) is the oracle for the
layout helpers on every type; bpftool's raw dump is the oracle for names, kinds and ids.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from conftest import BUILD, FIXTURES, bpftool, btf_blob, compile_bpf
from pybpf import BpfError
from pybpf.btf import Btf, BtfKind
from pybpf.btf.types import (
    BtfEnum,
    BtfEnum64,
    BtfMember,
    BtfStruct,
    BtfTypedef,
    BtfUnion,
)

GCC = shutil.which("gcc")
FIXTURE_NAMES = ("btfkinds", "btfkinds_core")


# --------------------------------------------------------------------------------------- helpers


def elf_section(path: Path, name: str) -> bytes:
    """One section's bytes, read with pyelftools (independent of pybpf's ELF reader)."""
    with path.open("rb") as f:
        section = ELFFile(f).get_section_by_name(name)
        assert section is not None, f"{path} has no {name}"
        return bytes(section.data())


def fixture_btf(name: str) -> tuple[Path, Btf]:
    path = compile_bpf(name)
    return path, Btf.from_bytes(elf_section(path, ".BTF"), file=str(path))


def bpftool_kinds(text: str) -> dict[int, tuple[str, str]]:
    """``{id: (KIND, name)}`` parsed from a bpftool raw dump."""
    return {
        int(m[1]): (m[2], m[3])
        for m in re.finditer(r"^\[(\d+)\] (\w+) '([^']*)'", text, re.MULTILINE)
    }


@dataclass
class RawBtf:
    """A tiny raw-BTF writer for hand-made (split) BTF in tests.

    Deliberately independent of pybpf: it packs ``struct btf_type`` records by hand, so that
    bpftool, not our own encoder, is what gives the bytes their meaning.
    """

    base_str_len: int = 0
    first_id: int = 1
    strings: bytearray = field(default_factory=bytearray)
    types: list[bytes] = field(default_factory=list)
    _offs: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.base_str_len:
            self.strings += b"\0"

    def s(self, text: str) -> int:
        if not text:
            return 0
        if text not in self._offs:
            self._offs[text] = self.base_str_len + len(self.strings)
            self.strings += text.encode() + b"\0"
        return self._offs[text]

    def add(
        self,
        kind: BtfKind,
        name: str = "",
        vlen: int = 0,
        size_or_type: int = 0,
        kflag: bool = False,
        extra: bytes = b"",
    ) -> int:
        info = (int(kflag) << 31) | (int(kind) << 24) | vlen
        self.types.append(struct.pack("<III", self.s(name), info, size_or_type) + extra)
        return self.first_id + len(self.types) - 1

    def to_bytes(self) -> bytes:
        types = b"".join(self.types)
        return btf_blob(types, bytes(self.strings))


def build_split(base: Btf) -> bytes:
    """Split BTF on top of the btfkinds fixture using every kind and odd corner bpftool prints."""
    raw = RawBtf(base_str_len=len(base.string_bytes), first_id=base.end_id)
    u32 = lambda *v: struct.pack(f"<{len(v)}I", *v)  # noqa: E731
    bits = base.find_one("bk_bits", BtfKind.STRUCT)
    int_id = base.find_one("int", BtfKind.INT)
    weak = base.find_one("bk_weak_var", BtfKind.VAR)
    ptr = raw.add(BtfKind.PTR, size_or_type=bits)
    odd_int = raw.add(BtfKind.INT, "odd_int", size_or_type=4, extra=u32((3 << 24) | 24))
    raw.add(BtfKind.INT, "shifted", size_or_type=8, extra=u32((1 << 24) | (8 << 16) | 40))
    struct_id = raw.add(
        BtfKind.STRUCT,
        "split_s",
        3,
        16,
        kflag=True,
        extra=u32(
            raw.s("a"), int_id, (5 << 24) | 0, 0, odd_int, (7 << 24) | 5, raw.s("p"), ptr, 64
        ),
    )
    raw.add(BtfKind.UNION, "split_u", 2, 8, extra=u32(raw.s("x"), int_id, 0, raw.s("y"), ptr, 0))
    raw.add(
        BtfKind.ENUM,
        "split_e",
        2,
        4,
        kflag=True,
        extra=u32(raw.s("NEG"), 0xFFFFFFFE, raw.s("POS"), 9),
    )
    raw.add(BtfKind.ENUM, "split_ue", 1, 4, extra=u32(raw.s("UBIG"), 0xFFFFFFFF))
    raw.add(
        BtfKind.ENUM64,
        "split_e64",
        2,
        8,
        kflag=True,
        extra=u32(raw.s("S_NEG"), 0xFFFFFFFF, 0xFFFFFFFF, raw.s("S_POS"), 5, 1),
    )
    raw.add(BtfKind.ENUM64, "split_ue64", 1, 8, extra=u32(raw.s("U_TOP"), 0x12345678, 0x9ABCDEF0))
    raw.add(BtfKind.FWD, "split_fwd_u", kflag=True)
    raw.add(BtfKind.FWD, "split_fwd_s")
    raw.add(BtfKind.TYPEDEF, "split_alias_t", size_or_type=bits)
    raw.add(BtfKind.TYPEDEF, "split_s_t", size_or_type=struct_id)
    const = raw.add(BtfKind.CONST, size_or_type=int_id)
    vol = raw.add(BtfKind.VOLATILE, size_or_type=const)
    raw.add(BtfKind.RESTRICT, size_or_type=ptr)
    raw.add(BtfKind.TYPE_TAG, "user", size_or_type=vol)
    arr = raw.add(BtfKind.ARRAY, extra=u32(struct_id, int_id, 3))
    proto = raw.add(
        BtfKind.FUNC_PROTO,
        vlen=3,
        size_or_type=int_id,
        extra=u32(raw.s("first"), ptr, 0, int_id, 0, 0),
    )
    raw.add(BtfKind.FUNC, "split_extern_fn", vlen=2, size_or_type=proto)
    fn = raw.add(BtfKind.FUNC, "split_static_fn", vlen=0, size_or_type=proto)
    var = raw.add(BtfKind.VAR, "split_var", size_or_type=arr, extra=u32(0))
    raw.add(BtfKind.VAR, "split_extern_var", size_or_type=int_id, extra=u32(2))
    raw.add(BtfKind.DATASEC, ".data.split", 3, 64, extra=u32(var, 0, 48, weak, 48, 4, fn, 56, 0))
    raw.add(BtfKind.FLOAT, "split_float", size_or_type=16)
    raw.add(BtfKind.DECL_TAG, "tag_param", size_or_type=fn, extra=u32(2))
    raw.add(BtfKind.DECL_TAG, "tag_whole", size_or_type=struct_id, extra=struct.pack("<i", -1))
    raw.add(BtfKind.STRUCT, "split_s", 0, 0)  # a second 'split_s': find_one must refuse
    return raw.to_bytes()


# --------------------------------------------------------------------------------------- kinds


def test_fixtures_cover_every_btf_kind() -> None:
    ours: Counter[BtfKind] = Counter()
    theirs: Counter[str] = Counter()
    for name in FIXTURE_NAMES:
        path, btf = fixture_btf(name)
        ours.update(t.kind for t in btf)
        dump = bpftool("btf", "dump", "file", path)
        theirs.update(kind for kind, _ in bpftool_kinds(dump).values())
    assert {kind.name: n for kind, n in ours.items()} == dict(theirs)
    assert set(ours) == set(BtfKind) - {BtfKind.UNKN}


def test_names_and_kinds_match_bpftool() -> None:
    for name in FIXTURE_NAMES:
        path, btf = fixture_btf(name)
        truth = bpftool_kinds(bpftool("btf", "dump", "file", path))
        assert len(btf) == len(truth)
        for type_id, (kind, tname) in truth.items():
            assert btf.kind_of(type_id).name == kind
            assert (btf.name_of(type_id) or "(anon)") == tname


# --------------------------------------------------------------------------------------- host truth

STRUCTS = ("bk_bits", "bk_packed", "bk_aligned", "bk_anon", "bk_nested")
UNIONS = ("bk_union",)
ENUMS = ("bk_unsigned_enum", "bk_signed_enum", "bk_enum64", "bk_signed_enum64")
TYPEDEFS = ("bk_bits_t", "bk_bits_alias_t", "bk_binop_t")
BTF_INEXPRESSIBLE_ALIGN = {"struct bk_aligned", "struct bk_nested"}
"""``aligned(16)`` and ``__int128`` alignment cannot be recovered from BTF (libbpf agrees)."""


def leaf_members(
    btf: Btf, type_id: int, prefix: str = "", base_off: int = 0
) -> list[tuple[str, BtfMember, int]]:
    """(C access path, member, absolute bit offset) for each member, anonymous ones flattened."""
    t = btf[type_id]
    assert isinstance(t, BtfStruct | BtfUnion)
    out = []
    for m in t.members:
        if not m.name:
            out += leaf_members(btf, btf.resolve(m.type), prefix, base_off + m.offset)
        else:
            out.append((prefix + m.name, m, base_off + m.offset))
    return out


HOST_PRELUDE = """
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include "btfkinds.h"
static void bits(const char *what, const unsigned char *p, size_t n)
{
    int first = -1, count = 0;
    for (size_t i = 0; i < n * 8; i++)
        if (p[i / 8] >> (i % 8) & 1) { if (first < 0) first = i; count++; }
    printf("bitfield|%s|%d %d\\n", what, first, count);
}
#define VAL(x) do { if ((x) < 0) printf("enum|%s|%lld\\n", #x, (long long)(x)); \\
    else printf("enum|%s|%llu\\n", #x, (unsigned long long)(x)); } while (0)
int main(void)
{
"""


@pytest.fixture(scope="module")
def host_truth() -> dict[str, str]:
    """Run a gcc-built program printing the real layout of the fixture's types."""
    if GCC is None:
        pytest.skip("gcc is not installed")
    _, btf = fixture_btf("btfkinds")
    body: list[str] = []
    ctypes = [f"struct {n}" for n in STRUCTS] + [f"union {n}" for n in UNIONS]
    ctypes += [f"enum {n}" for n in ENUMS] + list(TYPEDEFS)
    for ctype in ctypes:
        body.append(f'printf("sizeof|{ctype}|%zu\\n", sizeof({ctype}));')
        body.append(f'printf("alignof|{ctype}|%zu\\n", _Alignof({ctype}));')
    for ctype in ctypes[: len(STRUCTS) + len(UNIONS)]:
        kind = BtfKind.STRUCT if ctype.startswith("struct") else BtfKind.UNION
        for path, m, _ in leaf_members(btf, btf.find_one(ctype.split()[1], kind)):
            key = f"{ctype}.{path}"
            if m.bitfield_size:
                body.append(
                    f"{{ {ctype} v; memset(&v, 0, sizeof(v)); v.{path} = -1; "
                    f'bits("{key}", (void *)&v, sizeof(v)); }}'
                )
            else:
                body.append(f'printf("offset|{key}|%zu\\n", offsetof({ctype}, {path}) * 8);')
                body.append(f'printf("msize|{key}|%zu\\n", sizeof((({ctype} *)0)->{path}));')
    for enum in ENUMS:
        t = btf[btf.find_one(enum)]
        assert isinstance(t, BtfEnum | BtfEnum64)
        body.extend(f"VAL({v.name});" for v in t.values)
    BUILD.mkdir(exist_ok=True)
    src = BUILD / "btfkinds_host.c"
    exe = BUILD / "btfkinds_host"
    src.write_text(HOST_PRELUDE + "\n".join("    " + line for line in body) + "\n\treturn 0;\n}\n")
    subprocess.run([GCC, "-O0", "-w", f"-I{FIXTURES}", str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    truth = {}
    for line in out.splitlines():
        what, key, value = line.split("|")
        truth[f"{what} {key}"] = value
    return truth


def ctype_id(btf: Btf, ctype: str) -> int:
    if ctype.startswith(("struct ", "union ", "enum ")):
        tag, name = ctype.split()
        kinds = {
            "struct": [BtfKind.STRUCT],
            "union": [BtfKind.UNION],
            "enum": [BtfKind.ENUM, BtfKind.ENUM64],
        }[tag]
        (found,) = [i for k in kinds for i in btf.find(name, k)]
        return found
    return btf.find_one(ctype, BtfKind.TYPEDEF)


def test_sizes_match_the_compiler(host_truth: dict[str, str]) -> None:
    _, btf = fixture_btf("btfkinds")
    sizes = {k.split(" ", 1)[1]: int(v) for k, v in host_truth.items() if k.startswith("sizeof ")}
    assert len(sizes) == len(STRUCTS) + len(UNIONS) + len(ENUMS) + len(TYPEDEFS)
    for ctype, size in sizes.items():
        assert btf.size_of(ctype_id(btf, ctype)) == size, ctype


def test_alignment_matches_the_compiler(host_truth: dict[str, str]) -> None:
    _, btf = fixture_btf("btfkinds")
    for key, value in host_truth.items():
        if key.startswith("alignof "):
            ctype = key.split(" ", 1)[1]
            if ctype in BTF_INEXPRESSIBLE_ALIGN:
                continue
            assert btf.align_of(ctype_id(btf, ctype)) == int(value), ctype
    # Packed is detected from member offsets, as libbpf does.
    assert btf.align_of(btf.find_one("bk_packed", BtfKind.STRUCT)) == 1


def test_member_offsets_and_bitfields_match_the_compiler(host_truth: dict[str, str]) -> None:
    _, btf = fixture_btf("btfkinds")
    checked = 0
    for tag, names in (("struct", STRUCTS), ("union", UNIONS)):
        for name in names:
            kind = BtfKind.STRUCT if tag == "struct" else BtfKind.UNION
            for path, m, bit_off in leaf_members(btf, btf.find_one(name, kind)):
                key = f"{tag} {name}.{path}"
                if m.bitfield_size:
                    first, count = map(int, host_truth[f"bitfield {key}"].split())
                    assert (bit_off, m.bitfield_size) == (first, count), key
                else:
                    assert bit_off == int(host_truth[f"offset {key}"]), key
                    assert btf.size_of(m.type) == int(host_truth[f"msize {key}"]), key
                checked += 1
    assert checked >= 40


def test_enum_values_match_the_compiler(host_truth: dict[str, str]) -> None:
    _, btf = fixture_btf("btfkinds")
    values = {k.split(" ", 1)[1]: int(v) for k, v in host_truth.items() if k.startswith("enum ")}
    seen = {}
    for enum in ENUMS:
        t = btf[btf.find_one(enum)]
        assert isinstance(t, BtfEnum | BtfEnum64)
        assert t.signed == any(v.value < 0 for v in t.values), enum
        seen.update({v.name: v.value for v in t.values})
    assert seen == values
    assert isinstance(btf[btf.find_one("bk_enum64")], BtfEnum64)
    assert isinstance(btf[btf.find_one("bk_signed_enum")], BtfEnum)


# --------------------------------------------------------------------------------------- libbpf

LIBBPF_ORACLE = r"""
#include <stdio.h>
#include <bpf/btf.h>
int main(int argc, char **argv)
{
    const char *base_path = argc > 2 && argv[2][0] ? argv[2] : NULL;
    struct btf *base = base_path ? btf__parse(base_path, NULL) : NULL;
    struct btf *btf = btf__parse_split(argv[1], base);
    if (!btf || (base_path && !base))
        return 2;
    int step = argc > 3 ? atoi(argv[3]) : 1;
    for (unsigned id = base ? btf__type_cnt(base) : 1; id < btf__type_cnt(btf); id += step)
        printf("%u %lld %d %d\n", id, (long long)btf__resolve_size(btf, id),
               btf__align_of(btf, id), btf__resolve_type(btf, id));
    return 0;
}
"""


@pytest.fixture(scope="module")
def libbpf_oracle() -> Path:
    if GCC is None or not Path("/usr/include/bpf/btf.h").exists():
        pytest.skip("gcc or libbpf-dev missing")
    BUILD.mkdir(exist_ok=True)
    src, exe = BUILD / "btf_layout_oracle.c", BUILD / "btf_layout_oracle"
    src.write_text("#include <stdlib.h>\n" + LIBBPF_ORACLE)
    subprocess.run([GCC, "-O2", "-w", str(src), "-o", str(exe), "-lbpf"], check=True)
    return exe


def compare_with_libbpf(btf: Btf, oracle: Path, *args: str | Path) -> int:
    """Check size_of/align_of/resolve on every type libbpf reports; returns how many."""
    out = subprocess.run(
        [str(oracle), *map(str, args)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    count = 0
    for line in out.splitlines():
        type_id, size, align, resolved = map(int, line.split())
        kind = btf.kind_of(type_id)
        if kind != BtfKind.DECL_TAG:  # libbpf sizes a DECL_TAG as its target; we refuse
            if size >= 0:
                assert btf.size_of(type_id) == size, type_id
            else:
                with pytest.raises(BpfError):
                    btf.size_of(type_id)
        if align > 0:
            assert btf.align_of(type_id) == align, type_id
        else:
            with pytest.raises(BpfError):
                btf.align_of(type_id)
        if kind == BtfKind.VAR:  # libbpf's resolve also steps through VARs; ours stops
            pass
        elif resolved >= 0:
            assert btf.resolve(type_id) == resolved, type_id
        else:  # libbpf's -EINVAL: the chain ends in void or a FWD (libbpf's "void or null")
            end = btf.resolve(type_id)
            assert end == 0 or btf.kind_of(end) == BtfKind.FWD, type_id
        count += 1
    return count


def test_layout_helpers_match_libbpf_on_fixtures(libbpf_oracle: Path) -> None:
    for name in FIXTURE_NAMES:
        path, btf = fixture_btf(name)
        assert compare_with_libbpf(btf, libbpf_oracle, path) == len(btf)


@pytest.mark.skipif(not Path("/sys/kernel/btf/vmlinux").exists(), reason="no vmlinux BTF")
def test_layout_helpers_match_libbpf_on_vmlinux(libbpf_oracle: Path) -> None:
    btf = Btf.vmlinux()
    # Every 3rd type keeps this around a second while covering thousands of structs and unions
    # (all types were checked once during development: all agree).
    assert compare_with_libbpf(btf, libbpf_oracle, btf.file or "", "", "3") >= len(btf) // 3


# --------------------------------------------------------------------------------------- lookup


def test_find_and_resolve_match_bpftool() -> None:
    path, btf = fixture_btf("btfkinds")
    truth = bpftool_kinds(bpftool("btf", "dump", "file", path))
    by_name: dict[str, list[int]] = {}
    for type_id, (_, tname) in sorted(truth.items()):
        if tname != "(anon)":
            by_name.setdefault(tname, []).append(type_id)
    for tname, ids in by_name.items():
        assert btf.find(tname) == ids
        for kind in {BtfKind[truth[i][0]] for i in ids}:
            assert btf.find(tname, kind) == [i for i in ids if truth[i][0] == kind.name]
    assert btf.find("no_such_type") == []
    alias = btf.find_one("bk_bits_alias_t", BtfKind.TYPEDEF)
    assert btf.resolve(alias) == btf.find_one("bk_bits", BtfKind.STRUCT)
    t = btf[alias]
    assert isinstance(t, BtfTypedef) and btf[t.type].name == "bk_bits_t"
    with pytest.raises(BpfError, match="no STRUCT type named 'bk_bits_t'"):
        btf.find_one("bk_bits_t", BtfKind.STRUCT)


# --------------------------------------------------------------------------------------- split


@pytest.fixture(scope="module")
def split_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    path, base = fixture_btf("btfkinds")
    tmp = tmp_path_factory.mktemp("split")
    base_file, split_file = tmp / "base.btf", tmp / "split.btf"
    base_file.write_bytes(elf_section(path, ".BTF"))
    split_file.write_bytes(build_split(base))
    return base_file, split_file


def test_split_btf_ids_names_and_lookup(split_files: tuple[Path, Path]) -> None:
    base_file, split_file = split_files
    base = Btf.from_path(base_file)
    split = Btf.from_path(split_file, base=base)
    truth = bpftool_kinds(bpftool("btf", "dump", "file", split_file, "-B", base_file))
    assert split.start_id == base.end_id == min(truth)
    assert list(split.type_ids()) == sorted(truth)
    for type_id, (kind, tname) in truth.items():
        assert (split.kind_of(type_id).name, split.name_of(type_id) or "(anon)") == (kind, tname)
    # Base ids are reachable through the split BTF, base first in find().
    bits = base.find_one("bk_bits", BtfKind.STRUCT)
    assert split[bits] == base[bits]
    assert split.find("bk_bits") == [bits]
    alias = split.find_one("split_alias_t")
    assert alias >= split.start_id and split.resolve(alias) == bits
    assert split.size_of(split.find_one("split_var")) == 3 * 16
    with pytest.raises(BpfError, match="2 STRUCT types named 'split_s'"):
        split.find_one("split_s", BtfKind.STRUCT)


def test_split_btf_layout_matches_libbpf(
    split_files: tuple[Path, Path], libbpf_oracle: Path
) -> None:
    base_file, split_file = split_files
    split = Btf.from_path(split_file, base=Btf.from_path(base_file))
    assert compare_with_libbpf(split, libbpf_oracle, split_file, base_file) == len(split)
