"""BTF deduplication, checked against libbpf itself.

Oracles:
- libbpf 1.1's ``btf__dedup`` (the system libbpf, through a small C driver compiled here) on
  the very same input blob: our result must be the same types under the same ids;
- libbpf's static linker (``bpf_linker``, same driver) and ``bpftool gen object`` (bpftool
  7.1 bundles an older dedup without the 1.1 forward-declaration rules) on the fixture
  objects;
- the fixtures' C sources, for what must have merged and what must not.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from conftest import BUILD, bpftool, compile_bpf, requires_root
from pybpf.btf.btf import Btf
from pybpf.btf.builder import BtfBuilder, map_type_ids
from pybpf.btf.dedup import dedup
from pybpf.btf.types import (
    BtfArray,
    BtfConst,
    BtfDeclTag,
    BtfEnum,
    BtfEnum64,
    BtfEnumValue,
    BtfFunc,
    BtfFuncProto,
    BtfFwd,
    BtfInt,
    BtfKind,
    BtfMember,
    BtfParam,
    BtfPtr,
    BtfStruct,
    BtfType,
    BtfTypedef,
    BtfUnion,
    BtfVar,
    FuncLinkage,
    IntEncoding,
)
from pybpf.errors import BtfError

FIXTURES = ("dedup_a", "dedup_b", "dedup_c")

ORACLE_C = r"""
/* btf_oracle dedup IN OUT [BASE]: btf__dedup() of raw BTF IN (split over BASE), to OUT.
 * btf_oracle link OUT IN...: libbpf's static linker, as bpftool gen object uses it. */
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <string.h>

static int do_dedup(int argc, char **argv)
{
	struct btf *base = NULL, *btf;
	const void *data;
	__u32 size;
	FILE *out;

	if (argc > 4 && !(base = btf__parse_raw(argv[4])))
		return 10;
	btf = base ? btf__parse_raw_split(argv[2], base) : btf__parse_raw(argv[2]);
	if (!btf)
		return 11;
	if (btf__dedup(btf, NULL))
		return 12;
	data = btf__raw_data(btf, &size);
	out = fopen(argv[3], "wb");
	if (!out || fwrite(data, 1, size, out) != size || fclose(out))
		return 13;
	return 0;
}

static int do_link(int argc, char **argv)
{
	struct bpf_linker *linker = bpf_linker__new(argv[2], NULL);
	int i;

	if (!linker)
		return 20;
	for (i = 3; i < argc; i++)
		if (bpf_linker__add_file(linker, argv[i], NULL))
			return 21;
	if (bpf_linker__finalize(linker))
		return 22;
	bpf_linker__free(linker);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 3 && !strcmp(argv[1], "dedup"))
		return do_dedup(argc, argv);
	if (argc > 3 && !strcmp(argv[1], "link"))
		return do_link(argc, argv);
	return 2;
}
"""


# ------------------------------------------------------------------------- oracle plumbing


@pytest.fixture(scope="session")
def oracle() -> Path:
    """The C driver over the system libbpf, built once (rebuilt when its source changes)."""
    BUILD.mkdir(exist_ok=True)
    src = BUILD / "btf_oracle.c"
    exe = BUILD / "btf_oracle"
    if not exe.exists() or not src.exists() or src.read_text() != ORACLE_C:
        src.write_text(ORACLE_C)
        try:
            subprocess.run(
                ["gcc", "-O2", "-o", str(exe), str(src), "-lbpf"], check=True, capture_output=True
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"cannot build the libbpf oracle (gcc, libbpf-dev): {exc}")
    return exe


def run_oracle(oracle: Path, *args: str | Path) -> None:
    result = subprocess.run([str(oracle), *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, f"libbpf oracle {args[0]} failed: {result.stderr}"


def libbpf_dedup(oracle: Path, data: bytes, name: str, base: Path | None = None) -> Btf:
    src, out = BUILD / f"{name}.in.btf", BUILD / f"{name}.libbpf.btf"
    src.write_bytes(data)
    run_oracle(oracle, "dedup", src, out, *([base] if base else []))
    return Btf.from_path(out, base=Btf.from_path(base) if base else None)


def section_btf(obj: Path) -> Btf:
    with obj.open("rb") as f:
        section = ELFFile(f).get_section_by_name(".BTF")
        assert section is not None
        return Btf.from_bytes(section.data(), file=str(obj))


def objects(names: Sequence[str] = FIXTURES) -> list[Path]:
    return [compile_bpf(name) for name in names]


def concatenated(objs: Sequence[Path]) -> BtfBuilder:
    """Every object's BTF, one after the other."""
    builder = BtfBuilder()
    for obj in objs:
        builder.add_all(section_btf(obj))
    return builder


