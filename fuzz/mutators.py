"""Mutators: byte-level, structure-aware, and hostile-name edits, for every target.

Random flips over a whole object mostly land in DWARF, which pybpf never reads, so most
mutations aim at what the code interprets: the ELF header, section headers, ``.symtab``,
string tables, relocations, ``.maps``, data and code sections, and inside ``.BTF`` and
``.BTF.ext`` their headers, type and record words.  Where things are comes from parsing the
input with :mod:`pybpf.elf` (and the BTF headers by hand); an input that no longer parses gets
byte-level mutations only.

Name edits replace one string, everywhere it appears in the ELF and BTF string tables, with
hostile text of the same length (quotes, newlines, triple quotes, ``/``, bytes that are not
UTF-8, Python keywords, injection attempts), so the rest of the object still parses and the
name reaches the code generators.

:func:`mutate` is what both drivers call; it is deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import keyword
import random
import struct
import sys
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fuzz.targets import PAIRED, pack_pair, unpack_pair
from pybpf.abi.btf import BTF_MAGIC
from pybpf.elf.reader import ElfFile
from pybpf.errors import BpfError

# --------------------------------------------------------------------------- regions

Fields = tuple[tuple[int, int], ...]
"""A record's fields: (offset, width) pairs."""

_ELF_HEADER: Fields = (
    (4, 1), (5, 1), (6, 1), (16, 2), (18, 2), (20, 4), (24, 8), (32, 8), (40, 8),
    (48, 4), (52, 2), (54, 2), (56, 2), (58, 2), (60, 2), (62, 2),
)  # fmt: skip
_SECTION_HEADER: Fields = (
    (0, 4), (4, 4), (8, 8), (16, 8), (24, 8), (32, 8), (40, 4), (44, 4), (48, 8), (56, 8),
)  # fmt: skip
_SYMBOL: Fields = ((0, 4), (4, 1), (5, 1), (6, 2), (8, 8), (16, 8))
_REL: Fields = ((0, 8), (8, 4), (12, 4))
_RELA: Fields = (*_REL, (16, 8))
_INSN: Fields = ((0, 1), (1, 1), (2, 2), (4, 4))
_BTF_HEADER: Fields = ((0, 2), (2, 1), (3, 1), (4, 4), (8, 4), (12, 4), (16, 4), (20, 4))
_EXT_HEADER: Fields = (
    (0, 2), (2, 1), (3, 1), (4, 4), (8, 4), (12, 4), (16, 4), (20, 4), (24, 4), (28, 4),
)  # fmt: skip
_WORD: Fields = ((0, 4),)

SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_REL = 2, 3, 4, 9


@dataclass(frozen=True, slots=True)
class Region:
    """Bytes the code interprets: ``size`` bytes at ``offset``, records of ``stride`` bytes
    each with ``fields``; ``strings`` marks a NUL-separated string table."""

    name: str
    offset: int
    size: int
    stride: int
    fields: Fields
    strings: bool = False


def _btf_regions(data: bytes, base: int, size: int, prefix: str) -> list[Region]:
    """Header, types and strings of the BTF blob at ``data[base:base + size]``."""
    if size < 24:
        return []
    endian = "<" if int.from_bytes(data[base : base + 2], "little") == BTF_MAGIC else ">"
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        endian + "5I", data, base + 4
    )
    regions = [Region(f"{prefix}.header", base, 24, 24, _BTF_HEADER)]
    for name, off, length, strings in (
        ("types", type_off, type_len, False),
        ("strings", str_off, str_len, True),
    ):
        start = base + hdr_len + off
        end = min(start + length, base + size)
        if base <= start < end:
            stride = 1 if strings else 4
            regions.append(Region(f"{prefix}.{name}", start, end - start, stride, _WORD, strings))
    return regions


