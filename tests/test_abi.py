"""pybpf.abi against the kernel's own headers, and the instruction codec.

The ABI tables are typed by hand (the installed headers are older than the kernels we support,
so generating them would drop members); this test keeps the hand-typed values honest: every
name the installed ``linux/*.h`` defines with a value that we also define must agree, and the
complete enums (map, program, attach, link types, commands, helpers) must all be present.
"""

from __future__ import annotations

import ast
import re
from enum import Enum
from pathlib import Path
from types import ModuleType

import pytest

from pybpf.abi import bpf, btf, insn, perf, sections
from pybpf.abi.bpf import AttachType, MapType, ProgType, uapi_name

INCLUDE = Path("/usr/include/linux")
HEADERS = ("bpf.h", "bpf_common.h", "btf.h", "perf_event.h", "if_link.h")

COMPLETE_ENUMS = (
    "bpf_cmd",
    "bpf_map_type",
    "bpf_prog_type",
    "bpf_attach_type",
    "bpf_link_type",
    "bpf_func_id",
    "xdp_action",
    "perf_type_id",
    "perf_sw_ids",
    "btf_func_linkage",
)
"""Enums of which we list every member the installed header has (ours may be newer)."""

RENAMED = {
    "BPF_MAP_TYPE_CGROUP_STORAGE": "BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED",
    "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE": "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE_DEPRECATED",
}
"""Header names that newer kernels renamed (old name kept as an alias there); we use the new."""

_SUFFIX = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b")
_ENUM = re.compile(r"\benum\s+(\w+)?\s*\{(.*?)\}", re.S)
_DEFINE = re.compile(r"^#define\s+([A-Z][A-Z0-9_]*)\s+(.+?)\s*(?:/\*.*)?$", re.M)
_ENTRY = re.compile(r"^([A-Za-z_]\w*)\s*(?:=\s*(.+))?$")


def _eval(expr: str, known: dict[str, int]) -> int | None:
    """The value of a C constant expression built from literals, known names and operators."""
    try:
        tree = ast.parse(_SUFFIX.sub(r"\1", expr.strip()), mode="eval")
    except SyntaxError:
        return None

    def value(node: ast.expr) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in known:
            return known[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp):
            left, right = value(node.left), value(node.right)
            ops = {ast.LShift: left << right, ast.BitOr: left | right, ast.Add: left + right}
            for op, result in ops.items():
                if isinstance(node.op, op):
                    return result
        raise ValueError(ast.dump(node))

    try:
        return value(tree.body)
    except ValueError:
        return None


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", "", text, flags=re.S))


def _func_ids(text: str) -> dict[str, int]:
    """``enum bpf_func_id`` is generated from the ``BPF_FUNC_MAPPER`` macro's ``FN()`` list
    (``FN(name)`` in order on older headers, ``FN(name, id, ...)`` on newer ones)."""
    mapper = re.search(r"#define _*BPF_FUNC_MAPPER\(.*?\)(.*?)\n\s*\n", text, re.S)
    if mapper is None:
        return {}
    names = re.findall(r"FN\((\w+)(?:,\s*(\d+))?", mapper.group(1))
    return {f"BPF_FUNC_{name}": int(num) if num else i for i, (name, num) in enumerate(names)}


