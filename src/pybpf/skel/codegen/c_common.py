"""Pieces the C skeleton and subskeleton generators share: names, identifiers, data sections.

Everything here reproduces a rule of bpftool 7.1's ``gen.c`` that leaks into generated code,
because a header that differs from bpftool's by one identifier breaks the C code written
against it: how an object name is derived from a file name, how maps and DATASECs become C
identifiers, and how a data section becomes a struct whose explicit padding makes every field
land on its BTF offset whatever the host ABI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from string import Template
from typing import Protocol

from pybpf.abi.sections import KCONFIG
from pybpf.btf.btf import Btf
from pybpf.btf.c_dump import CDumper
from pybpf.btf.layout import TypeLayout
from pybpf.btf.types import (
    BtfArray,
    BtfConst,
    BtfEnum,
    BtfEnum64,
    BtfFloat,
    BtfFuncProto,
    BtfInt,
    BtfPtr,
    BtfRestrict,
    BtfStruct,
    BtfTypeTag,
    BtfUnion,
    BtfVolatile,
)
from pybpf.elf.reader import ElfFile
from pybpf.errors import CodegenError, ObjectError
from pybpf.obj.object_spec import ObjectSpec
from pybpf.skel.codegen.bpftool_view import DataSec, OpenedMap, OpenedObject, SecVar

MAX_OBJ_NAME_LEN = 64
"""bpftool keeps object names in a 64-byte buffer: at most 63 characters survive."""

_MAP_SUFFIXES = (".data", ".rodata", ".bss", ".kconfig")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_IDENT_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_BASE_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*( [A-Za-z_][A-Za-z0-9_]*)*\Z")
"""An INT or FLOAT name as the C dumper prints it: words (``long long unsigned int``)."""
_PLAIN_BYTES = frozenset(range(0x20, 0x7F)) - frozenset(b'"\\?')
"""What a C string literal may hold as is; ``?`` is escaped too, against trigraphs."""

C_KEYWORDS = frozenset({
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "_Alignas", "_Alignof", "_Atomic", "_BitInt",
    "_Bool", "_Complex", "_Decimal128", "_Decimal32", "_Decimal64", "_Generic", "_Imaginary",
    "_Noreturn", "_Static_assert", "_Thread_local", "alignas", "alignof", "asm", "bool",
    "constexpr", "false", "nullptr", "static_assert", "thread_local", "true", "typeof",
    "typeof_unqual",
})  # fmt: skip
"""C11 and C23 keywords and GNU's ``asm``: an identifier the header declares cannot be one."""


class HasElf(Protocol):
    """Anything carrying a parsed object, such as :class:`pybpf.obj.object_spec.ObjectSpec`."""

    @property
    def elf(self) -> ElfFile: ...


ObjectSource = ElfFile | HasElf
"""What the generators accept: a parsed ELF file or an object spec built on one."""


def as_elf(source: ObjectSource) -> ElfFile:
    return source if isinstance(source, ElfFile) else source.elf


def as_spec(source: ObjectSource, obj_name: str) -> ObjectSpec:
    """The object model of ``source``: an :class:`ObjectSpec` as is, anything else parsed.

    What libbpf cannot open, a header cannot be made for: the object model's refusal becomes
    the generator's.  The BTF is decoded in full here, so a corrupt type fails before any
    output is assembled rather than halfway through it.
    """
    if isinstance(source, ObjectSpec):
        spec = source
    else:
        try:
            spec = ObjectSpec.from_elf(as_elf(source), obj_name or None)
        except ObjectError as exc:
            raise CodegenError(str(exc)) from exc
    if spec.btf is not None:
        spec.btf.validate()
    return spec


def sanitize_identifier(name: str) -> str:
    """Every character that cannot appear in a C identifier becomes ``_`` (bpftool's rule).

    Works on UTF-8 bytes as the C code does, so a non-ASCII character becomes one ``_`` per
    byte.
    """
    raw = name.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if b in _IDENT_BYTES else "_" for b in raw)


def is_c_identifier(name: str) -> bool:
    return bool(_IDENTIFIER.match(name)) and name not in C_KEYWORDS