def linker_input(objs: Sequence[Path]) -> BtfBuilder:
    """The BTF libbpf's linker dedups, for objects sharing no global symbol: all types of all
    objects in order except DATASECs, which the linker rebuilds and appends at the end."""
    builder = BtfBuilder()
    for obj in objs:
        btf = section_btf(obj)
        new_ids = [0]
        for t in btf:  # nothing refers to a DATASEC: later ids just move down
            new_ids.append(new_ids[-1] + (t.kind != BtfKind.DATASEC))
        part = BtfBuilder()
        for t in btf:
            if t.kind != BtfKind.DATASEC:
                part.add(map_type_ids(t, new_ids.__getitem__))
        builder.add_all(part)
    return builder


def assert_same_btf(ours: BtfBuilder, theirs: Btf | Sequence[BtfType]) -> None:
    expected = list(theirs)
    got = ours.types()
    assert len(got) == len(expected), f"{len(got)} types, libbpf has {len(expected)}"
    for index, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a == b, f"type #{ours.start_id + index}: ours {a}, libbpf {b}"


# ------------------------------------------------------------------------- against btf__dedup


@pytest.mark.oracle
@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2)])
def test_same_result_as_libbpf_dedup(oracle: Path, order: tuple[int, ...]) -> None:
    source = concatenated(objects([FIXTURES[i] for i in order]))
    theirs = libbpf_dedup(oracle, source.encode(), "fixtures" + "".join(map(str, order)))
    ours, remap = dedup(source)
    assert_same_btf(ours, theirs)
    assert len(remap) == source.end_id


@pytest.mark.oracle
def test_same_result_as_libbpf_linker(oracle: Path) -> None:
    """Our dedup of what the linker appends equals the linked object's .BTF (less DATASECs)."""
    objs = objects()
    linked = BUILD / "dedup_linked.libbpf.o"
    run_oracle(oracle, "link", linked, *objs)
    theirs = [t for t in section_btf(linked) if t.kind != BtfKind.DATASEC]
    ours, _ = dedup(linker_input(objs))
    assert_same_btf(ours, theirs)


def _named(types: Sequence[BtfType]) -> set[tuple[BtfKind, str]]:
    return {(t.kind, t.name) for t in types if t.name}


def _describe(types: Sequence[BtfType], type_id: int, top: bool = True) -> Hashable:
    """A type as a value independent of ids: named types referred to by kind class and name
    (a FWD counts as its struct/union, a value-less ENUM as the enum), anonymous ones by
    their full description."""
    if type_id == 0:
        return "void"
    t = types[type_id - 1]
    if isinstance(t, BtfFwd):
        return ("union" if t.is_union else "struct", t.name)
    if isinstance(t, BtfEnum | BtfEnum64) and not t.values and not top:
        return ("enum", t.name)
    if t.name and not top and t.kind in (BtfKind.STRUCT, BtfKind.UNION):
        return ("union" if t.kind == BtfKind.UNION else "struct", t.name)
    if t.name and not top and t.kind in (BtfKind.ENUM, BtfKind.ENUM64):
        return ("enum", t.name)
    refs = [_describe(types, r, False) for r in _refs(t)]
    fields = [(k, v) for k, v in _fields(t) if k != "type"]
    return (t.kind.name, t.name, tuple(fields), tuple(refs))