def header_constants() -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Every named value of the installed headers, and the members of each named enum."""
    values: dict[str, int] = {}
    enums: dict[str, dict[str, int]] = {}
    for header in HEADERS:
        raw = (INCLUDE / header).read_text()
        if header == "bpf.h":
            enums["bpf_func_id"] = _func_ids(raw)
            values.update(enums["bpf_func_id"])
        text = _strip_comments(raw)
        for name, expr in _DEFINE.findall(text):
            got = _eval(expr, values)
            if got is not None:
                values.setdefault(name, got)
        for enum_name, body in _ENUM.findall(text):
            members: dict[str, int] = {}
            nxt = 0
            for entry in (e.strip() for e in body.split(",")):
                match = _ENTRY.match(entry)
                if match is None:
                    continue
                name, expr = match.groups()
                got = nxt if expr is None else _eval(expr, values)
                if got is None:
                    break
                members[name] = values[name] = got
                nxt = got + 1
            if enum_name:
                enums.setdefault(enum_name, members)
    return values, enums


PREFIXES: dict[type[Enum], str] = {
    btf.BtfKind: "BTF_KIND_",
    btf.IntEncoding: "BTF_INT_",
    btf.FuncLinkage: "BTF_FUNC_",
    btf.VarLinkage: "BTF_VAR_",
}
"""The BTF enums drop their header prefix, as the map and program types do."""


def our_constants() -> dict[str, int]:
    """Every name pybpf.abi defines, spelled as in the headers."""
    ours: dict[str, int] = {}
    modules: tuple[ModuleType, ...] = (bpf, insn, btf, perf)
    for module in modules:
        for name, obj in vars(module).items():
            own = isinstance(obj, type) and obj.__module__ == module.__name__
            if own and issubclass(obj, Enum):
                for member_name, member in obj.__members__.items():
                    spelled = (
                        uapi_name(member)
                        if isinstance(member, MapType | ProgType | AttachType)
                        else PREFIXES.get(obj, "") + member_name
                    )
                    ours[str(spelled)] = int(member.value)
            elif isinstance(obj, int) and not isinstance(obj, bool) and name.isupper():
                ours[name] = obj
    return ours


needs_headers = pytest.mark.skipif(
    not all((INCLUDE / h).exists() for h in HEADERS), reason="linux uapi headers not installed"
)


@needs_headers
def test_constants_match_installed_uapi_headers() -> None:
    values, _ = header_constants()
    ours = our_constants()
    shared = sorted(set(ours) & set(values))
    assert len(shared) > 400, "the header parser found too little to compare"
    wrong = {name: (ours[name], values[name]) for name in shared if ours[name] != values[name]}
    assert wrong == {}


@needs_headers
@pytest.mark.parametrize("enum_name", COMPLETE_ENUMS)
def test_complete_enums_list_every_header_member(enum_name: str) -> None:
    _, enums = header_constants()
    ours = our_constants()
    members = {
        name: value
        for name, value in enums[enum_name].items()
        if not name.startswith(("__", "MAX_")) and not name.endswith("_MAX")
    }
    assert members, f"enum {enum_name} not found in the headers"
    missing = {n: v for n, v in members.items() if ours.get(RENAMED.get(n, n)) != v}
    assert missing == {}


def test_insn_encode_decode_roundtrip() -> None:
    cases = [
        insn.Insn(insn.CALL, 0, 0, 0, 1),
        insn.Insn(insn.LD_IMM64, 1, insn.BpfPseudo.BPF_PSEUDO_MAP_VALUE, 0, -1),
        insn.Insn(insn.BPF_JMP | insn.BPF_JEQ | insn.BPF_K, 10, 0, -32768, 2**31 - 1),
        insn.Insn(insn.BPF_STX | insn.BPF_DW | insn.BPF_MEM, 15, 15, 32767, -(2**31)),
    ]
    for case in cases:
        data = insn.encode(*case)
        assert len(data) == insn.INSN_SIZE
        assert insn.decode(data) == case
    # imm may be written as its u32 bit pattern and reads back signed, as the kernel sees it.
    assert insn.decode(insn.encode(insn.CALL, imm=0xFFFFFFFF)).imm == -1
    program = b"".join(insn.encode(*c) for c in cases)
    assert insn.decode(program, 3 * insn.INSN_SIZE) == cases[3]


def test_ld_imm64_and_call_helpers() -> None:
    pair = insn.ld_imm64(insn.Reg.R1, 0x1122334455667788, insn.BpfPseudo.BPF_PSEUDO_MAP_FD)
    first, second = insn.decode(pair), insn.decode(pair, insn.INSN_SIZE)
    assert (first.code, first.dst, first.src) == (0x18, 1, 1)
    assert (first.imm & 0xFFFFFFFF, second.imm & 0xFFFFFFFF) == (0x55667788, 0x11223344)
    call = insn.decode(insn.call(bpf.BpfFuncId.BPF_FUNC_map_lookup_elem))
    assert (call.code, call.imm) == (0x85, 1)
    assert insn.BPF_CALL == 0x80
    assert insn.decode(insn.exit_insn()).code == insn.EXIT == 0x95


def test_btf_header_pack_unpack() -> None:
    header = btf.unpack_header(btf.pack_header(12, 5, flags=0))
    assert header == (btf.BTF_MAGIC, btf.BTF_VERSION, 0, btf.HEADER_SIZE, 0, 12, 12, 5)
    assert btf.HEADER.size == btf.HEADER_SIZE
    swapped = btf.header_struct(">").pack(*header)
    assert int.from_bytes(swapped[:2], "little") == btf.BTF_MAGIC_SWAPPED
    assert btf.unpack_header(swapped, ">") == header


def test_section_names_are_libbpfs() -> None:
    assert (sections.MAPS, sections.KCONFIG, sections.KSYMS) == (".maps", ".kconfig", ".ksyms")
    assert sections.LOADER_EXTERN_SECTIONS == (".kconfig", ".ksyms")
