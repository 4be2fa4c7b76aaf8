"""The linker facing hostile inputs: refusals that name the input, bounded cost, safe output.

Two kinds of tests.  Aimed edits of the link fixtures, one per defect found by a fuzz probe
(an 8-byte edit of ``sh_addralign``, a FUNC whose type is no FUNC_PROTO, a section symbol
outside any section, symbol offsets and addends that overflow the output's fields), each of
which must be a :class:`LinkError` naming the file and the section or symbol.  And a seeded
mutation run over the fields the linker interprets, which must raise nothing but
:class:`BpfError`, within a time and output-size budget, also under ``python -O`` (where an
``assert`` guarding input would vanish).  Then ``gen object``'s output file: written through
an exclusively created temporary file, never through a planted symlink.
"""

from __future__ import annotations

import os
import random
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import compile_bpf
from pybpf.elf import ElfFile, SectionType, SymbolType
from pybpf.errors import BpfError, FormatError, LinkError
from pybpf.linker import link_files, link_objects
from pybpf.obj.object_spec import ObjectSpec

TESTS = Path(__file__).resolve().parent
FIXTURE_SET = ("link_lib1", "link_lib2", "link_app")
PER_CASE_SECONDS = 2.0
SYM = struct.Struct("<IBBHQQ")
SHDR_SIZE = 64
SH_ADDRALIGN = 48
SHN_ABS = 0xFFF1
SHN_XINDEX = 0xFFFF


def fixture(name: str) -> bytes:
    return compile_bpf(name).read_bytes()


def symbol_offset(
    data: bytes | bytearray, name: str, *, section_symbol_of: str | None = None
) -> int:
    """File offset of the symbol table entry of ``name`` (or of the section symbol of
    section ``section_symbol_of``)."""
    elf = ElfFile.from_bytes(bytes(data))
    symtab = next(s for s in elf.sections if s.type == SectionType.SHT_SYMTAB)
    for sym in elf.symbols[1:]:
        if section_symbol_of is not None:
            if sym.type == SymbolType.STT_SECTION and (
                elf.sections[sym.shndx].name == section_symbol_of
            ):
                return symtab.offset + sym.index * SYM.size
        elif sym.name == name and sym.type != SymbolType.STT_SECTION:
            return symtab.offset + sym.index * SYM.size
    raise AssertionError(f"no symbol {name or section_symbol_of}")


def header_offset(data: bytes | bytearray, section: str) -> int:
    elf = ElfFile.from_bytes(bytes(data))
    (shoff,) = struct.unpack_from("<Q", data, 40)
    index = next(s.index for s in elf.sections if s.name == section)
    return int(shoff) + index * SHDR_SIZE


def link_pair(first: tuple[str, bytes], second: tuple[str, bytes]) -> bytes:
    return link_objects([first, second])


# ------------------------------------------------------------------------- aimed defects


def test_absurd_section_alignment_is_refused_quickly() -> None:
    """One 8-byte edit of ``sh_addralign`` used to make a 1 GiB output (or a MemoryError)."""
    data = bytearray(fixture("link_lib2"))
    struct.pack_into("<Q", data, header_offset(data, ".data") + SH_ADDRALIGN, 1 << 30)
    start = time.monotonic()
    with pytest.raises(LinkError) as err:
        link_pair(("lib1.o", fixture("link_lib1")), ("evil.o", bytes(data)))
    assert time.monotonic() - start < PER_CASE_SECONDS
    message = str(err.value)
    assert "evil.o" in message and ".data" in message and str(1 << 30) in message


@pytest.mark.parametrize("align", [8192, 3, 1 << 63])
def test_alignments_beyond_a_page_or_not_powers_of_two(align: int) -> None:
    data = bytearray(fixture("link_lib2"))
    struct.pack_into("<Q", data, header_offset(data, ".data.custom") + SH_ADDRALIGN, align)
    with pytest.raises(LinkError, match=rf"evil\.o: section \.data\.custom alignment {align}"):
        link_pair(("lib1.o", fixture("link_lib1")), ("evil.o", bytes(data)))


def test_page_alignment_is_still_accepted() -> None:
    data = bytearray(fixture("link_lib2"))
    struct.pack_into("<Q", data, header_offset(data, ".data.custom") + SH_ADDRALIGN, 4096)
    out = ElfFile.from_bytes(link_pair(("lib1.o", fixture("link_lib1")), ("ok.o", bytes(data))))
    custom = out.section(".data.custom")
    assert custom is not None and custom.addralign == 4096
    assert custom.size == 4096 + 4  # lib1's custom_a, then lib2's custom_b on the next page