def _refs(t: BtfType) -> tuple[int, ...]:
    if isinstance(t, BtfStruct | BtfUnion):
        return tuple(m.type for m in t.members)
    if isinstance(t, BtfFuncProto):
        return (t.return_type, *(p.type for p in t.params))
    if isinstance(t, BtfArray):
        return (t.type, t.index_type)
    if isinstance(t, BtfInt | BtfEnum | BtfEnum64 | BtfFwd) or not hasattr(t, "type"):
        return ()
    return (t.type,)


def _fields(t: BtfType) -> list[tuple[str, Hashable]]:
    out: list[tuple[str, Hashable]] = []
    for slot in type(t).__slots__:
        value = getattr(t, slot)
        if isinstance(value, tuple):
            value = tuple(
                tuple(getattr(v, s) for s in type(v).__slots__ if s != "type") for v in value
            )
        if slot not in ("type", "index_type", "return_type"):
            out.append((slot, value))
    return out


@pytest.mark.oracle
def test_against_bpftool_gen_object() -> None:
    """bpftool 7.1's linker leaves alone some FWDs that libbpf 1.1 resolves; otherwise the
    same types: no more of them, the same named types, the same types modulo ordering."""
    objs = objects()
    linked = BUILD / "dedup_linked.bpftool.o"
    bpftool("gen", "object", linked, *objs)
    theirs = [t for t in section_btf(linked) if t.kind != BtfKind.DATASEC]
    ours = dedup(linker_input(objs))[0].types()
    assert len(ours) <= len(theirs)
    assert _named(ours) <= _named(theirs)
    ours_full = {(k, n) for k, n in _named(ours) if k != BtfKind.FWD}
    for kind, name in _named(theirs) - _named(ours):
        assert kind == BtfKind.FWD and (
            (BtfKind.STRUCT, name) in ours_full or (BtfKind.UNION, name) in ours_full
        ), f"bpftool has {kind.name} '{name}', we do not"

    def canonical(types: list[BtfType]) -> set[Hashable]:
        return {
            _describe(types, i + 1)
            for i, t in enumerate(types)
            if not isinstance(t, BtfFwd)
            and not (isinstance(t, BtfEnum | BtfEnum64) and not t.values)
        }

    assert canonical(ours) == canonical(theirs)


# ------------------------------------------------------------------------- what the C says


def test_fixture_types_merge_as_the_sources_say() -> None:
    source = linker_input(objects())
    types = dedup(source)[0].types()
    count = Counter((t.kind, t.name) for t in types)
    for name in ("list_node", "ping", "pong", "forest", "holder", "flags", "ops", "tree"):
        assert count[BtfKind.STRUCT, name] == 1, name
    assert count[BtfKind.UNION, "opaque_u"] == 1
    assert count[BtfKind.FWD, "tree"] == count[BtfKind.FWD, "opaque_u"] == 0  # via graphs
    assert count[BtfKind.STRUCT, "lone"] == 1 and count[BtfKind.FWD, "lone"] == 0  # by name
    assert count[BtfKind.STRUCT, "amb"] == 2 and count[BtfKind.FWD, "amb"] == 1  # ambiguous
    assert count[BtfKind.STRUCT, "conflict"] == 2
    enums = [t for t in types if isinstance(t, BtfEnum) and t.name == "opaque_e"]
    assert [len(e.values) for e in enums] == [2]  # `enum opaque_e;` joined the definition
    assert count[BtfKind.ENUM, "color"] == count[BtfKind.ENUM64, "big"] == 1
    assert count[BtfKind.TYPEDEF, "visit_fn"] == count[BtfKind.TYPEDEF, "u32_t"] == 1
    assert count[BtfKind.FUNC, "helper"] == 1  # static, same prototype in two objects
    assert count[BtfKind.DECL_TAG, "holder"] == count[BtfKind.DECL_TAG, "counted"] == 1
    assert count[BtfKind.TYPE_TAG, "user"] == 1
    anon_unions = [t for t in types if isinstance(t, BtfUnion) and not t.name]
    assert [[m.name for m in u.members] for u in anon_unions] == [["i", "f"]]
    for kind, name in count:
        if kind in (BtfKind.INT, BtfKind.FLOAT):
            assert count[kind, name] == 1, name
    forest = next(t for t in types if isinstance(t, BtfStruct) and t.name == "forest")
    trees = types[forest.members[0].type - 1]
    assert isinstance(trees, BtfArray)
    pointer = types[trees.type - 1]
    assert isinstance(pointer, BtfPtr)
    assert types[pointer.type - 1].kind == BtfKind.STRUCT


