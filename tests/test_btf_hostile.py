"""Hostile BTF: reference cycles and absurd layouts end in a `BtfError` or in output, quickly.

Two families of input that a fuzzer found, and that bpftool itself mishandles:

* **Cycles** no struct or union breaks (a PTR to itself, an ARRAY of itself, a TYPEDEF of
  itself, CONST -> VOLATILE -> CONST, a prototype taking a pointer to itself), used by a
  global variable.  The kernel refuses such BTF ("Loop detected"); every pybpf entry point
  must either answer or raise a `BtfError` naming a type of the cycle, never recurse until
  ``RecursionError`` or loop forever.  Cycles through a *named* struct are ordinary C
  (``struct list { struct list *next; }``) and must still dump exactly as bpftool does.
* **Layouts** no C compiler can mean: a struct whose size says 4 GiB would print hundreds of
  millions of padding lines.  bpftool computes bit offsets in an ``int``; the C dumper refuses
  what reaches 2^31 bits, and streams what it prints so memory stays flat.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from conftest import bpftool
from pybpf.btf import Btf, BtfKind
from pybpf.btf.builder import BtfBuilder
from pybpf.btf.c_dump import FOOTER, HEADER, CDumper, dump_c, write_c
from pybpf.btf.dedup import dedup
from pybpf.btf.dump_raw import dump_raw
from pybpf.btf.layout import TypeLayout
from pybpf.btf.types import BtfVar
from pybpf.errors import BtfError
from test_btf_model import RawBtf

FILE = "hostile.btf"
pytestmark = pytest.mark.timeout(60)


def u32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


def parse(raw: RawBtf) -> Btf:
    return Btf.from_bytes(raw.to_bytes(), file=FILE, section=None)


def add_global(raw: RawBtf, type_id: int, name: str = "g", size: int = 8) -> int:
    """A global ``name`` of ``type_id`` in ``.data``, as clang describes one."""
    var = raw.add(BtfKind.VAR, name, size_or_type=type_id, extra=u32(1))
    raw.add(BtfKind.DATASEC, ".data", 1, size, extra=u32(var, 0, size))
    return var


# --------------------------------------------------------------------------------- cycles


def ptr_to_itself(raw: RawBtf) -> set[int]:
    ptr = raw.add(BtfKind.PTR, size_or_type=raw.first_id)
    add_global(raw, ptr)
    return {ptr}


def array_of_itself(raw: RawBtf) -> set[int]:
    int_id = raw.add(BtfKind.INT, "int", size_or_type=4, extra=u32(32))
    arr = raw.add(BtfKind.ARRAY, extra=u32(int_id + 1, int_id, 4))
    add_global(raw, arr)
    return {arr}


def typedef_of_itself(raw: RawBtf) -> set[int]:
    td = raw.add(BtfKind.TYPEDEF, "self_t", size_or_type=raw.first_id)
    add_global(raw, td)
    return {td}


def const_volatile_loop(raw: RawBtf) -> set[int]:
    const = raw.add(BtfKind.CONST, size_or_type=raw.first_id + 1)
    volatile = raw.add(BtfKind.VOLATILE, size_or_type=const)
    ptr = raw.add(BtfKind.PTR, size_or_type=const)
    add_global(raw, ptr)
    return {const, volatile}


def prototype_taking_itself(raw: RawBtf) -> set[int]:
    """``void (*g)(void (*)(void (*)(...)))``: a function pointer type with no end."""
    ptr = raw.add(BtfKind.PTR, size_or_type=raw.first_id + 1)
    proto = raw.add(BtfKind.FUNC_PROTO, "", 1, 0, extra=u32(0, ptr))
    add_global(raw, ptr)
    return {ptr, proto}


def typedef_array_ptr_loop(raw: RawBtf) -> set[int]:
    """typedef -> array -> pointer -> typedef: no struct anywhere on the way round."""
    td = raw.add(BtfKind.TYPEDEF, "loop_t", size_or_type=raw.first_id + 2)
    int_id = raw.add(BtfKind.INT, "int", size_or_type=4, extra=u32(32))
    arr = raw.add(BtfKind.ARRAY, extra=u32(int_id + 2, int_id, 2))
    ptr = raw.add(BtfKind.PTR, size_or_type=td)
    add_global(raw, td, size=16)
    return {td, arr, ptr}


CYCLES: dict[str, Callable[[RawBtf], set[int]]] = {
    f.__name__: f
    for f in (
        ptr_to_itself,
        array_of_itself,
        typedef_of_itself,
        const_volatile_loop,
        prototype_taking_itself,
        typedef_array_ptr_loop,
    )
}


def cyclic(name: str) -> tuple[Btf, set[int]]:
    raw = RawBtf()
    ids = CYCLES[name](raw)
    return parse(raw), ids


def names_a_cycle_type(exc: BtfError, ids: set[int]) -> bool:
    text = str(exc)
    return any(f"[{i}]" in text or f"#{i}:" in text or f"#{i} " in text for i in ids)


def answers_or_refuses(call: Callable[[], object], ids: set[int]) -> None:
    try:
        call()
    except BtfError as exc:
        assert str(exc).startswith(FILE), exc
        assert names_a_cycle_type(exc, ids), exc


@pytest.mark.parametrize("name", CYCLES)
def test_cycles_parse_and_dump_raw(name: str) -> None:
    """Each type is well-formed on its own: parsing and the raw dump do not follow links."""
    btf, _ = cyclic(name)
    btf.validate()
    assert dump_raw(btf).count("\n[") + 1 == len(btf)


@pytest.mark.parametrize("name", CYCLES)
def test_cycles_in_layout_helpers_end(name: str) -> None:
    """Btf's and the dumper's size/alignment helpers: a value, or an error naming the cycle.

    ``TypeLayout.align_of`` was a RecursionError on an ARRAY of itself or a TYPEDEF of itself.
    """
    btf, _ = cyclic(name)
    layout = TypeLayout(btf)
    for type_id in btf.type_ids():
        for helper in (btf.resolve, btf.skip_modifiers, btf.size_of, btf.align_of,
                       layout.align_of, layout.resolve_size):  # fmt: skip
            try:
                helper(type_id)
            except BtfError as exc:
                assert str(exc).startswith(FILE), exc


@pytest.mark.parametrize("name", ["array_of_itself", "typedef_of_itself", "const_volatile_loop"])
def test_self_containing_types_have_no_alignment(name: str) -> None:
    btf, ids = cyclic(name)
    var = next(btf[i] for i in btf.type_ids() if isinstance(btf[i], BtfVar))
    assert isinstance(var, BtfVar)
    target = btf.skip_modifiers(var.type) if name != "const_volatile_loop" else min(ids)
    with pytest.raises(BtfError, match="contains itself") as info:
        TypeLayout(btf).align_of(target)
    assert names_a_cycle_type(info.value, ids)


@pytest.mark.parametrize("name", CYCLES)
def test_c_dump_of_a_cycle_is_an_error_naming_it(name: str) -> None:
    btf, ids = cyclic(name)
    with pytest.raises(BtfError, match="unsatisfiable type cycle") as info:
        dump_c(btf)
    assert names_a_cycle_type(info.value, ids), info.value


@pytest.mark.parametrize("name", CYCLES)
@pytest.mark.parametrize("strip", [False, True])
def test_declaring_the_global_ends(name: str, strip: bool) -> None:
    """What a skeleton does for each global: was an endless loop growing a list."""
    btf, ids = cyclic(name)
    dumper = CDumper(btf)
    for var in (btf[i] for i in btf.type_ids()):
        if isinstance(var, BtfVar):
            answers_or_refuses(partial(dumper.type_declaration, var.type, var.name, 2, strip), ids)


@pytest.mark.parametrize("name", CYCLES)
def test_dedup_and_reencoding_end(name: str) -> None:
    btf, ids = cyclic(name)
    again = Btf.from_bytes(BtfBuilder.from_btf(btf).encode())
    assert dump_raw(again) == dump_raw(btf)
    try:
        dedup(btf)
    except BtfError as exc:  # dedup works on a copy of the types: no file to name
        assert names_a_cycle_type(exc, ids), exc


def test_long_acyclic_chains_do_not_exhaust_the_stack() -> None:
    """100,000 typedefs, 3,000 nested anonymous structs: TypeLayout walks them without recursing."""
    raw = RawBtf()
    int_id = raw.add(BtfKind.INT, "int", size_or_type=4, extra=u32(32))
    for i in range(100_000):
        raw.add(BtfKind.TYPEDEF, f"t{i}", size_or_type=raw.first_id + len(raw.types) - 1)
    last_typedef = raw.first_id + len(raw.types) - 1
    inner = int_id
    for _ in range(3_000):
        inner = raw.add(BtfKind.STRUCT, "", 1, 4, extra=u32(0, inner, 0))
    btf = parse(raw)
    layout = TypeLayout(btf)
    assert layout.align_of(last_typedef) == 4
    assert layout.align_of(inner) == 4
    packed = raw.add(BtfKind.STRUCT, "p", 2, 5, extra=u32(0, int_id, 0, 0, inner, 8))
    assert TypeLayout(parse(raw)).align_of(packed) == 1  # a member at byte 1: packed


# ------------------------------------------------------------------------- legal cycles


def legal_cycles() -> RawBtf:
    """Cycles C writes every day: each goes through a named struct behind a pointer."""
    raw = RawBtf()
    int_id = raw.add(BtfKind.INT, "int", size_or_type=4, extra=u32((1 << 24) | 32))
    # struct list { struct list *next; int v; };  struct list *head;
    lst = raw.add(
        BtfKind.STRUCT,
        "list",
        2,
        16,
        extra=u32(raw.s("next"), int_id + 2, 0, raw.s("v"), int_id, 64),
    )
    lst_ptr = raw.add(BtfKind.PTR, size_or_type=lst)
    # typedef struct node node_t;  struct node { node_t *next; };  node_t n;
    node_t = raw.add(BtfKind.TYPEDEF, "node_t", size_or_type=lst_ptr + 2)
    node = raw.add(BtfKind.STRUCT, "node", 1, 8, extra=u32(raw.s("next"), node_t + 2, 0))
    node_ptr = raw.add(BtfKind.PTR, size_or_type=node_t)
    # struct ops { int (*fn)(struct ops *); };  struct ops o;
    ops = raw.add(BtfKind.STRUCT, "ops", 1, 8, extra=u32(raw.s("fn"), node_ptr + 4, 0))
    ops_ptr = raw.add(BtfKind.PTR, size_or_type=ops)
    proto = raw.add(BtfKind.FUNC_PROTO, "", 1, int_id, extra=u32(0, ops_ptr))
    fn_ptr = raw.add(BtfKind.PTR, size_or_type=proto)
    head = raw.add(BtfKind.VAR, "head", size_or_type=lst_ptr, extra=u32(1))
    n = raw.add(BtfKind.VAR, "n", size_or_type=node_t, extra=u32(1))
    o = raw.add(BtfKind.VAR, "o", size_or_type=ops, extra=u32(1))
    raw.add(BtfKind.DATASEC, ".data", 3, 24, extra=u32(head, 0, 8, n, 8, 8, o, 16, 8))
    # The forward references above, checked: member types are ids of later types.
    assert (lst_ptr, node, node_ptr, fn_ptr) == (int_id + 2, lst_ptr + 2, node_t + 2, node_ptr + 4)
    return raw


def test_cycles_through_named_structs_dump_like_bpftool(tmp_path: Path) -> None:
    path = tmp_path / "legal.btf"
    path.write_bytes(legal_cycles().to_bytes())
    btf = Btf.from_path(path)
    assert dump_c(btf) == bpftool("btf", "dump", "file", path, "format", "c")
    dumper = CDumper(btf)
    decls = {}
    for type_id in btf.type_ids():
        var = btf[type_id]
        if isinstance(var, BtfVar):
            decls[var.name] = dumper.type_declaration(var.type, var.name)
    assert decls == {"head": "struct list *head", "n": "node_t n", "o": "struct ops o"}
    assert TypeLayout(btf).align_of(btf.find_one("list", BtfKind.STRUCT)) == 8


# ------------------------------------------------------------------------ huge layouts


def one_int_struct(size: int, *, member_bit: int = 0, kind: BtfKind = BtfKind.STRUCT) -> RawBtf:
    raw = RawBtf()
    int_id = raw.add(BtfKind.INT, "int", size_or_type=4, extra=u32((1 << 24) | 32))
    raw.add(kind, "huge", 1, size, extra=u32(raw.s("a"), int_id, member_bit))
    return raw


@pytest.mark.parametrize("kind", [BtfKind.STRUCT, BtfKind.UNION])
def test_struct_of_four_gib_is_refused_at_once(kind: BtfKind) -> None:
    """Was ~537 million padding lines built in memory for a struct, then printed."""
    btf = parse(one_int_struct(0xFFFF_FFF0, kind=kind))
    keyword = kind.name.lower()
    with pytest.raises(BtfError, match=rf"type #2: {keyword} 'huge' of 4294967280 bytes"):
        dump_c(btf)


def test_smallest_refused_size_is_two_to_the_31_bits() -> None:
    with pytest.raises(BtfError, match="too big to print as C"):
        dump_c(parse(one_int_struct(1 << 28)))
    assert dump_c(parse(one_int_struct(1 << 20))).startswith(HEADER)


def test_member_past_the_end_of_its_struct_is_refused() -> None:
    btf = parse(one_int_struct(8, member_bit=1 << 30))
    with pytest.raises(BtfError, match=r"type #2: struct 'huge': member 0 'a' at bit 1073741824"):
        dump_c(btf)


def test_anonymous_huge_struct_is_refused_inline_too() -> None:
    raw = RawBtf()
    int_id = raw.add(BtfKind.INT, "int", size_or_type=4, extra=u32(32))
    anon = raw.add(BtfKind.STRUCT, "", 1, 0xFFFF_0000, extra=u32(raw.s("a"), int_id, 0))
    with pytest.raises(BtfError, match=rf"type #{anon}: anonymous struct of 4294901760 bytes"):
        CDumper(parse(raw)).type_declaration(anon, "x")


def holes(tmp_path: Path) -> Path:
    """Holes of a megabyte, with remainders, inside and at the end of structs."""
    raw = RawBtf()
    char = raw.add(BtfKind.INT, "char", size_or_type=1, extra=u32((2 << 24) | 8))
    raw.add(BtfKind.STRUCT, "big_hole", 1, 1 << 20, extra=u32(raw.s("a"), char, 0))
    raw.add(BtfKind.STRUCT, "odd_hole", 2, 1_000_007,
            extra=u32(raw.s("a"), char, 8, raw.s("b"), char, 8 * 100_003))  # fmt: skip
    path = tmp_path / "holes.btf"
    path.write_bytes(raw.to_bytes())
    return path


def test_big_holes_stream_exactly_what_bpftool_prints(tmp_path: Path) -> None:
    path = holes(tmp_path)
    chunks: list[str] = []
    write_c(Btf.from_path(path), chunks.append)
    ref = bpftool("btf", "dump", "file", path, "format", "c")
    assert "".join(chunks) == ref
    assert ref.count("\n\tlong: 64;") > 200_000
    assert len(chunks) > 10 and max(map(len, chunks)) < 1 << 20


def test_largest_printable_struct_streams_in_flat_memory() -> None:
    """~33 million padding lines, handed out in pieces: nothing the size of the output is kept."""
    size = (1 << 28) - 8
    btf = parse(one_int_struct(size))
    lines = 0
    biggest = 0

    def count(text: str) -> None:
        nonlocal lines, biggest
        lines += text.count("\n")
        biggest = max(biggest, len(text))

    tracemalloc.start()
    try:
        write_c(btf, count)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # `struct huge {`, `int a;`, then one `long: 64;` per 8 bytes after the first 8
    # (libbpf's padding rule), `}` and `;` with a blank line.
    padding = size // 8 - 1
    assert lines == HEADER.count("\n") + 1 + padding + 3 + FOOTER.count("\n")
    assert biggest < 1 << 20
    assert peak < 16 << 20


def test_cli_refuses_a_huge_struct_with_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.btf"
    path.write_bytes(one_int_struct(0xFFFF_FFF0).to_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "pybpf.cli", "btf", "dump", "file", path, "format", "c"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.startswith("Error: ") and "type #2: struct 'huge'" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------- lookups


def test_negative_string_offset_is_a_btf_error() -> None:
    """Was an AssertionError (an `assert` guarded the offset)."""
    btf = parse(one_int_struct(8))
    with pytest.raises(BtfError, match="string offset -1 out of range"):
        btf.string(-1)