def c_identifier(name: str, what: str, file: str | None) -> str:
    """``name``, which the header declares as is: refused unless it is a C identifier.

    bpftool pastes such names (program names, user map names) into C unchecked, so a crafted
    object would get a header that does not compile, or that declares more than it should.
    """
    if not is_c_identifier(name):
        raise CodegenError(
            f"{file or '<bytes>'}: {what} {name!r} is not a C identifier, so it cannot be "
            "declared in a C header"
        )
    return name


def c_string(text: str) -> str:
    """The body of a C string literal holding ``text``'s bytes exactly.

    A deliberate difference from bpftool, which pastes names between the quotes as they are:
    quotes, backslashes, ``?`` and every byte outside printable ASCII (names that are not
    UTF-8 included, as their original bytes) become three-digit octal escapes, which unlike
    ``\\x`` escapes cannot run into a following character.  Ordinary names are unchanged.
    """
    raw = text.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if b in _PLAIN_BYTES else f"\\{b:03o}" for b in raw)


def default_object_name(path: str | os.PathLike[str]) -> str:
    """The default object name: the file name minus ``.bpf.o`` (or ``.o``), as an identifier.

    A deliberate difference from bpftool, which strips only ``.o`` and so names ``app.bpf.o``
    ``app_bpf`` (projects pass ``name app`` to undo that; the kernel selftests all do).  For
    ``x.o`` and explicit names the output is bpftool's.
    """
    base = os.path.basename(os.fspath(path))
    encoded = base.encode("utf-8", "surrogateescape")
    for suffix in (b".bpf.o", b".o"):
        if encoded.endswith(suffix):
            encoded = encoded[: -len(suffix)]
            break
    encoded = encoded[: MAX_OBJ_NAME_LEN - 1]
    return sanitize_identifier(encoded.decode("utf-8", "surrogateescape"))


def check_object_name(name: str) -> str:
    """Validate a user-given object name, truncated to 63 characters as bpftool does.

    bpftool pastes the name into C unchecked; a name that is not a C identifier would give a
    header that does not compile, so it is refused here instead.
    """
    name = name[: MAX_OBJ_NAME_LEN - 1]
    if not is_c_identifier(name):
        raise CodegenError(
            f"invalid object name {name!r}: it must be a C identifier "
            "(letters, digits and '_', not starting with a digit, not a keyword)"
        )
    return name


def resolve_object_name(elf: ElfFile, name: str | None) -> str:
    """The name to generate under: the given one (checked) or one derived from the file."""
    if name is not None:
        return check_object_name(name)
    if not elf.path:
        raise CodegenError("an object name is needed for an object that was not read from a file")
    derived = default_object_name(elf.path)
    if not derived:
        raise CodegenError(f"{elf.path}: cannot derive an object name; pass one with 'name'")
    # bpftool would emit `struct 1abc` (or `struct int`) here; refuse as for an explicit name.
    return check_object_name(derived)


def header_guard(obj_name: str, suffix: str) -> str:
    return f"__{obj_name}_{suffix}__".upper()


def map_ident(m: OpenedMap) -> str | None:
    """The C identifier of a map: its own name, or the section part of a global-data map name.

    Mirrors ``get_map_ident``: the first of ``.data``, ``.rodata``, ``.bss``, ``.kconfig`` found
    *anywhere* in the (possibly truncated) map name starts the identifier.
    """
    if not m.is_internal:
        return m.name
    for suffix in _MAP_SUFFIXES:
        at = m.name.find(suffix)
        if at >= 0:
            return sanitize_identifier(m.name[at + 1 :])
    return None


def datasec_ident(sec_name: str) -> str | None:
    """The identifier of a DATASEC named like a global-data section (``.data.x`` -> ``data_x``)."""
    if sec_name.startswith(_MAP_SUFFIXES):
        return sanitize_identifier(sec_name[1:])
    return None


def find_datasec_for_map(obj: OpenedObject, ident: str) -> DataSec | None:
    """The first DATASEC whose identifier is ``ident`` (how bpftool pairs maps with types)."""
    for sec in obj.datasecs.values():
        if datasec_ident(sec.name) == ident:
            return sec
    return None


