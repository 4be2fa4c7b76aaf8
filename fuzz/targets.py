"""The fuzz entry points: one function per pybpf surface, each taking the input's bytes.

Each target calls the public API as the ``pybpf`` command line does (``btf dump``, ``object
show``, ``gen skeleton|subskeleton``, ``gen object``) and touches what the command would print,
so that lazily decoded parts are decoded too.  A target returns normally or raises
:class:`~pybpf.errors.BpfError` for input pybpf refuses; every other exception is a defect.
A target also raises :class:`Finding` itself where a call "succeeded" with a result that is
wrong in a way the fuzzer can check cheaply: generated Python that does not compile or import
cleanly, a linked object pybpf cannot open again.

Two-input targets (``btf_ext``: BTF plus ``.BTF.ext``; ``link``: two objects) take both parts
packed with :func:`pack_pair`, so one byte string still describes one case.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

from fuzz.importcheck import ImportChecker
from pybpf.btf.btf import Btf
from pybpf.btf.c_dump import dump_c
from pybpf.btf.dump_raw import dump_raw
from pybpf.btf.ext import BtfExt, CoreRelo
from pybpf.elf import ElfFile
from pybpf.errors import BpfError
from pybpf.linker import link_objects
from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.show import format_object
from pybpf.object import BpfObject
from pybpf.skel.codegen import generate

OBJECT_NAME = "fuzz_obj.bpf.o"
"""File name the codegen targets write their input to (the object name is ``fuzz_obj``)."""

_PAIR_MAGIC = b"PBF2"
_PAIR_HEADER = struct.Struct("<4sI")


class Finding(Exception):
    """A defect a target detected in a result (not an exception pybpf raised).

    ``key`` names the kind of defect without case-specific detail, so that the drivers count
    one distinct finding per key; ``hang`` marks a step that exceeded its time limit.
    """

    def __init__(self, key: str, message: str, *, hang: bool = False) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.hang = hang


# --------------------------------------------------------------------------- two-part inputs


def pack_pair(first: bytes, second: bytes) -> bytes:
    """One input carrying two byte strings: magic, the first one's length, both of them."""
    return _PAIR_HEADER.pack(_PAIR_MAGIC, len(first)) + first + second


def unpack_pair(data: bytes) -> tuple[bytes, bytes]:
    """The two parts of a :func:`pack_pair` input; a mangled header gives halves of the data.

    Mutation may destroy the header; splitting in the middle then still yields two inputs
    instead of wasting the case.
    """
    if len(data) >= _PAIR_HEADER.size:
        magic, first_len = _PAIR_HEADER.unpack_from(data)
        rest = data[_PAIR_HEADER.size :]
        if magic == _PAIR_MAGIC and first_len <= len(rest):
            return rest[:first_len], rest[first_len:]
    middle = len(data) // 2
    return data[:middle], data[middle:]


# --------------------------------------------------------------------------- scratch files

_scratch: tuple[int, Path] | None = None


def scratch_dir() -> Path:
    """A directory of this process on tmpfs (``/dev/shm`` when there is one), made on demand.

    Keyed by pid: worker processes forked from a parent that already made one get their own.
    """
    global _scratch
    pid = os.getpid()
    if _scratch is None or _scratch[0] != pid:
        base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else Path("/tmp")
        path = base / f"pybpf-fuzz-{pid}"
        path.mkdir(exist_ok=True)
        _scratch = (pid, path)
    return _scratch[1]


def remove_scratch() -> None:
    """Delete this process's scratch directory and stop its import checker."""
    global _scratch, _checker
    if _checker is not None and _checker[0] == os.getpid():
        _checker[1].close()
    _checker = None
    if _scratch is not None and _scratch[0] == os.getpid():
        shutil.rmtree(_scratch[1], ignore_errors=True)
    _scratch = None


def _object_file(data: bytes) -> Path:
    path = scratch_dir() / OBJECT_NAME
    path.write_bytes(data)
    return path


_checker: tuple[int, ImportChecker] | None = None


def import_checker() -> ImportChecker:
    """This process's import checker (a persistent subprocess), started on first use."""
    global _checker
    if _checker is None or _checker[0] != os.getpid():
        _checker = (os.getpid(), ImportChecker(scratch_dir() / "imports"))
    return _checker[1]


# --------------------------------------------------------------------------- targets


def elf(data: bytes) -> None:
    """``ElfFile.from_bytes`` and every query the object layer makes of a parsed file.

    The results are formatted the way a listing would print them, so that lazily decoded
    values (relocations, symbol lists) are really produced.
    """
    parsed = ElfFile.from_bytes(data, path="fuzz.o")
    lines = [repr(parsed), f"license={parsed.license!r} version={parsed.kernel_version}"]
    for section in parsed.sections[1:]:
        symbols = sum(1 for _ in parsed.symbols_in(section.index))
        relocations = len(parsed.relocations_for(section.index))
        lines.append(
            f"{section.name} exec={section.is_exec} nobits={section.is_nobits} "
            f"bytes={len(section.data)} symbols={symbols} relocations={relocations}"
        )
    lines.extend(
        f"{rel.section.name}: {len(rel.relocations)}" for rel in parsed.relocation_sections
    )
    # symbol_named is a linear scan: a few lookups, not one per symbol, keep the case linear.
    lines.extend(repr(parsed.symbol_named(sym.name)) for sym in parsed.symbols[1:9])
    "\n".join(lines)


def btf(data: bytes) -> None:
    """``pybpf btf dump file RAW`` in both formats: raw BTF parsed, dumped raw and as C."""
    parsed = Btf.from_bytes(data, file="fuzz.btf", section=None)
    dump_raw(parsed)
    dump_c(parsed)