def _func_with_int_type(data: bytes, func: str) -> bytes:
    """``data`` with BTF FUNC ``func`` pointing at type 1 (clang's first type here is a
    PTR) instead of its FUNC_PROTO; found in the raw ``.BTF`` bytes (header, then 12-byte
    FUNC records ``name_off, info, type``, 4-byte aligned)."""
    elf = ElfFile.from_bytes(data)
    btf = elf.section(".BTF")
    assert btf is not None
    _, _, _, hdr_len, type_off, type_len, str_off, _ = struct.unpack_from("<HBBIIIII", btf.data)
    strings = btf.data[hdr_len + str_off :]
    name_off = strings.index(b"\0" + func.encode() + b"\0") + 1
    types = hdr_len + type_off
    (first_info,) = struct.unpack_from("<I", btf.data, types + 4)
    assert (first_info >> 24) & 0x1F != 13, "type 1 is a FUNC_PROTO"  # BTF_KIND_FUNC_PROTO
    records = [
        pos
        for pos in range(types, types + type_len - 8, 4)
        if struct.unpack_from("<II", btf.data, pos) == (name_off, 12 << 24 | 1)  # global FUNC
    ]
    assert len(records) == 1, records
    out = bytearray(data)
    struct.pack_into("<I", out, btf.offset + records[0] + 8, 1)
    return bytes(out)


def test_func_whose_type_is_not_a_func_proto() -> None:
    """lib2_core is defined in lib2 only: the linker used to ``assert`` on its prototype."""
    evil = _func_with_int_type(fixture("link_lib2"), "lib2_core")
    with pytest.raises(LinkError) as err:
        link_pair(("evil.o", evil), ("lib1.o", fixture("link_lib1")))
    message = str(err.value)
    assert "evil.o" in message and ".BTF" in message and "lib2_core" in message
    assert "FUNC_PROTO" in message


@pytest.mark.parametrize("shndx", [SHN_ABS, SHN_XINDEX])
def test_section_symbol_outside_any_section(shndx: int) -> None:
    """lib2's ``.data`` section symbol (its code reaches ``counter`` through it) moved to a
    reserved index: the linker used to ``assert`` finding the section's placement."""
    data = bytearray(fixture("link_lib2"))
    struct.pack_into("<H", data, symbol_offset(data, "", section_symbol_of=".data") + 6, shndx)
    with pytest.raises(BpfError) as err:
        link_pair(("lib1.o", fixture("link_lib1")), ("evil.o", bytes(data)))
    assert isinstance(err.value, LinkError | FormatError)
    assert "evil.o" in str(err.value) and "symbol" in str(err.value)


def test_symbol_outside_its_section() -> None:
    """custom_b at 1 TiB into its 4-byte section used to fail deep in BTF encoding with a
    message naming no file (``DATASEC '.data.custom': field out of range``)."""
    data = bytearray(fixture("link_lib2"))
    struct.pack_into("<Q", data, symbol_offset(data, "custom_b") + 8, 1 << 40)
    with pytest.raises(LinkError) as err:
        link_pair(("lib1.o", fixture("link_lib1")), ("evil.o", bytes(data)))
    message = str(err.value)
    assert "evil.o" in message and "custom_b" in message and ".data.custom" in message


def test_addend_that_overflows_its_immediate() -> None:
    """lib2 reaches its static ``counter`` by ``ld_imm64`` against ``.data`` plus an addend
    in the instruction; placed after lib1's ``.data`` the addend grows past 32 bits.  That
    used to be a raw ``struct.error``."""
    data = bytearray(fixture("link_lib2"))
    elf = ElfFile.from_bytes(bytes(data))
    text = elf.section(".text")
    assert text is not None
    section_sym = next(
        s.index
        for s in elf.symbols
        if s.type == SymbolType.STT_SECTION and elf.sections[s.shndx].name == ".data"
    )
    reloc = next(r for r in elf.relocations_for(text.index) if r.symbol == section_sym)
    struct.pack_into("<i", data, text.offset + reloc.offset + 4, 2**31 - 8)
    with pytest.raises(LinkError) as err:
        link_pair(("lib1.o", fixture("link_lib1")), ("evil.o", bytes(data)))
    message = str(err.value)
    assert "evil.o" in message and ".rel.text" in message and f"{reloc.offset:#x}" in message