def mmapable_maps(obj: OpenedObject) -> list[tuple[OpenedMap, str]]:
    """Memory-mapped global-data maps with their identifiers, in map order."""
    out: list[tuple[OpenedMap, str]] = []
    for m in obj.maps:
        ident = map_ident(m)
        if m.mmapable and ident is not None:
            out.append((m, ident))
    return out


def var_ident(var: SecVar, file: str | None) -> str:
    """A variable's member name in a data-section struct: bpftool's sanitized name, checked."""
    return c_identifier(sanitize_identifier(var.name), "variable", file)


def check_c_names(obj: OpenedObject, btf: Btf | None, file: str | None) -> None:
    """Refuse an object whose header would declare something that is not a C identifier.

    Checked here, before any output: maps, programs, every exposed variable and every name the
    declarations of their types spell out; and no two members of one struct may have the same
    identifier.  Names that become string literals need no check (:func:`c_string`).
    """
    idents = [(m, map_ident(m)) for m in obj.maps]
    maps = [(c_identifier(ident, "map", file), m.name) for m, ident in idents if ident is not None]
    _distinct(maps, "map", file)
    _distinct([(c_identifier(p, "program", file), p) for p in obj.programs], "program", file)
    if btf is None:
        return
    for sec in exposed_datasecs(obj):
        members = []
        for var in sec.vars:
            if var.is_static:
                continue
            members.append((var_ident(var, file), var.name))
            for what, name in _declared_names(btf, var.type_id):
                if not _declarable(what, name):
                    raise CodegenError(
                        f"{file or '<bytes>'}: {sec.name}: the type of variable {var.name!r} "
                        f"has the {what} {name!r}, which cannot be written in C"
                    )
        _distinct(members, f"{sec.name!r} variable", file)


def exposed_datasecs(obj: OpenedObject) -> list[DataSec]:
    """The DATASECs either generator declares: paired with a map by identifier (the structs)
    or as a map's value type (the subskeleton's variable list)."""
    found: dict[int, DataSec] = {}
    for m, ident in mmapable_maps(obj):
        for sec in (find_datasec_for_map(obj, ident), obj.datasec(m.value_type_id)):
            if sec is not None:
                found.setdefault(sec.type_id, sec)
    return list(found.values())


def check_distinct(
    members: Iterable[tuple[str, str]], what: str, file: str | None, why: str
) -> None:
    """Refuse two ``(identifier, name)`` pairs with one identifier; ``why`` says what breaks."""
    seen: dict[str, str] = {}
    for ident, name in members:
        if ident in seen:
            raise CodegenError(
                f"{file or '<bytes>'}: {what} {seen[ident]!r} and {what} {name!r} both have the "
                f"identifier {ident!r}, {why}"
            )
        seen[ident] = name


def _distinct(members: Iterable[tuple[str, str]], what: str, file: str | None) -> None:
    check_distinct(members, what, file, "so a C header cannot declare both")


def _declared_names(btf: Btf, type_id: int) -> Iterator[tuple[str, str]]:
    """(what, name) for each name the C declaration of ``type_id`` spells out.

    That is what :meth:`CDumper.type_declaration` writes: the names of named types (their
    bodies are the user's headers' business), the members and enumerators of anonymous ones,
    which are written inline, parameter names, and type tags.
    """
    seen: set[int] = set()
    stack = [type_id]
    while stack:
        tid = stack.pop()
        if tid == 0 or tid in seen:
            continue
        seen.add(tid)
        t = btf[tid]
        if isinstance(t, BtfInt | BtfFloat):
            yield "base type name", t.name
        elif isinstance(t, BtfPtr | BtfArray | BtfConst | BtfVolatile | BtfRestrict):
            stack.append(t.type)
        elif isinstance(t, BtfTypeTag):
            yield "type tag", t.name
            stack.append(t.type)
        elif isinstance(t, BtfFuncProto):
            stack.append(t.return_type)
            for param in t.params:
                if param.name:
                    yield "parameter name", param.name
                stack.append(param.type)
        elif t.name:
            yield "type name", t.name
        elif isinstance(t, BtfStruct | BtfUnion):
            for member in t.members:
                if member.name:
                    yield "member name", member.name
                stack.append(member.type)
        elif isinstance(t, BtfEnum | BtfEnum64):
            yield from (("enumerator", v.name) for v in t.values)


