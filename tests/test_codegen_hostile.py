"""Generated code from crafted objects: names are data, never code.

An object's section, map, program, variable, type and member names (and the file's name) end up
in the Python modules and C headers ``pybpf gen skeleton|subskeleton`` writes.  Each test here
builds one object whose names are hostile, by compiling a fixture with placeholder names and
overwriting the placeholders in its string tables (ELF ``.strtab`` and the BTF string section)
with bytes of the same length; a NUL ends a shorter name early.  Each generated module must
compile, import and run in a fresh interpreter without running the payload (which would create
the file ``PWNED``), and reach every map, program and variable under its real name.  The C
header must carry the same names as escaped string literals and compile, or be refused with a
:class:`CodegenError` naming the symbol.
"""

from __future__ import annotations

import ast
import contextlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import compile_bpf
from pybpf.btf.builder import BtfBuilder
from pybpf.btf.to_ctypes import CTypesBuilder, python_name
from pybpf.btf.types import (
    BtfInt,
    BtfKind,
    BtfMember,
    BtfPtr,
    BtfStruct,
    IntEncoding,
)
from pybpf.errors import BpfError, CodegenError
from pybpf.obj.object_spec import ObjectSpec
from pybpf.skel.codegen import generate
from pybpf.skel.runtime import Skeleton
from pybpf.skel.type_signature import signature_digest, type_signature
from pybpf.skel.values import type_name as var_type_name

GCC = shutil.which("gcc")
PLACEHOLDER_LEN = 48

SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct @TYPE@ {
	int keep;
	int @MEMBER@;
	unsigned int bits : 3;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, int);
} @MAP@ SEC(".maps");

int @VAR_A@ SEC(".data.@SEC@") = 1;
int @VAR_B@ SEC(".data.@SEC@") = 2;
struct @TYPE@ @VAR_C@ = { 3, 4, 5 };

SEC("xdp")
int @PROG@(struct xdp_md *ctx)
{
	return XDP_PASS;
}
"""
ROLES = ("TYPE", "MEMBER", "MAP", "VAR_A", "VAR_B", "VAR_C", "SEC", "PROG")


def placeholder(role: str) -> bytes:
    return f"ph_{role.lower()}_".ljust(PLACEHOLDER_LEN, "z").encode()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    source = SOURCE
    for role in ROLES:
        source = source.replace(f"@{role}@", placeholder(role).decode())
    path = tmp_path_factory.mktemp("hostile_src") / "codegen_hostile.bpf.c"
    path.write_text(source)
    return compile_bpf(str(path)).read_bytes()


def build(template: bytes, directory: Path, names: dict[str, bytes], file: str = "h.bpf.o") -> Path:
    """The template object with each role's placeholder overwritten by ``names[role]``."""
    data = template
    for role, name in names.items():
        assert b"\0" not in name and len(name) < PLACEHOLDER_LEN, role
        old = placeholder(role)
        assert old in data, role
        data = data.replace(old, name + b"\0" + b"z" * (PLACEHOLDER_LEN - len(name) - 1))
    path = directory / file
    path.write_bytes(data)
    return path


def real(name: bytes) -> str:
    """A name as pybpf reads it from the object (bytes that are not UTF-8 as surrogates)."""
    return name.decode("utf-8", "surrogateescape")