def test_call_to_an_extern_that_is_not_a_bpf_call() -> None:
    """A relocated call to ``lib1_entry`` whose src_reg is not BPF_PSEUDO_CALL: the app opens
    (libbpf types extern calls by relocation alone), but bound to lib1's function the output
    would not.  Found by the fuzzer; the linker used to write that output."""
    data = bytearray(fixture("link_app"))
    elf = ElfFile.from_bytes(bytes(data))
    extern = next(s.index for s in elf.symbols if s.name == "lib1_entry")
    code, reloc = next(
        (sec, r)
        for sec in elf.sections
        if sec.is_exec
        for r in elf.relocations_for(sec.index)
        if r.symbol == extern
    )
    data[code.offset + reloc.offset + 1] = 0xD0 | (data[code.offset + reloc.offset + 1] & 0xF)
    ObjectSpec.from_elf(ElfFile.from_bytes(bytes(data)), "app")  # the input itself opens
    with pytest.raises(LinkError) as err:
        link_objects(
            [("app.o", bytes(data)), ("lib1.o", fixture("link_lib1")),
             ("lib2.o", fixture("link_lib2"))]
        )
    message = str(err.value)
    assert "app.o" in message and f"{reloc.offset:#x}" in message and "src_reg 13" in message


def test_output_section_past_what_btf_can_describe() -> None:
    """Two ``.bss`` claiming 3 GiB each (NOBITS: no bytes in the file) add up past u32."""
    app = bytearray(fixture("link_app"))
    struct.pack_into("<Q", app, header_offset(app, ".bss") + 32, 3 << 30)
    lib1 = bytearray(fixture("link_lib1"))
    struct.pack_into("<Q", lib1, header_offset(lib1, ".bss") + 32, 3 << 30)
    with pytest.raises(LinkError) as err:
        link_objects(
            [("app.o", bytes(app)), ("lib1.o", bytes(lib1)), ("lib2.o", fixture("link_lib2"))]
        )
    message = str(err.value)
    assert "lib1.o" in message and ".bss" in message


# ------------------------------------------------------------------------- mutation run

CASES = 1200
FIELD_VALUES = (0, 1, 7, 8, 0xFF00, 0xFFF1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 32, 1 << 40)
HEADER_FIELDS = ((0, 4), (4, 4), (8, 8), (24, 8), (32, 8), (40, 4), (44, 4), (SH_ADDRALIGN, 8))
"""(offset, width) of sh_name, sh_type, sh_flags, sh_offset, sh_size, sh_link, sh_info and
sh_addralign in a section header."""


