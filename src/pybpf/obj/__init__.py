"""pybpf.obj: the pure object model (specs parsed from ELF + BTF; no syscalls).

:class:`ObjectSpec` describes one BPF object the way libbpf's ``bpf_object__open()`` sees
it: maps (BTF-defined and global data), programs typed by section name, their relocations,
global variables and externs.  Nothing here talks to the kernel, so every layer above (linker,
code generators, loader, ``pybpf object show``) can use it, and it can be fuzzed freely.
The layer picture is in ``docs/design/architecture.md``.
"""

from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.section_defs import SECTION_DEFS, AutoAttach, SecFlags, SectionDef, find_section_def
from pybpf.obj.specs import (
    ExternKind,
    ExternSpec,
    KcfgType,
    MapKind,
    MapSpec,
    ProgramSpec,
    RelocKind,
    RelocSpec,
    VarSpec,
    section_ident,
)

__all__ = [
    "SECTION_DEFS",
    "AutoAttach",
    "ExternKind",
    "ExternSpec",
    "KcfgType",
    "MapKind",
    "MapSpec",
    "ObjectSpec",
    "ProgramSpec",
    "RelocKind",
    "RelocSpec",
    "SecFlags",
    "SectionDef",
    "VarSpec",
    "find_section_def",
    "section_ident",
]