def btf_ext(data: bytes) -> None:
    """``.BTF.ext`` parsed against the BTF it comes with, every record's derived fields read."""
    btf_bytes, ext_bytes = unpack_pair(data)
    types = Btf.from_bytes(btf_bytes, file="fuzz.o", section=".BTF")
    ext = BtfExt.from_bytes(ext_bytes, types, file="fuzz.o")
    lines = list(ext.sections())
    for table in (ext.func_info, ext.line_info, ext.core_relos):
        for section, records in table.items():
            for record in records:
                lines.append(f"{section} insn {record.insn_idx}: {record}")
                if isinstance(record, CoreRelo):
                    lines.append(f"{record.access_spec} field={record.kind.is_field_based}")
    "\n".join(lines)


def object_open(data: bytes) -> None:
    """``pybpf object show`` (text and JSON) and ``BpfObject.open`` of the image, then close."""
    spec = ObjectSpec.from_bytes(data, path="fuzz.o")
    format_object(spec)
    format_object(spec, as_json=True)
    with BpfObject.open(data) as obj:
        for m in obj.maps:
            len(m.initial_value)


def gen_c(data: bytes) -> None:
    """``pybpf gen skeleton|subskeleton FILE`` (C), from a file as on the command line.

    Compiling every header would cost a hundred times the generation, so the text gets a
    lexical check instead, aimed at what a name from the object can break: a string literal
    or comment it leaves open, a member it names after a C keyword.
    """
    path = _object_file(data)
    for kind in ("skeleton", "subskeleton"):
        check_c(generate(kind, path, lang="c"), kind)


_C_LEXEMES = re.compile(
    r"""/\*.*?\*/|//[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|(/\*|"|')""", re.S
)
"""Comments and literals as C lexes them; group 1 is an opening that never closes."""
_C_MEMBER = re.compile(r"struct bpf_(?:map|program|link) \*(\w+);")
C_KEYWORDS = frozenset(
    {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
        "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
        "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
        "union", "unsigned", "void", "volatile", "while", "_Bool", "_Complex", "_Imaginary",
    }
)  # fmt: skip


def check_c(text: str, kind: str) -> None:
    """Raise :class:`Finding` if ``text`` leaves a literal or comment open or misuses a keyword."""
    for match in _C_LEXEMES.finditer(text):
        if match.group(1):
            line = text.count("\n", 0, match.start()) + 1
            shown = text.splitlines()[line - 1][:120]
            raise Finding(f"generated C {kind}: unterminated {match.group(1)}", f"{line}: {shown}")
    for match in _C_MEMBER.finditer(text):
        if match.group(1) in C_KEYWORDS:
            raise Finding(f"generated C {kind}: keyword as member name", match.group(0))


def gen_python(data: bytes) -> None:
    """``pybpf gen skeleton|subskeleton FILE --lang python``, then compile and import it.

    The text is encoded exactly as the command line writes it (UTF-8, names that are not
    UTF-8 passed through byte for byte), because those bytes are what a user imports.  A
    module that does not compile or import, or whose import has side effects, is a finding:
    generation must never succeed with such a module.
    """
    path = _object_file(data)
    for kind in ("skeleton", "subskeleton"):
        text = generate(kind, path, lang="python")
        source = text.encode("utf-8", "surrogateescape")
        try:
            compile(source, f"{kind}.py", "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            reason = str(exc.args[0] if exc.args else exc)
            not_utf8 = isinstance(exc, UnicodeDecodeError) or reason.startswith("(unicode error)")
            cause = "not UTF-8" if not_utf8 else type(exc).__name__
            line = getattr(exc, "text", None)
            where = f"{reason}; line {getattr(exc, 'lineno', '?')}: {line!r}"
            raise Finding(f"generated {kind} does not compile ({cause})", where) from None
        problem = import_checker().check(source)
        if problem is not None:
            raise Finding(
                f"generated {kind} import: {problem.key}", problem.detail, hang=problem.hang
            )


def link(data: bytes) -> None:
    """``pybpf gen object OUT A B``; when both inputs open as objects, so must the output."""
    first, second = unpack_pair(data)
    linked = link_objects([("a.bpf.o", first), ("b.bpf.o", second)])
    if not (_opens(first, "a.bpf.o") and _opens(second, "b.bpf.o")):
        return
    try:
        ObjectSpec.from_bytes(linked, path="linked.o")
    except BpfError as exc:
        reason = getattr(exc, "reason", str(exc))
        raise Finding(f"linked output does not open ({type(exc).__name__})", reason) from None


def _opens(data: bytes, name: str) -> bool:
    try:
        ObjectSpec.from_bytes(data, path=name)
    except BpfError:
        return False
    return True


TARGETS: dict[str, Callable[[bytes], None]] = {
    "elf": elf,
    "btf": btf,
    "btf_ext": btf_ext,
    "object": object_open,
    "gen_python": gen_python,
    "gen_c": gen_c,
    "link": link,
}
"""Target name (the corpus directory's name) -> entry point."""

PAIRED = frozenset({"btf_ext", "link"})
"""Targets whose input is a :func:`pack_pair` of two parts."""


def driver_arguments(doc: str) -> argparse.ArgumentParser:
    """A driver's command-line parser (described by its docstring) with ``--target``."""
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    parser.add_argument(
        "--target",
        action="append",
        choices=sorted(TARGETS),
        help="target to fuzz (repeatable; default: all)",
    )
    return parser