def test_remap_points_at_the_same_types() -> None:
    source = concatenated(objects())
    ours, remap = dedup(source)
    assert remap[0] == 0
    for old_id in source.type_ids():
        old, new = source[old_id], ours[remap[old_id]]
        assert new.name == old.name
        if isinstance(old, BtfFwd):
            assert new.kind in (BtfKind.FWD, BtfKind.STRUCT, BtfKind.UNION)
        elif isinstance(old, BtfEnum) and not old.values:
            assert new.kind in (BtfKind.ENUM, BtfKind.ENUM64)
        else:
            assert new.kind == old.kind
            assert new == map_type_ids(old, remap.__getitem__), old_id


def test_deterministic_and_idempotent() -> None:
    source = concatenated(objects())
    first, remap = dedup(source)
    second, remap2 = dedup(source)
    assert first.encode() == second.encode() and remap == remap2
    again, identity = dedup(first)
    assert again.types() == first.types()
    assert identity == list(range(first.end_id))


def test_dedup_accepts_a_btf_and_keeps_extra_strings() -> None:
    source = concatenated(objects())
    off = source.add_string("dedup_a.bpf.c line text")
    out, _ = dedup(source)
    assert out.add_string("dedup_a.bpf.c line text") == off
    from_btf, _ = dedup(source.to_btf())
    assert from_btf.types() == out.types()


@requires_root
@pytest.mark.kernel
def test_kernel_accepts_deduplicated_btf() -> None:
    from pybpf.kernel.btf import btf_load

    out, _ = dedup(linker_input(objects()))
    btf_load(out.encode(), log_level=1).fd.close()


# ------------------------------------------------------------------------- vmlinux


@pytest.mark.oracle
def test_vmlinux_twice(oracle: Path) -> None:
    """vmlinux is pahole-deduplicated: appending it to itself must fold the copy back onto
    the original, all but its VARs and DATASEC, which dedup never merges."""
    vmlinux = Btf.vmlinux()
    source = BtfBuilder.from_btf(vmlinux)
    shift = source.add_all(vmlinux)
    started = time.perf_counter()
    ours, remap = dedup(source)
    elapsed = time.perf_counter() - started
    print(f"dedup of vmlinux x2 ({len(source)} types -> {len(ours)}): {elapsed:.2f}s")
    assert elapsed < 30
    never_merged = [t for t in vmlinux if t.kind in (BtfKind.VAR, BtfKind.DATASEC)]
    assert len(ours) == len(vmlinux) + len(never_merged)
    for type_id in vmlinux.type_ids():  # the first copy stays exactly as it was
        assert ours[type_id] == vmlinux[type_id]
        if vmlinux.kind_of(type_id) not in (BtfKind.VAR, BtfKind.DATASEC):
            assert remap[type_id + shift] == type_id
    assert [t.name for t in ours.types()[len(vmlinux) :]] == [t.name for t in never_merged]
    theirs = libbpf_dedup(oracle, source.encode(), "vmlinux2")
    assert_same_btf(ours, theirs)


def test_vmlinux_alone_is_a_fixed_point() -> None:
    vmlinux = Btf.vmlinux()
    ours, remap = dedup(vmlinux)
    assert len(ours) == len(vmlinux)
    assert remap == list(range(vmlinux.end_id))


