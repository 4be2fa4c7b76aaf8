"""strip_debug against ``llvm-strip -g``: the same object as libbpf and pybpf see it.

llvm-strip drops the DWARF sections and renumbers symbols; pybpf keeps every section index
and empties the DWARF ones.  The bytes differ, so the check is on what matters: pybpf's
object model, bpftool's skeleton (libbpf's own parse) and the loaded programs' tags.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import bpftool, compile_bpf, requires_root
from pybpf.elf import ElfFile
from pybpf.elf.strip import is_debug_section, strip_debug
from pybpf.kernel.progs import prog_get_info_by_fd
from pybpf.obj import ObjectSpec
from pybpf.object import BpfObject

LLVM_STRIP = shutil.which("llvm-strip-16") or shutil.which("llvm-strip")
FIXTURES = ["load_globals", "events_stream", "obj_maps", "skel_globals"]


def stripped_pair(name: str, tmp_path: Path) -> tuple[Path, Path, Path]:
    if LLVM_STRIP is None:
        pytest.skip("llvm-strip is not installed (apt-get install llvm-16)")
    original = compile_bpf(name)
    ours = tmp_path / f"{name}.ours.o"
    ours.write_bytes(strip_debug(original.read_bytes()))
    theirs = tmp_path / f"{name}.llvm.o"
    subprocess.run([LLVM_STRIP, "-g", str(original), "-o", str(theirs)], check=True)
    return original, ours, theirs


def model(path: Path) -> tuple[object, ...]:
    spec = ObjectSpec.from_path(path)
    assert spec.btf is not None
    return (
        [(p.name, p.section_name, p.insns, p.relocations) for p in spec.programs],
        [(m.name, m.type, m.key_size, m.value_size, m.max_entries, m.initial_value)
         for m in spec.maps],
        spec.btf.data,
        [(v.name, v.offset) for v in spec.variables],
    )  # fmt: skip


def skeleton_without_the_blob(path: Path) -> str:
    text = bpftool("gen", "skeleton", path, "name", "x")
    # bpftool 7.1 embeds the object as one string literal after "*sz = SIZE;".
    return re.sub(r'\*sz = \d+;\n\treturn \(const void \*\)"\\\n.*?";', "", text, flags=re.S)


@pytest.mark.parametrize("name", FIXTURES)
def test_the_object_is_the_same_as_llvm_strip_makes_it(name: str, tmp_path: Path) -> None:
    original, ours, theirs = stripped_pair(name, tmp_path)
    elf = ElfFile.open(ours)
    assert all(s.size == 0 for s in elf.sections if is_debug_section(s))
    assert any(is_debug_section(s) and s.size for s in ElfFile.open(original).sections)
    assert len(ours.read_bytes()) < len(original.read_bytes())
    assert model(ours) == model(theirs) == model(original)
    assert skeleton_without_the_blob(ours) == skeleton_without_the_blob(theirs)


@requires_root
def test_the_stripped_object_loads_the_same_programs(tmp_path: Path) -> None:
    _, ours, theirs = stripped_pair("load_globals", tmp_path)
    tags = []
    for path in (ours, theirs):
        with BpfObject.open(path) as obj:
            obj.load()
            tags.append({p.name: prog_get_info_by_fd(p.fd or -1).tag for p in obj.programs
                         if p.fd is not None})  # fmt: skip
    assert tags[0] == tags[1] and tags[0]


def test_keep_debug_embeds_the_object_as_given(tmp_path: Path) -> None:


    obj = compile_bpf("skel_globals")

    def embedded(*flags: str) -> bytes:
        text = subprocess.run(
            [sys.executable, "-m", "pybpf.cli", "gen", "skeleton", str(obj), "name", "g",
             "--lang", "python", *flags], check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        namespace: dict[str, object] = {}
        exec(compile(text, "g.py", "exec"), namespace)  # our own generator's output
        return namespace["G"].object_bytes()  # type: ignore[attr-defined, no-any-return]

    assert embedded("--keep-debug") == obj.read_bytes()
    assert embedded() == strip_debug(obj.read_bytes())
    refused = subprocess.run([sys.executable, "-m", "pybpf.cli", "gen", "skeleton", str(obj),
                              "--keep-debug"], capture_output=True, text=True)  # fmt: skip
    assert refused.returncode != 0 and "--keep-debug applies to --lang python" in refused.stderr