def _ext_regions(data: bytes, base: int, size: int) -> list[Region]:
    """Header and the three record blocks of the ``.BTF.ext`` at ``data[base:base + size]``."""
    if size < 24:
        return []
    hdr_len = struct.unpack_from("<I", data, base + 4)[0]
    regions = [Region("ext.header", base, min(32, size), 32, _EXT_HEADER)]
    fields = struct.unpack_from("<6I", data, base + 8) if size >= 32 else ()
    for i, name in enumerate(("func_info", "line_info", "core_relo")):
        if 2 * i + 1 >= len(fields):
            break
        start = base + hdr_len + fields[2 * i]
        end = min(start + fields[2 * i + 1], base + size)
        if base <= start < end:
            regions.append(Region(f"ext.{name}", start, end - start, 4, _WORD))
    return regions


def _section_region(name: str, sh_type: int, offset: int, size: int, flags: int) -> Region:
    if sh_type == SHT_SYMTAB:
        return Region(name, offset, size, 24, _SYMBOL)
    if sh_type == SHT_STRTAB:
        return Region(name, offset, size, 1, ((0, 1),), strings=True)
    if sh_type == SHT_REL:
        return Region(name, offset, size, 16, _REL)
    if sh_type == SHT_RELA:
        return Region(name, offset, size, 24, _RELA)
    if flags & 0x4:  # SHF_EXECINSTR: BPF instructions
        return Region(name, offset, size, 8, _INSN)
    return Region(name, offset, size, 4, _WORD)


def elf_regions(data: bytes) -> list[Region]:
    """What pybpf interprets in an ELF object; empty when the input no longer parses."""
    try:
        parsed = ElfFile(data, require_bpf=False)
    except BpfError:
        return []
    shoff = struct.unpack_from(parsed.endian + "Q", data, 40)[0]
    regions = [Region("elf.header", 0, 64, 64, _ELF_HEADER)]
    regions.append(Region("section headers", shoff, 64 * len(parsed.sections), 64, _SECTION_HEADER))
    for s in parsed.sections[1:]:
        # Only sections whose bytes pybpf read (some types it never loads may point anywhere).
        if len(s.data) != s.size or not s.size or s.offset + s.size > len(data):
            continue
        if s.name.startswith(".debug"):
            continue
        if s.name.startswith(".rel") and s.name.removeprefix(".rel").startswith(".debug"):
            continue
        if s.name == ".BTF":
            regions.extend(_btf_regions(data, s.offset, s.size, "btf"))
        elif s.name == ".BTF.ext":
            regions.extend(_ext_regions(data, s.offset, s.size))
        else:
            regions.append(_section_region(s.name, s.type, s.offset, s.size, int(s.flags)))
    return regions


def regions_for(kind: str, data: bytes) -> list[Region]:
    """Regions of one input part: ``kind`` is ``elf``, ``btf`` or ``ext``."""
    if kind == "btf":
        return _btf_regions(data, 0, len(data), "btf")
    if kind == "ext":
        return _ext_regions(data, 0, len(data))
    return elf_regions(data)


_region_cache: OrderedDict[tuple[str, int, int], list[Region]] = OrderedDict()


def cached_regions(kind: str, data: bytes) -> list[Region]:
    """:func:`regions_for`, remembered for recently seen inputs (seeds come back often)."""
    key = (kind, len(data), hash(data))
    found = _region_cache.get(key)
    if found is None:
        found = regions_for(kind, data)
        _region_cache[key] = found
        if len(_region_cache) > 256:
            _region_cache.popitem(last=False)
    return found


# --------------------------------------------------------------------------- values

_INTERESTING = (
    0, 1, 2, 3, 4, 7, 8, 16, 24, 32, 64, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
    0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF,
    0xFFFFFFFFFFFFFFFF,
)  # fmt: skip