PAYLOAD = b'__import__("os").mkdir("PWNED")'
CASES: dict[str, dict[str, bytes]] = {
    "slash_in_program": {"PROG": b"on/xdp/prog", "VAR_A": b"a.b", "VAR_B": b"a b"},
    "double_quotes": {
        "SEC": b'q");' + PAYLOAD + b'#',
        "VAR_A": b'a");' + PAYLOAD + b'#',
        "MAP": b'm"];' + PAYLOAD + b'#',
        "PROG": b'p"];' + PAYLOAD + b'#',
    },
    "docstring_breakout": {"TYPE": b't"""+str(' + PAYLOAD + b')+"""'},
    "triple_quotes": {
        "SEC": b'x"""+' + PAYLOAD + b'+"""',
        "TYPE": b't"""+' + PAYLOAD + b'+"""',
        "VAR_C": b'c"""+' + PAYLOAD + b'+"""',
    },
    "newlines": {
        "SEC": b"s\n" + PAYLOAD + b"\n#",
        "VAR_A": b"a\n" + PAYLOAD + b"\n#",
        "TYPE": b'\n"""\n' + PAYLOAD + b'\n"""',
        "MEMBER": b"m\n" + PAYLOAD,
        "PROG": b"p\r" + PAYLOAD,
    },
    "keywords": {
        "TYPE": b"none", "MEMBER": b"class", "VAR_A": b"None", "VAR_B": b"lambda",
        "VAR_C": b"import", "MAP": b"from_buffer", "PROG": b"match",
    },
    "reserved_attributes": {
        "VAR_A": b"__init__", "VAR_B": b"_pybpf_map", "MAP": b"__class__", "PROG": b"__x",
        "VAR_C": b"variables", "MEMBER": b"_fields_",
    },
    "non_utf8": {
        "TYPE": b"t\xff\xfe", "MEMBER": b"m\xc3", "MAP": b"m\xff", "VAR_A": b"v\xfe",
        "VAR_B": b"\xe9t\xe9", "VAR_C": b"c\x80", "SEC": b"s\xff", "PROG": b"p\xfe",
    },
    "ctypes_names": {"MEMBER": b"from_buffer", "TYPE": b"Structure"},
    "sanitized_collisions": {"VAR_A": b"a-b", "VAR_B": b"a_b", "SEC": b"q\\x"},
    "digits_and_unicode": {"VAR_A": b"1x", "VAR_B": "ünï".encode(), "PROG": b"9p"},
    "unnamed_member": {"MEMBER": b""},
}  # fmt: skip
"""Hostile names by role; the other roles keep their (valid) placeholder names."""

SCRIPT = """\
import sys
sys.path.insert(0, ".")
from pybpf.object import BpfObject
import hostile_module as m
cls = m.{cls}
skel = cls.open() if {skeleton} else cls.open(BpfObject.open(sys.argv[1], "hostile"))
progs = sorted(getattr(skel.progs, a).name for a in vars(skel.progs))
maps = sorted(getattr(skel.maps, a).name for a in vars(skel.maps))
variables = []
for desc in cls.DESCRIPTION.sections:
    section = skel._binding.section(desc.ident)
    typed = [v for v in vars(skel).values()
             if getattr(v, "_pybpf_map", None) is section.section_map]
    assert len(typed) == 1, typed
    for attr, prop in vars(type(typed[0])).items():
        if isinstance(prop, property):
            value = getattr(typed[0], attr)
            if not isinstance(value, (int, bytes, float)):
                for field in value._fields_:
                    getattr(value, field[0])
                for name, member in vars(type(value)).items():
                    if isinstance(member, m.Bitfield):
                        getattr(value, name)
            elif prop.fset is not None:
                setattr(typed[0], attr, value)
    variables += list(typed[0].variables())
if {skeleton}:
    for a, prop in vars(type(skel.links)).items():
        if isinstance(prop, property):
            assert getattr(skel.links, a) is None
print(ascii((progs, maps, sorted(variables))))
"""