def _mutant(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One edit of a field the linker interprets: a symbol, a relocation, a section header,
    a word of ``.BTF``/``.BTF.ext``, or a few random bit flips anywhere."""
    elf = ElfFile.from_bytes(data)
    (shoff,) = struct.unpack_from("<Q", data, 40)
    kind = rng.choice(("symbol", "relocation", "header", "btf", "flips"))
    buf = bytearray(data)
    if kind == "flips":
        where = [rng.randrange(len(buf)) for _ in range(rng.randint(1, 8))]
        for pos in where:
            buf[pos] ^= 1 << rng.randrange(8)
        return f"flips@{where}", bytes(buf)
    if kind == "symbol":
        symtab = next(s for s in elf.sections if s.type == SectionType.SHT_SYMTAB)
        field, width = rng.choice([(0, 4), (4, 1), (5, 1), (6, 2), (8, 8), (16, 8)])
        pos = symtab.offset + rng.randrange(1, symtab.size // 24) * 24 + field
    elif kind == "relocation":
        rel = rng.choice(elf.relocation_sections).section
        field, width = rng.choice([(0, 8), (8, 4), (12, 4)])
        pos = rel.offset + rng.randrange(rel.size // 16) * 16 + field
    elif kind == "header":
        field, width = rng.choice(HEADER_FIELDS)
        pos = int(shoff) + rng.randrange(1, len(elf.sections)) * SHDR_SIZE + field
    else:
        sec = elf.section(rng.choice((".BTF", ".BTF.ext")))
        assert sec is not None
        pos, width = sec.offset + rng.randrange(sec.size // 4) * 4, 4
    value = rng.choice(FIELD_VALUES) if rng.random() < 0.7 else rng.getrandbits(64)
    buf[pos : pos + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    return f"{kind}@{pos:#x}={value:#x}", bytes(buf)


def mutation_problems(cases: int, seed: str) -> list[str]:
    """Link the three fixtures (which resolve each other's externs) ``cases`` times, one or
    two of them mutated, in a shuffled order; every way the linker misbehaved (a raw
    exception, an error naming no input, too slow, too big an output)."""
    rng = random.Random(seed)
    data = {name: fixture(name) for name in FIXTURE_SET}
    budget = 2 * sum(map(len, data.values()))
    problems: list[str] = []
    for _ in range(cases):
        inputs = [(f"{name}.o", data[name]) for name in FIXTURE_SET]
        labels = []
        for i in rng.sample(range(len(inputs)), rng.choice((1, 1, 2))):
            name = FIXTURE_SET[i]
            label, mutant = _mutant(data[name], rng)
            inputs[i] = (f"{name}.mutant.o", mutant)
            labels.append(f"{name} {label}")
        rng.shuffle(inputs)
        case = ", ".join(labels)
        start = time.monotonic()
        try:
            out = link_objects(inputs)
            if len(out) > budget:
                problems.append(f"{case}: {len(out)}-byte output")
        except (LinkError, FormatError) as exc:
            if not any(name in str(exc) for name, _ in inputs):
                problems.append(f"{case}: error names no input: {exc}")
        except BpfError:
            pass
        except Exception as exc:  # what this test hunts for
            problems.append(f"{case}: {type(exc).__name__}: {exc}")
        if time.monotonic() - start > PER_CASE_SECONDS:
            problems.append(f"{case}: took {time.monotonic() - start:.1f}s")
    return problems


def test_mutated_inputs_raise_only_bpf_errors_naming_the_input() -> None:
    assert mutation_problems(CASES, "pybpf-link-hostile") == []


def test_mutated_inputs_under_python_O() -> None:
    """Under ``-O`` an ``assert`` guarding input is gone, and corrupt input that hit one
    goes on to an AttributeError.  ``pytest.raises`` still works there; plain asserts don't,
    so the child reports problems through its exit status."""
    run = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "if not sys.flags.optimize: sys.exit('python -O did not set sys.flags.optimize')\n"
        "import test_linker_hostile as t\n"
        "t.test_func_whose_type_is_not_a_func_proto()\n"
        "t.test_section_symbol_outside_any_section(t.SHN_ABS)\n"
        "t.test_section_symbol_outside_any_section(t.SHN_XINDEX)\n"
        "problems = t.mutation_problems(150, 'pybpf-link-hostile-O')\n"
        "sys.exit('\\n'.join(problems) or None)\n"
    )
    result = subprocess.run(
        [sys.executable, "-O", "-c", run, str(TESTS)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------- gen object output


def _inputs() -> list[str]:
    return [str(compile_bpf(name)) for name in FIXTURE_SET]


def test_planted_symlink_at_the_old_temporary_name_is_not_followed(tmp_path: Path) -> None:
    """``gen object`` used to write ``OUT.tmp<pid>`` through whatever was there: a symlink
    planted at that name made root overwrite its target."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    out = tmp_path / "out.o"
    planted = [Path(f"{out}.tmp{os.getpid()}"), Path(f"{out}.tmp"), Path(f"{out}~")]
    for name in planted:
        name.symlink_to(victim)
    link_files(str(out), _inputs(), [])
    assert victim.read_bytes() == b"precious"
    assert all(p.is_symlink() and p.readlink() == victim for p in planted)
    assert not out.is_symlink()
    assert out.read_bytes() == link_objects(_inputs())


def test_no_temporary_file_is_left_after_success_or_failure(tmp_path: Path) -> None:
    out = tmp_path / "out.o"
    link_files(str(out), _inputs(), [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.o"]
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"\x7fELF" + bytes(60))
    with pytest.raises(BpfError):
        link_files(str(out), [str(bad)], [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.o", "out.o"]


def test_failed_write_keeps_the_old_output_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.o"
    out.write_bytes(b"old object")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(LinkError, match=r"out\.o: cannot write: No space left on device"):
        link_files(str(out), _inputs(), [])
    assert out.read_bytes() == b"old object"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.o"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_output_appears_whole_with_the_umask_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int, mode: int
) -> None:
    """At the rename the new bytes are complete, in a file of the output's directory, with
    the mode ``open()`` gives under the umask (``mkstemp``'s 0600 would surprise); the old
    output is untouched until then."""
    out = tmp_path / "out.o"
    out.write_bytes(b"old object")
    expected = link_objects(_inputs())
    seen: list[tuple[Path, bytes, int, bytes]] = []
    real_replace = os.replace

    def watching_replace(src: str, dst: str) -> None:
        seen.append((Path(src), Path(src).read_bytes(), os.stat(src).st_mode, out.read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    old_umask = os.umask(umask)
    try:
        link_files(str(out), _inputs(), [])
    finally:
        os.umask(old_umask)
    [(src, data, src_mode, old_output)] = seen
    assert src.parent == tmp_path and data == expected and old_output == b"old object"
    assert stat.S_IMODE(src_mode) == mode
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert out.read_bytes() == expected


@pytest.mark.parametrize(("field", "value", "where"), [(18, 62, "0x12"), (16, 2, "0x10")])
def test_an_input_that_is_not_a_bpf_relocatable_object_points_at_the_field(
    field: int, value: int, where: str
) -> None:
    """e_machine x86-64, or e_type ET_EXEC: the error names the input and the header field."""
    data = bytearray(fixture("link_lib2"))
    struct.pack_into("<H", data, field, value)
    with pytest.raises(LinkError) as err:
        link_pair(("lib1.o", fixture("link_lib1")), ("evil.o", bytes(data)))
    message = str(err.value)
    assert message.startswith(f"evil.o: offset {where}: ") and str(value) in message


def test_a_global_in_a_reserved_section_index_is_refused() -> None:
    """Found by the fuzzer: lib2's ``shared_map`` moved to section index 0xfffe.  The linker
    used to write an output whose relocation against it no loader can place."""
    data = bytearray(fixture("link_lib2"))
    struct.pack_into("<H", data, symbol_offset(data, "shared_map") + 6, 0xFFFE)
    with pytest.raises(LinkError) as err:
        link_pair(("lib1.o", fixture("link_lib1")), ("evil.o", bytes(data)))
    message = str(err.value)
    assert "evil.o" in message and "shared_map" in message and "0xfffe" in message


def test_a_function_in_a_non_executable_section_is_refused() -> None:
    """Found by the fuzzer: lib2's ``.text`` with SHF_EXECINSTR cleared.  Both inputs opened,
    and the output's calls to ``lib_compute`` were refused by every loader."""
    data = bytearray(fixture("link_lib2"))
    flags = header_offset(data, ".text") + 8
    struct.pack_into("<Q", data, flags, struct.unpack_from("<Q", data, flags)[0] & ~0x4)
    with pytest.raises(LinkError) as err:
        link_pair(("lib1.o", fixture("link_lib1")), ("evil.o", bytes(data)))
    message = str(err.value)
    assert "evil.o" in message and "non-executable section .text" in message


def test_an_inactive_maps_section_is_refused_on_open() -> None:
    """Found by the fuzzer: lib2's ``.maps`` header typed SHT_NULL.  The input opened (its
    size still covered the map), the linker copied no bytes for an inactive section, and the
    output's map pointed past the end of an empty ``.maps``.  An inactive header has no
    contents (ELF spec), so such an input is refused where it is opened, naming the field."""
    data = bytearray(fixture("link_lib2"))
    field = header_offset(data, ".maps") + 4
    struct.pack_into("<I", data, field, SectionType.SHT_NULL)
    with pytest.raises(FormatError) as err:
        ObjectSpec.from_bytes(bytes(data), path="evil.o")
    assert err.value.section == ".maps" and err.value.offset == field
    assert "not SHT_PROGBITS" in str(err.value)
    ObjectSpec.from_bytes(fixture("link_lib2"), path="lib2.o")  # the unpatched input opens


def test_a_call_that_resolves_to_data_is_refused() -> None:
    """Found by the fuzzer: the app's relocation against the extern ``lib_rodata_knob`` moved
    onto its call of ``lib2_core``.  An extern at a call opens (libbpf types it by the
    instruction too), but the linker bound the call to lib2's ``.rodata`` variable and the
    output was refused by every loader; now the input whose call it is gets the error."""
    data = bytearray(fixture("link_app"))
    elf = ElfFile.from_bytes(bytes(data))
    rel = next(r for r in elf.relocation_sections if r.section.name == ".relsyscall")
    names = [elf.symbols[r.symbol].name for r in rel.relocations]
    knob, call = names.index("lib_rodata_knob"), names.index("lib2_core")
    struct.pack_into("<Q", data, rel.section.offset + 16 * knob, rel.relocations[call].offset)
    ObjectSpec.from_bytes(bytes(data), path="evil.o")  # the input alone still opens
    with pytest.raises(LinkError) as err:
        link_objects([("evil.o", bytes(data)), ("lib1.o", fixture("link_lib1")),
                      ("lib2.o", fixture("link_lib2"))])
    message = str(err.value)
    assert message.startswith("evil.o: .relsyscall: the call at ")
    assert "'lib_rodata_knob', which is data in .rodata" in message