def _value(rng: random.Random, old: int, width: int, size: int) -> int:
    """A replacement for field value ``old``: interesting, nearby, or shaped like BTF info."""
    mask = (1 << (8 * width)) - 1
    choice = rng.randrange(8)
    if choice == 0:
        value = rng.choice(_INTERESTING)
    elif choice == 1:
        value = old + rng.choice((-1, 1, -2, 2, 8, -8, 4096))
    elif choice == 2:
        value = old ^ (1 << rng.randrange(8 * width))
    elif choice == 3:
        value = rng.choice((size, size + 1, size - 1, size // 2, old * 2, old * 4096))
    elif choice == 4:
        value = rng.randrange(64)
    elif choice == 5 and width == 4:
        # A BTF info word: kind in bits 24-28, kind_flag bit 31, vlen in the low 16 bits.
        vlen = rng.choice((0, 1, 2, 3, rng.randrange(0x10000)))
        value = (rng.randrange(32) << 24) | (rng.randrange(2) << 31) | vlen
    elif choice == 6:
        value = -rng.choice((1, 2, 0x80))
    else:
        value = rng.getrandbits(8 * width)
    return value & mask


def _put(buf: bytearray, pos: int, width: int, value: int) -> None:
    """Little-endian, like every object clang builds for ``-target bpf`` on x86."""
    if pos >= 0 and pos + width <= len(buf):
        buf[pos : pos + width] = value.to_bytes(width, "little")


def _get(buf: bytearray, pos: int, width: int) -> int:
    return int.from_bytes(buf[pos : pos + width], "little")


# --------------------------------------------------------------------------- hostile names

_TOKENS = (
    b'"', b"'", b'"""', b"'''", b"\n", b"\r", b"\\", b"/", b"*/", b"/*", b"#", b"\t", b" ",
    b"{", b"}", b"(", b")", b"$", b"%s", b"{}", b"-", b".", b":", b";", b",", b"`", b"0",
    b"\xff", b"\xfe", b"\xc3", b"\xed\xa0\x80", b"\xe2\x80\xae", b"\xc3\xa9", b"\x7f", b"\x01",
)  # fmt: skip
_INJECTIONS = (
    b'";import os;os.system("id")#',
    b"'''+__import__('os').system('id')+'''",
    b'"""\nimport os\nos.system("id")\n"""',
    b"\\\nimport os\nos.system('id')\n",
    b'x")\nopen("/tmp/pwned","w")\n#',
    b"*/ int injected; /*",
    b'" __attribute__((x)) "',
)
_WORDS = tuple(
    w.encode()
    for w in (
        *keyword.kwlist, *keyword.softkwlist, "self", "cls", "ctypes", "base64", "Final",
        "ClassVar", "_OBJECT", "__init__", "__class__", "__slots__", "__all__", "maps",
        "progs", "links", "open", "int", "bytes", "object", "super", "print", "exec",
        "struct", "union", "enum", "typedef", "static", "const", "void", "sizeof",
        "_pybpf_int", "Map", "Program", "Link", "SkeletonBase",
    )
)  # fmt: skip


def hostile_text(original: bytes, rng: random.Random) -> bytes:
    """Text of ``len(original)`` bytes, none NUL, that is hard on whoever prints it as a name."""
    length = len(original)
    choice = rng.randrange(5)
    same_length = [w for w in _WORDS if len(w) == length]
    if choice == 0 and same_length:
        text = rng.choice(same_length)
    elif choice == 1:
        text = rng.choice(_INJECTIONS)
    elif choice == 2:
        text = rng.choice(_TOKENS) * length
    elif choice == 3:
        text = rng.choice(_WORDS) + rng.choice(_TOKENS) + original
    else:
        buf = bytearray(original)
        for _ in range(rng.randint(1, 3)):
            token = rng.choice(_TOKENS)
            pos = rng.randrange(length)
            buf[pos : pos + len(token)] = token
        text = bytes(buf)
    text = text[:length].ljust(length, b"_")
    return text.replace(b"\0", b"_")


def _strings(buf: bytearray, region: Region) -> list[tuple[int, int]]:
    """(offset, length) of each non-empty string in a string-table region."""
    out: list[tuple[int, int]] = []
    pos, end = region.offset, region.offset + region.size
    while pos < end:
        nul = buf.find(b"\0", pos, end)
        if nul < 0:
            break
        if nul > pos:
            out.append((pos, nul - pos))
        pos = nul + 1
    return out


def rename(buf: bytearray, regions: list[Region], rng: random.Random) -> str | None:
    """Replace one name, in every string table, by hostile text of the same length."""
    tables = [r for r in regions if r.strings]
    candidates = [(r, s) for r in tables for s in _strings(buf, r)]
    if not candidates:
        return None
    _, (pos, length) = rng.choice(candidates)
    original = bytes(buf[pos : pos + length])
    replacement = hostile_text(original, rng)
    rename_to(buf, regions, original, replacement)
    return f"rename {original!r}->{replacement!r}"


def rename_to(buf: bytearray, regions: list[Region], original: bytes, replacement: bytes) -> int:
    """Replace every whole string ``original`` in every string table; how many were replaced.

    ``replacement`` must have the same length, so no offset into a table changes.
    """
    if len(replacement) != len(original):
        raise ValueError("a rename must keep the string's length")
    count = 0
    for table in (r for r in regions if r.strings):
        for start, size in _strings(buf, table):
            if size == len(original) and buf[start : start + size] == original:
                buf[start : start + size] = replacement
                count += 1
    return count


# --------------------------------------------------------------------------- operations


def _structured(buf: bytearray, regions: list[Region], rng: random.Random) -> str | None:
    """Write a new value into one field of one record of an interpreted region."""
    usable = [r for r in regions if r.size >= r.stride and not r.strings]
    if not usable:
        return None
    region = rng.choice(usable)
    record = region.offset + region.stride * rng.randrange(max(1, region.size // region.stride))
    field_off, width = rng.choice(region.fields)
    pos = record + field_off
    value = _value(rng, _get(buf, pos, width), width, len(buf))
    _put(buf, pos, width, value)
    return f"set {region.name}+{pos - region.offset:#x}/{width}={value:#x}"


def _bytes_in_region(buf: bytearray, regions: list[Region], rng: random.Random) -> str | None:
    if not regions:
        return None
    region = rng.choice(regions)
    for _ in range(rng.randint(1, 4)):
        pos = region.offset + rng.randrange(region.size)
        if pos < len(buf):
            buf[pos] ^= 1 << rng.randrange(8)
    return f"flip in {region.name}"


def _flip(buf: bytearray, regions: list[Region], rng: random.Random) -> str | None:
    if not buf:
        return None
    for _ in range(rng.randint(1, 8)):
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return "flip"


def _random_bytes(buf: bytearray, regions: list[Region], rng: random.Random) -> str | None:
    if not buf:
        return None
    for _ in range(rng.randint(1, 8)):
        buf[rng.randrange(len(buf))] = rng.randrange(256)
    return "random bytes"


def _interesting(buf: bytearray, regions: list[Region], rng: random.Random) -> str | None:
    width = rng.choice((1, 2, 4, 8))
    if len(buf) < width:
        return None
    pos = rng.randrange(len(buf) - width + 1)
    if rng.random() < 0.7:
        pos -= pos % width
    _put(buf, pos, width, rng.choice(_INTERESTING) & ((1 << (8 * width)) - 1))
    return f"interesting@{pos:#x}/{width}"


def _truncate(buf: bytearray, regions: list[Region], rng: random.Random) -> str | None:
    if not buf:
        return None
    if regions and rng.random() < 0.5:
        region = rng.choice(regions)
        cut = region.offset + rng.choice((0, 1, region.size // 2, region.size - 1))
    else:
        cut = rng.randrange(len(buf))
    del buf[max(0, cut) :]
    return f"truncate@{cut:#x}"


def _duplicate(buf: bytearray, regions: list[Region], rng: random.Random) -> str | None:
    if len(buf) < 2:
        return None
    start = rng.randrange(len(buf))
    size = min(rng.choice((4, 8, 16, 24, 64, 256, 4096)), len(buf) - start)
    chunk = bytes(buf[start : start + size])
    dest = rng.randrange(len(buf))
    if rng.random() < 0.5:
        buf[dest:dest] = chunk
        return f"insert copy of {start:#x}+{size}@{dest:#x}"
    buf[dest : dest + size] = chunk
    return f"overwrite with copy of {start:#x}+{size}@{dest:#x}"


Operation = Callable[[bytearray, list[Region], random.Random], str | None]
"""A mutation in place of ``buf`` (some ignore the regions); its label, or None if none fit."""

_IN_PLACE: tuple[tuple[Operation, int], ...] = (
    (_structured, 10),
    (_bytes_in_region, 4),
    (_flip, 2),
    (_random_bytes, 1),
    (_interesting, 2),
)
_RESIZING: tuple[Operation, ...] = (_truncate, _duplicate)

_RENAME_WEIGHT = {"gen_python": 12, "gen_c": 12, "link": 3, "object": 2}
"""How much more than structure edits the codegen targets want name edits."""


def mutate_part(
    kind: str, data: bytes, rng: random.Random, *, rename_weight: int = 0
) -> tuple[bytes, list[str]]:
    """One mutant of one input part (``elf``, ``btf`` or ``ext``) and what was done to it."""
    buf = bytearray(data)
    regions = cached_regions(kind, data)
    operations = list(_IN_PLACE)
    if rename_weight:
        operations.append((lambda b, r, g: rename(b, r, g), rename_weight))
    funcs = [op for op, _ in operations]
    weights = [w for _, w in operations]
    done: list[str] = []
    for _ in range(1 + min(int(rng.expovariate(1.0)), 4)):
        label = rng.choices(funcs, weights)[0](buf, regions, rng)
        if label:
            done.append(label)
    if rng.random() < 0.15 or not done:
        label = rng.choice(_RESIZING)(buf, regions, rng)
        if label:
            done.append(label)
    return bytes(buf), done


def _part_kinds(target: str) -> tuple[str, str]:
    return ("btf", "ext") if target == "btf_ext" else ("elf", "elf")


def mutate(target: str, data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """One mutant of a ``target`` input; paired inputs get one of their parts mutated."""
    weight = _RENAME_WEIGHT.get(target, 0)
    if target not in PAIRED:
        return mutate_part("btf" if target == "btf" else "elf", data, rng, rename_weight=weight)
    first, second = unpack_pair(data)
    kinds = _part_kinds(target)
    # btf_ext: mostly the .BTF.ext part; the BTF part only has to supply strings and ids.
    which = 1 if target == "btf_ext" and rng.random() < 0.8 else rng.randrange(2)
    part = (first, second)[which]
    mutated, done = mutate_part(kinds[which], part, rng, rename_weight=weight)
    parts = [first, second]
    parts[which] = mutated
    return pack_pair(parts[0], parts[1]), [f"part {which}: {d}" for d in done]


_reported: set[str] = set()


def safe_mutate(target: str, data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """:func:`mutate`; a bug in a mutator leaves the input as it is and is reported (once).

    A fuzzing run should not end, or count a finding, because the harness tripped; the
    message on stderr names the frame so the mutator gets fixed.
    """
    try:
        return mutate(target, data, rng)
    except Exception as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        key = f"{type(exc).__name__} at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
        if key not in _reported:
            _reported.add(key)
            print(f"fuzz: mutator bug, input left as is: {key}: {exc}", file=sys.stderr)
        return data, [f"mutator failed: {key}"]


def mutate_with(
    target: str,
    data: bytes,
    rng: random.Random,
    engine: Callable[[bytes, int], bytes],
    max_size: int,
) -> bytes:
    """Mutation for a coverage-guided engine: ours or the engine's (``atheris.Mutate``).

    Paired inputs keep their packing: the engine mutates one part, never the header.
    """
    if rng.random() < 0.5:
        return safe_mutate(target, data, rng)[0][:max_size]
    if target not in PAIRED:
        return engine(data, max_size)
    first, second = unpack_pair(data)
    room = max(0, max_size - 8 - len(first) - len(second))
    if rng.random() < 0.5:
        first = engine(first, len(first) + room)
    else:
        second = engine(second, len(second) + room)
    return pack_pair(first, second)[:max_size]