def exercise(obj: Path, tmp_path: Path, kind: str, name: str = "hostile") -> object:
    """Generate, compile and import the module in a fresh interpreter, open the object with
    it and touch every attribute; returns what it found (program, map, variable names)."""
    text = generate(kind, obj, name, "python")
    compile(text, "hostile_module.py", "exec")
    (tmp_path / "hostile_module.py").write_text(text, encoding="utf-8")
    cls = "".join(w.capitalize() for w in name.split("_"))
    script = SCRIPT.format(cls=cls, skeleton=kind == "skeleton")
    result = subprocess.run(
        [sys.executable, "-c", script, str(obj)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert not (tmp_path / "PWNED").exists(), "the payload ran"
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout)


def expected_names(names: dict[str, bytes]) -> object:
    """What the script must find: the object's real names, not the identifiers made of them."""

    def get(role: str) -> str:
        return real(names[role]) if role in names else placeholder(role).decode()

    maps = sorted([get("MAP"), ".data." + get("SEC"), "hostile.data"])
    return [get("PROG")], maps, sorted([get("VAR_A"), get("VAR_B"), get("VAR_C")])


@pytest.mark.parametrize("kind", ["skeleton", "subskeleton"])
@pytest.mark.parametrize("case", sorted(set(CASES) - {"unnamed_member"}))
def test_python_module_carries_hostile_names_as_data(
    template: bytes, tmp_path: Path, case: str, kind: str
) -> None:
    obj = build(template, tmp_path, CASES[case])
    found = exercise(obj, tmp_path, kind)
    assert found == expected_names(CASES[case])


def test_hostile_file_name_stays_in_its_docstring_and_comment(
    template: bytes, tmp_path: Path
) -> None:
    for file in ('x\n__import__("os").mkdir("PWNED")\n#.bpf.o', 'x"""+mkdir("PWNED")+""".o',
                 "x\udcff\\.o"):  # fmt: skip
        obj = build(template, tmp_path, {}, file)
        exercise(obj, tmp_path, "skeleton")
        exercise(obj, tmp_path, "subskeleton")


def test_sanitized_names_get_distinct_identifiers(template: bytes, tmp_path: Path) -> None:
    """``a-b`` cannot be an attribute; it becomes ``a_b_2`` because a real ``a_b`` exists."""
    obj = build(template, tmp_path, CASES["sanitized_collisions"])
    text = generate("skeleton", obj, "hostile", "python")
    assert "def a_b(self) -> int:" in text
    assert "def a_b_2(self) -> int:" in text
    assert "return self._pybpf_int('a-b')" in text.replace('"', "'")


def test_keyword_names_get_a_trailing_underscore(template: bytes, tmp_path: Path) -> None:
    obj = build(template, tmp_path, CASES["keywords"])
    text = generate("skeleton", obj, "hostile", "python")
    attrs = ("def None_(self)", "def lambda_(self)", "def import_(self)", "class None_2(",
             "def match_(self)", '("class_", ctypes.c_int32)')  # fmt: skip
    for attr in attrs:
        assert attr in text


def test_object_names_that_shadow_the_module_are_refused(template: bytes, tmp_path: Path) -> None:
    obj = build(template, tmp_path, {})
    for name in ("map", "bpf_object", "none", "final"):
        with pytest.raises(CodegenError, match=f"object name '{name}'"):
            generate("skeleton", obj, name, "python")
    generate("skeleton", obj, "maps", "python")


def test_colliding_keys_are_refused(template: bytes, tmp_path: Path) -> None:
    """A user map named like a data section's identifier would share its key in the
    skeleton's binding (and its member in the C struct): refused, not half-bound."""
    obj = build(template, tmp_path, {"MAP": b"data"})
    for kind in ("skeleton", "subskeleton"):
        with pytest.raises(CodegenError, match=r"map 'data' and map '\.data' both have"):
            generate(kind, obj, "hostile", "python")
        with pytest.raises(CodegenError, match=r"map 'data' and map '.*data' both have.*C header"):
            generate(kind, obj, "hostile")


def test_cli_exits_0_only_with_a_module_that_imports(template: bytes, tmp_path: Path) -> None:
    """``pybpf gen`` writes bytes: a name that is not UTF-8 must not make the file undecodable."""
    obj = build(template, tmp_path, {**CASES["non_utf8"], "PROG": b"on/\xff"})
    pybpf = Path(sys.executable).parent / "pybpf"
    for kind in ("skeleton", "subskeleton"):
        cli = subprocess.run([pybpf, "gen", kind, obj, "name", "hostile", "--lang", "python"],
                             capture_output=True, check=True)  # fmt: skip
        (tmp_path / "cli_module.py").write_bytes(cli.stdout)
        imported = subprocess.run([sys.executable, "-c", "import cli_module"], cwd=tmp_path,
                                  capture_output=True, text=True)  # fmt: skip
        assert imported.returncode == 0, imported.stderr
        refused = subprocess.run([pybpf, "gen", kind, obj, "name", "hostile"],
                                 capture_output=True, text=True)  # fmt: skip
        assert refused.returncode == 1 and refused.stdout == ""
        assert "map 'm\\udcff' is not a C identifier" in refused.stderr


# ----------------------------------------------------------------------------------- C


def c_string_value(literal: str) -> bytes:
    """The bytes a C string literal's body stands for (three-digit octal escapes, ``\\x``: x)."""
    out = bytearray()
    i = 0
    while i < len(literal):
        if literal[i] == "\\" and literal[i + 1] in "01234567":
            out.append(int(literal[i + 1 : i + 4], 8))
            i += 4
        elif literal[i] == "\\":
            out.append(ord(literal[i + 1]))
            i += 2
        else:
            out.append(ord(literal[i]))
            i += 1
    return bytes(out)


@pytest.mark.parametrize("kind", ["skeleton", "subskeleton"])
def test_c_header_escapes_names_in_string_literals(
    template: bytes, tmp_path: Path, kind: str
) -> None:
    names = {"SEC": b'q"\\\n??=\xff*/', "VAR_A": b"a.b", "VAR_B": b"v\xfe"}
    obj = build(template, tmp_path, names)
    header = generate(kind, obj, "hostile")
    assert header.isascii()
    literals = [line.split('name = "', 1)[1].rsplit('";', 1)[0]
                for line in header.splitlines() if '.name = "' in line]  # fmt: skip
    values = {c_string_value(lit) for lit in literals}
    assert b".data." + names["SEC"] in values
    if kind == "subskeleton":
        assert {names["VAR_A"], names["VAR_B"]} <= values
    if GCC is None or not Path("/usr/include/bpf/libbpf.h").exists():
        return
    (tmp_path / "h.h").write_text(header)
    unit = tmp_path / "unit.c"
    unit.write_text(
        f"struct {placeholder('TYPE').decode()} {{ int keep; int m; unsigned int bits : 3; }};\n"
        '#include "h.h"\nint main(void) { return 0; }\n'
    )
    result = subprocess.run([GCC, "-fsyntax-only", "-I", str(tmp_path),
                             str(unit)], capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", ["skeleton", "subskeleton"])
@pytest.mark.parametrize(
    ("names", "symbol"),
    [
        ({"PROG": b"on/xdp"}, "program 'on/xdp'"),
        ({"MAP": b"m-1"}, "map 'm-1'"),
        ({"PROG": b"int"}, "program 'int'"),
        ({"VAR_A": b"1x"}, "variable '1x'"),
        ({"TYPE": b'x"; int y'}, "type name 'x\"; int y'"),
        ({"PROG": b"p\xff"}, "program 'p\\\\udcff'"),
        ({"VAR_A": b"a.b", "VAR_B": b"a_b"}, r"variable 'a\.b' and .* variable 'a_b' both have"),
    ],
)
def test_c_identifiers_that_are_not_identifiers_are_refused(
    template: bytes, tmp_path: Path, kind: str, names: dict[str, bytes], symbol: str
) -> None:
    obj = build(template, tmp_path, names)
    with pytest.raises(CodegenError, match=symbol) as info:
        generate(kind, obj, "hostile")
    assert "h.bpf.o" in str(info.value) and "\n" not in str(info.value)


def test_c_keyword_object_name_is_refused(template: bytes, tmp_path: Path) -> None:
    obj = build(template, tmp_path, {})
    with pytest.raises(CodegenError, match="invalid object name 'struct'"):
        generate("skeleton", obj, "struct")


# ----------------------------------------------------------------- items 10 and 13


def test_unnamed_scalar_member_through_ctypes_generator_and_runtime(
    template: bytes, tmp_path: Path
) -> None:
    """Issue 13, item 13: an unnamed ``int`` member is a plain field, not an anonymous one."""
    obj = build(template, tmp_path, CASES["unnamed_member"])
    spec = ObjectSpec.from_path(obj)
    assert spec.btf is not None
    type_id = spec.btf.find_one(placeholder("TYPE").decode(), BtfKind.STRUCT)
    cls = CTypesBuilder(spec.btf).ctype(type_id)
    value = cls.from_buffer_copy(bytes([3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0]))
    assert (value.keep, value._anon0, value.bits) == (3, 4, 5)
    assert not getattr(cls, "_anonymous_", ())
    skel = Skeleton.open(obj)
    assert bytes(getattr(skel.data, placeholder("VAR_C").decode())) == bytes(value)
    for kind in ("skeleton", "subskeleton"):
        exercise(obj, tmp_path, kind)
    text = generate("skeleton", obj, "hostile", "python")
    assert '("_anon0", ctypes.c_int32)' in text


def test_non_utf8_type_names_have_signatures(template: bytes, tmp_path: Path) -> None:
    """Issue 13, item 10: names that are not UTF-8 are signed by their bytes."""
    obj = build(template, tmp_path, CASES["non_utf8"])
    other = build(template, tmp_path, {**CASES["non_utf8"], "TYPE": b"t\xff\xfd"}, "o.bpf.o")
    digests = []
    for path in (obj, other):
        spec = ObjectSpec.from_path(path)
        assert spec.btf is not None
        var = next(v for v in spec.variables if v.name == real(CASES["non_utf8"]["VAR_C"]))
        assert "\udcff" in type_signature(spec.btf, var.type_id)
        digests.append(signature_digest(spec.btf, var.type_id))
    assert digests[0] != digests[1]


def test_signatures_of_widely_shared_anonymous_types_stay_small() -> None:
    """Found by the fuzzer: anonymous structs each pointing twice at the next one were spelled
    out again on every path, ``2 ** depth`` times (it never finished).  Each is spelled once."""
    b = BtfBuilder()
    int_id = b.add(BtfInt("int", 4, IntEncoding.SIGNED, 0, 32))
    prev = b.add(BtfStruct("", 4, (BtfMember("v", int_id, 0),)))
    for _ in range(25):
        ptr = b.add(BtfPtr(prev))
        prev = b.add(BtfStruct("", 16, (BtfMember("a", ptr, 0), BtfMember("b", ptr, 64))))
    ptr = b.add(BtfPtr(prev))
    loop = b.add(BtfStruct("", 8, (BtfMember("self", ptr + 2, 0),)))
    b.add(BtfPtr(loop))
    btf = b.to_btf()
    started = time.monotonic()
    text = type_signature(btf, prev)
    assert time.monotonic() - started < 1.0
    assert len(text) < 10_000 and text.count("{") == 26
    assert type_signature(btf, loop).startswith("struct:#0:8{self@0/0:*struct:#0}")
    assert signature_digest(btf, prev) == signature_digest(b.to_btf(), prev)


def test_errors_are_bpf_errors(template: bytes, tmp_path: Path) -> None:
    """Whatever the names, generation gives code or a BpfError, never another exception."""
    for case, names in CASES.items():
        obj = build(template, tmp_path, names, f"{case}.bpf.o")
        for kind in ("skeleton", "subskeleton"):
            for lang in ("c", "python"):
                with contextlib.suppress(BpfError):
                    generate(kind, obj, "hostile", lang)


def test_ctypes_field_names_are_identifiers() -> None:
    assert python_name("a.b") == "a_b"
    assert python_name("1x") == "_1x"
    assert python_name("class") == "class_"
    assert python_name("") == "_"
    assert python_name("x", {"x", "x_"}) == "x__"


def test_a_pointer_to_itself_has_a_bounded_name() -> None:
    """Found by the fuzzer: a PTR whose target is itself, named for a variable description,
    used to recurse until ``RecursionError``."""
    b = BtfBuilder()
    ptr = b.add(BtfPtr(1))
    assert ptr == 1
    spelled = var_type_name(b.to_btf(), ptr)
    assert spelled.endswith("*") and len(spelled) < 200