def _declarable(what: str, name: str) -> bool:
    if what == "type tag":
        return all(b in _PLAIN_BYTES for b in name.encode("utf-8", "surrogateescape"))
    if what == "base type name":
        return bool(_BASE_TYPE_NAME.match(name))
    return is_c_identifier(name)


def render(template: Template, **values: object) -> str:
    return template.substitute({k: str(v) for k, v in values.items()})


_MAPS_HEAD = Template(
    """\

	/* maps */
	s->map_cnt = $count;
	s->map_skel_sz = sizeof(*s->maps);
	s->maps = (struct bpf_map_skeleton *)calloc(s->map_cnt, s->map_skel_sz);
	if (!s->maps) {
		err = -ENOMEM;
		goto err;
	}
"""
)

_PROGS_HEAD = Template(
    """\

	/* programs */
	s->prog_cnt = $count;
	s->prog_skel_sz = sizeof(*s->progs);
	s->progs = (struct bpf_prog_skeleton *)calloc(s->prog_cnt, s->prog_skel_sz);
	if (!s->progs) {
		err = -ENOMEM;
		goto err;
	}
"""
)


def maps_skeleton(obj: OpenedObject, *, mmaped: bool) -> list[str]:
    """The ``s->maps[]`` table: name libbpf will look the map up by, and where to store it."""
    idents = [(m, ident) for m in obj.maps if (ident := map_ident(m)) is not None]
    if not idents:
        return []
    lines = [render(_MAPS_HEAD, count=len(idents))]
    for i, (m, ident) in enumerate(idents):
        lines.append(f'\n\ts->maps[{i}].name = "{c_string(m.name)}";\n')
        lines.append(f"\ts->maps[{i}].map = &obj->maps.{ident};\n")
        if mmaped and m.mmapable:
            lines.append(f"\ts->maps[{i}].mmaped = (void **)&obj->{ident};\n")
    return lines


def progs_skeleton(obj: OpenedObject, *, links: bool) -> list[str]:
    """The ``s->progs[]`` table (and where libbpf stores each auto-attached link)."""
    if not obj.programs:
        return []
    lines = [render(_PROGS_HEAD, count=len(obj.programs))]
    for i, prog in enumerate(obj.programs):
        lines.append(f'\n\ts->progs[{i}].name = "{c_string(prog)}";\n')
        lines.append(f"\ts->progs[{i}].prog = &obj->progs.{prog};\n")
        if links:
            lines.append(f"\ts->progs[{i}].link = &obj->links.{prog};\n")
    return lines


def datasec_struct(
    btf: Btf, dumper: CDumper, sec: DataSec, ident: str, obj_name: str, file: str | None
) -> list[str]:
    """A skeleton's view of one data section: a struct with explicit ``__padN`` fields.

    The padding assumes at most 4-byte alignment (a 32-bit host), so that the struct lands every
    field on its BTF offset on any host: on 64-bit hosts a pad may be redundant, never wrong.
    Static variables are skipped, and so are ``const``/``volatile`` except in ``.kconfig``,
    which user space may only read.
    """
    strip_mods = sec.name != KCONFIG
    layout = TypeLayout(btf)
    lines = [f"\tstruct {obj_name}__{ident} {{\n"]
    off = 0
    pad_cnt = 0
    for i, var in enumerate(sec.vars):
        if var.is_static:
            continue
        if off > var.offset:
            raise CodegenError(
                f"{file or '<bytes>'}: {sec.name}: variable #{i} {var.name!r} is at offset "
                f"{var.offset}, which overlaps the previous variable ending at {off}"
            )
        align = layout.align_of(var.type_id)
        if align <= 0:
            raise CodegenError(
                f"{file or '<bytes>'}: cannot determine the alignment of variable {var.name!r}"
            )
        align = min(align, 4)
        if (off + align - 1) // align * align != var.offset:
            lines.append(f"\t\tchar __pad{pad_cnt}[{var.offset - off}];\n")
            pad_cnt += 1
        decl = dumper.type_declaration(var.type_id, var_ident(var, file), 2, strip_mods)
        lines.append(f"\t\t{decl};\n")
        off = var.offset + var.size
    lines.append(f"\t}} *{ident};\n")
    return lines