@pytest.mark.oracle
def test_split_btf_over_vmlinux(oracle: Path) -> None:
    """Like a kernel module: types deduplicate into vmlinux's where they can."""
    vmlinux = Btf.vmlinux()
    source = BtfBuilder(vmlinux)
    for obj in objects():
        source.add_all(section_btf(obj))
    ours, remap = dedup(source)
    theirs = libbpf_dedup(
        oracle, source.encode(), "split", base=Path("/sys/kernel/btf/vmlinux")
    )
    assert ours.start_id == theirs.start_id == vmlinux.end_id
    assert_same_btf(ours, list(theirs))
    int_id = vmlinux.find_one("int", BtfKind.INT)
    assert int_id in remap  # the objects' 'int' became vmlinux's


# ------------------------------------------------------------------------- random graphs


class _Universe:
    """Random C-like type declarations, and compilation units that use parts of them.

    Each unit's BTF is what a compiler would emit: one BTF type per C type, structs it only
    points to (without defining) as FWDs.  Different units may define different structs
    under one name, which is where dedup has to tell them apart.
    """

    def __init__(self, rng: random.Random, n_structs: int) -> None:
        self.rng = rng
        self.n = n_structs
        names = [f"s{i}" for i in range(n_structs)]
        names[-1] = names[0]  # two different structs with one name, never in one unit
        self.structs: list[tuple[str, bool, list[tuple[object, ...]]]] = []
        for i, name in enumerate(names):
            members = [self._member_type(i) for _ in range(rng.randint(1, 4))]
            self.structs.append((name, rng.random() < 0.2, members))

    def _member_type(self, me: int) -> tuple[object, ...]:
        """Embedding only goes to lower indices above 0 (both s0s embed nothing and are never
        embedded), so there are no embedding cycles whichever s0 a unit picks."""
        r = self.rng.random()
        if r < 0.3:
            return ("int", self.rng.choice(["int", "long", "char"]))
        if r < 0.6:
            return ("ptr", self.rng.randrange(self.n))
        if r < 0.7 and 1 < me < self.n - 1:
            return ("embed", self.rng.randrange(1, me))
        if r < 0.75:
            return ("array", self.rng.choice(["int", "char"]), self.rng.randint(1, 4))
        if r < 0.8:  # an anonymous struct: a new C type at each occurrence
            return ("anon", self.rng.randrange(self.n), self.rng.random())
        if r < 0.85:  # the compiler's occasional second copy of an array type
            return ("dup_array", self.rng.randint(1, 3), self.rng.random())
        if r < 0.9:
            return ("fnptr", self.rng.randrange(self.n))
        return ("enum", self.rng.choice(["e0", "e1"]), self.rng.random() < 0.3)

    def unit(self, wanted: set[int], share: bool = True) -> BtfBuilder:
        """A unit defining ``wanted`` (and what they embed).  Unless ``share``, each anonymous
        struct and "dup_array" member gets its own identical copy, as compilers sometimes
        emit, which only libbpf's identical-array/struct allowances can match."""
        last = self.n - 1
        alias = {0: last} if last in wanted else {last: 0}  # this unit's s0
        defined: set[int] = set()
        todo = [alias.get(i, i) for i in wanted]
        while todo:  # a struct embedded in a defined one must be defined too
            index = todo.pop()
            if index not in defined:
                defined.add(index)
                todo.extend(int(str(m[1])) for m in self.structs[index][2] if m[0] == "embed")
        b = BtfBuilder()
        memo: dict[tuple[object, ...], int] = {}

        def get(key: tuple[object, ...]) -> int:
            if key in memo:
                return memo[key]
            kind = key[0]
            if kind == "int":
                size = {"int": 4, "long": 8, "char": 1}[str(key[1])]
                t: BtfType = BtfInt(str(key[1]), size, IntEncoding.SIGNED, 0, size * 8)
                memo[key] = b.add(t)
            elif kind == "ptr":
                target = int(str(key[1]))
                memo[key] = b.add(BtfPtr(0))
                b.replace(memo[key], BtfPtr(get(("struct", target))))
            elif kind == "struct":
                index = int(str(key[1]))
                if index in alias:
                    memo[key] = get(("struct", alias[index]))
                    return memo[key]
                name, is_union, members = self.structs[index]
                if index not in defined:
                    memo[key] = b.add(BtfFwd(name, is_union))
                    return memo[key]
                memo[key] = b.add(BtfStruct(name, 0, ()))
                built = tuple(
                    BtfMember(f"m{k}", get(mtype), 0 if is_union else 64 * k)
                    for k, mtype in enumerate(members)
                )
                cls = BtfUnion if is_union else BtfStruct
                b.replace(memo[key], cls(name, 64 * len(built), built))
            elif kind == "embed":
                memo[key] = get(("struct", key[1]))
            elif kind == "array":
                elem = get(("int", key[1]))
                index_type = get(("int", "int"))
                memo[key] = b.add(BtfArray(elem, index_type, int(str(key[2]))))
            elif kind == "anon":
                if share and len(key) == 3:
                    memo[key] = get(key[:2])
                    return memo[key]
                ptr = get(("ptr", key[1]))
                members = (BtfMember("a", get(("int", "int")), 0), BtfMember("p", ptr, 64))
                memo[key] = b.add(BtfStruct("", 16, members))
            elif kind == "dup_array":
                if share and len(key) == 3:
                    memo[key] = get(key[:2])
                    return memo[key]
                elem, index_type = get(("int", "long")), get(("int", "int"))
                memo[key] = b.add(BtfArray(elem, index_type, int(str(key[1]))))
            elif kind == "fnptr":
                ret = get(("int", "int"))
                arg = get(("ptr", key[1]))
                proto = b.add(BtfFuncProto(ret, (BtfParam("", arg), BtfParam("", 0))))
                memo[key] = b.add(BtfPtr(b.add(BtfConst(proto))))
            elif kind == "enum":
                name, fwd = str(key[1]), bool(key[2])
                values = () if fwd else (BtfEnumValue(f"{name}_A", 1),)
                memo[key] = b.add(BtfEnum(name, 4, values))
            return memo[key]

        for index in sorted(defined):
            struct_id = get(("struct", index))
            name = self.structs[index][0]
            b.add(BtfVar(f"v_{name}_{index}", b.add(BtfTypedef(f"{name}_t", struct_id))))
            if index % 3 == 0:
                b.add(BtfDeclTag("tagged", struct_id, -1))
        proto = b.add(BtfFuncProto(get(("int", "int")), ()))
        b.add(BtfFunc("prog", proto, FuncLinkage.GLOBAL))
        return b


