"""Code generators for skeletons and subskeletons (pure: they never touch the kernel).

``lang="python"`` gives typed Python modules (:mod:`.python_skeleton`); what follows is about C.

The C generators reproduce ``bpftool gen skeleton`` / ``bpftool gen subskeleton`` of bpftool 7.1
(Debian's build, with its Linux 6.1 libbpf) byte for byte; :func:`generate` is the entry point
of ``pybpf gen skeleton|subskeleton``.  Where bpftool's output would be wrong, pybpf departs
from it on purpose:

- an object name that is not a C identifier (given, or derived from the file name) is refused,
  and so is one that is a C keyword;
- a name the header declares (a program, a map, a variable, or a name spelled out in a
  variable's type) that is not a C identifier, or two that become the same identifier, is
  refused with the symbol named: bpftool pastes them in, giving a header that does not compile
  or that says more than the object meant;
- names written into string literals (map, program and variable names libbpf looks up) are
  escaped: quotes, backslashes, ``?`` and bytes outside printable ASCII become octal escapes;
- an object with global data but no BTF is refused (bpftool's header would not compile);
- a linked object whose DATASEC disagrees with the symbol table about a global's offset (the
  weak-then-strong linker fault) is described by the symbol table, which the BPF code uses;
- a library with a ``.rodata.str1.1``-like section gets a full subskeleton (bpftool prints
  nothing and still succeeds).
"""

from __future__ import annotations

import os
from pathlib import Path

from pybpf.elf.reader import ElfFile
from pybpf.errors import CodegenError
from pybpf.skel.codegen.c_common import ObjectSource, check_object_name, default_object_name
from pybpf.skel.codegen.c_skeleton import generate_c_skeleton
from pybpf.skel.codegen.c_subskeleton import generate_c_subskeleton
from pybpf.skel.codegen.python_skeleton import generate_python

__all__ = [
    "ObjectSource",
    "check_object_name",
    "default_object_name",
    "generate",
    "generate_c_skeleton",
    "generate_c_subskeleton",
    "generate_python",
]

_KINDS = ("skeleton", "subskeleton")


def generate(
    kind: str,
    path: str | os.PathLike[str],
    name: str | None = None,
    lang: str = "c",
    *,
    keep_debug: bool = False,
) -> str:
    """Read the object at ``path`` and return its ``kind`` header in language ``lang``.

    ``keep_debug``: a Python skeleton embeds the object with its DWARF (default: stripped).

    Unreadable or non-BPF files raise :class:`pybpf.ElfError`; objects a skeleton cannot be
    made of, and invalid names, raise :class:`pybpf.CodegenError`.
    """
    if kind not in _KINDS:
        raise CodegenError(f"unknown generator '{kind}' (expected skeleton or subskeleton)")
    if lang not in ("c", "python"):
        raise CodegenError(f"no {kind} generator for language '{lang}' (expected c or python)")
    if name is not None:
        check_object_name(name)
    if lang == "python":
        return generate_python(kind, path, name, keep_debug=keep_debug)
    elf = ElfFile.open(Path(path))
    if kind == "skeleton":
        return generate_c_skeleton(elf, name)
    return generate_c_subskeleton(elf, name)
