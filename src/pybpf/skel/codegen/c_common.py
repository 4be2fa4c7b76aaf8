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
from string import Template
from typing import Protocol

from pybpf.btf.btf import Btf
from pybpf.btf.c_dump import CDumper
from pybpf.btf.c_dump_layout import Layout
from pybpf.elf.reader import ElfFile
from pybpf.errors import CodegenError
from pybpf.skel.codegen.libbpf_view import (
    KCONFIG_SEC,
    DataSec,
    OpenedMap,
    OpenedObject,
)

MAX_OBJ_NAME_LEN = 64
"""bpftool keeps object names in a 64-byte buffer: at most 63 characters survive."""

_MAP_SUFFIXES = (".data", ".rodata", ".bss", ".kconfig")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_IDENT_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


class HasElf(Protocol):
    """Anything carrying a parsed object, such as :class:`pybpf.obj.spec.ObjectSpec`."""

    @property
    def elf(self) -> ElfFile: ...


ObjectSource = ElfFile | HasElf
"""What the generators accept: a parsed ELF file or an object spec built on one."""


def as_elf(source: ObjectSource) -> ElfFile:
    return source if isinstance(source, ElfFile) else source.elf


def sanitize_identifier(name: str) -> str:
    """Every character that cannot appear in a C identifier becomes ``_`` (bpftool's rule).

    Works on UTF-8 bytes as the C code does, so a non-ASCII character becomes one ``_`` per
    byte.
    """
    raw = name.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if b in _IDENT_BYTES else "_" for b in raw)


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
    if not _IDENTIFIER.match(name):
        raise CodegenError(
            f"invalid object name '{name}': it must be a C identifier "
            "(letters, digits and '_', not starting with a digit)"
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
    if derived[0].isdigit():
        # bpftool would emit `struct 1abc` here; refuse as for an explicit name.
        check_object_name(derived)
    return derived


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
        lines.append(f'\n\ts->maps[{i}].name = "{m.name}";\n')
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
        lines.append(f'\n\ts->progs[{i}].name = "{prog}";\n')
        lines.append(f"\ts->progs[{i}].prog = &obj->progs.{prog};\n")
        if links:
            lines.append(f"\ts->progs[{i}].link = &obj->links.{prog};\n")
    return lines


def datasec_struct(
    btf: Btf, dumper: CDumper, sec: DataSec, obj_name: str, file: str | None
) -> list[str]:
    """A skeleton's view of one data section: a struct with explicit ``__padN`` fields.

    The padding assumes at most 4-byte alignment (a 32-bit host), so that the struct lands every
    field on its BTF offset on any host: on 64-bit hosts a pad may be redundant, never wrong.
    Static variables are skipped, and so are ``const``/``volatile`` except in ``.kconfig``,
    which user space may only read.
    """
    ident = datasec_ident(sec.name)
    assert ident is not None
    strip_mods = sec.name != KCONFIG_SEC
    layout = Layout(btf)
    lines = [f"\tstruct {obj_name}__{ident} {{\n"]
    off = 0
    pad_cnt = 0
    for i, var in enumerate(sec.vars):
        if var.is_static:
            continue
        if off > var.offset:
            raise CodegenError(
                f"{file or '<bytes>'}: {sec.name}: variable #{i} '{var.name}' is at offset "
                f"{var.offset}, which overlaps the previous variable ending at {off}"
            )
        align = layout.align_of(var.type_id)
        if align <= 0:
            raise CodegenError(
                f"{file or '<bytes>'}: cannot determine the alignment of variable '{var.name}'"
            )
        align = min(align, 4)
        if (off + align - 1) // align * align != var.offset:
            lines.append(f"\t\tchar __pad{pad_cnt}[{var.offset - off}];\n")
            pad_cnt += 1
        decl = dumper.type_declaration(var.type_id, sanitize_identifier(var.name), 2, strip_mods)
        lines.append(f"\t\t{decl};\n")
        off = var.offset + var.size
    lines.append(f"\t}} *{ident};\n")
    return lines