@pytest.mark.oracle
@pytest.mark.parametrize("seed", range(40))
def test_random_units_same_as_libbpf(oracle: Path, seed: int) -> None:
    source = _random_source(seed)
    theirs = libbpf_dedup(oracle, source.encode(), f"random{seed}")
    ours, _ = dedup(source)
    assert_same_btf(ours, theirs)


def _random_source(seed: int, base: Btf | None = None) -> BtfBuilder:
    rng = random.Random(seed)
    universe = _Universe(rng, rng.randint(4, 12))
    n = len(universe.structs)
    source = BtfBuilder(base)
    for _ in range(rng.randint(2, 5)):
        wanted = {i for i in range(n) if rng.random() < 0.5}
        source.add_all(universe.unit(wanted, share=rng.random() < 0.5))
    return source


@pytest.mark.oracle
@pytest.mark.parametrize("seed", range(15))
def test_random_split_units_same_as_libbpf(oracle: Path, seed: int) -> None:
    """Split BTF over a base holding other random units: base types are canonical already,
    base FWDs may only be pointed at split structs, never merged away."""
    base_path = BUILD / f"random_base{seed}.btf"
    base_path.write_bytes(_random_source(seed + 1000).encode())
    base = Btf.from_path(base_path)
    source = _random_source(seed, base)
    theirs = libbpf_dedup(oracle, source.encode(), f"random_split{seed}", base=base_path)
    ours, _ = dedup(source)
    assert_same_btf(ours, list(theirs))


@pytest.mark.oracle
def test_split_struct_completing_a_base_fwd_stays_apart(oracle: Path) -> None:
    """A base struct whose member points to a base FWD is not the split struct pointing to
    the full definition: the base cannot change, so both stay (libbpf's hypot_adjust_canon)."""
    b = BtfBuilder()
    int_id = b.add(BtfInt("int", 4, IntEncoding.SIGNED, 0, 32))
    fwd = b.add(BtfFwd("foo"))
    b.add(BtfStruct("bar", 8, (BtfMember("p", b.add(BtfPtr(fwd)), 0),)))
    base_path = BUILD / "fwd_base.btf"
    base_path.write_bytes(b.encode())
    base = Btf.from_path(base_path)
    split = BtfBuilder(base)
    foo = split.add(BtfStruct("foo", 4, (BtfMember("x", int_id, 0),)))
    split.add(BtfStruct("bar", 8, (BtfMember("p", split.add(BtfPtr(foo)), 0),)))
    split.add(BtfPtr(fwd))  # a split reference to the base FWD
    theirs = libbpf_dedup(oracle, split.encode(), "fwd_split", base=base_path)
    ours, remap = dedup(split)
    assert_same_btf(ours, list(theirs))
    assert [t.name for t in ours if isinstance(t, BtfStruct)] == ["foo", "bar"]
    assert remap[fwd] == remap[foo]  # references to the base FWD now reach the split struct


def test_reference_loop_without_a_struct_is_an_error() -> None:
    b = BtfBuilder()
    first = b.add(BtfPtr(2))
    b.add(BtfConst(first))
    with pytest.raises(BtfError, match="reference loop"):
        dedup(b)


def test_struct_member_of_kind_var_is_an_error() -> None:
    """Invalid BTF (libbpf answers EINVAL): the equivalence check meets two VARs."""
    b = BtfBuilder()
    int_id = b.add(BtfInt("int", 4, IntEncoding.SIGNED, 0, 32))
    first, second = b.add(BtfVar("v", int_id)), b.add(BtfVar("v", int_id))
    b.add(BtfStruct("s", 4, (BtfMember("m", first, 0),)))
    b.add(BtfStruct("s", 4, (BtfMember("m", second, 0),)))
    with pytest.raises(BtfError, match="VAR"):
        dedup(b)


def _unit_with_copies(copies: bool) -> BtfBuilder:
    """struct S { long a[2]; long b[2]; struct { int x; } c, d; } as one compiler writes it
    (one array type, one anonymous struct) or as another does (a copy for each member)."""
    b = BtfBuilder()
    int_id = b.add(BtfInt("int", 4, IntEncoding.SIGNED, 0, 32))
    long_id = b.add(BtfInt("long", 8, IntEncoding.SIGNED, 0, 64))
    arrays = [b.add(BtfArray(long_id, int_id, 2)) for _ in range(2 if copies else 1)]
    inner = [
        b.add(BtfStruct("", 4, (BtfMember("x", int_id, 0),))) for _ in range(2 if copies else 1)
    ]
    members = (
        BtfMember("a", arrays[0], 0),
        BtfMember("b", arrays[-1], 128),
        BtfMember("c", inner[0], 256),
        BtfMember("d", inner[-1], 288),
    )
    b.add(BtfStruct("S", 40, members))
    return b


@pytest.mark.oracle
@pytest.mark.parametrize("first_copies", [False, True])
def test_identical_copies_within_a_unit_still_merge(oracle: Path, first_copies: bool) -> None:
    source = BtfBuilder()
    source.add_all(_unit_with_copies(first_copies))
    source.add_all(_unit_with_copies(not first_copies))
    theirs = libbpf_dedup(oracle, source.encode(), f"copies{int(first_copies)}")
    ours, _ = dedup(source)
    assert_same_btf(ours, list(theirs))
    assert sum(isinstance(t, BtfStruct) and t.name == "S" for t in ours) == 1
