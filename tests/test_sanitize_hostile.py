"""The load-time BTF sanitizer on hostile input: only located `BpfError`s may come out.

`kernel_btf` rewrites an object's ``.BTF`` for the kernel.  Here the object model (maps,
variables, externs) comes from a real fixture while the bytes of its ``.BTF`` section (and the
BTF the model opened from them) are corrupted in place, which is what the sanitizer meets when
a file is damaged or crafted:
whatever it is given, it either returns BTF that parses back, or raises a `BpfError` naming
the file and the type or offset at fault.
"""

from __future__ import annotations

import dataclasses
import random
import struct
import time

import pytest

from conftest import compile_bpf
from pybpf import BpfError, BtfError
from pybpf.btf import Btf, BtfKind
from pybpf.btf.types import BtfDatasec, BtfInt, BtfStruct
from pybpf.elf import ElfFile
from pybpf.load.btf_sanitize import BtfFeatures, kernel_btf
from pybpf.obj.object_spec import ObjectSpec

SEED = 0x5A71_7153
CASE_BUDGET_S = 1.0
FEATURES = {"new kernel": BtfFeatures(), "old kernel": BtfFeatures.none()}
HEADER = 24


@pytest.fixture(scope="module", params=["load_globals", "load_ksyms"])
def spec(request: pytest.FixtureRequest) -> ObjectSpec:
    return ObjectSpec.from_path(compile_bpf(request.param))


def btf_bytes(spec: ObjectSpec) -> bytes:
    section = spec.elf.section(".BTF")
    assert section is not None
    return section.data


def with_btf(spec: ObjectSpec, data: bytes) -> ObjectSpec:
    """``spec`` whose ELF carries ``data`` (same length or shorter) as its ``.BTF``, and whose
    BTF is ``data`` as the object model opens it (decoded lazily: most damage is left for the
    sanitizer's full decode to find).

    Shorter data is written over the start of the section and the section header's
    ``sh_size`` shrunk to match, so truncation needs no new ELF layout.
    """
    section = spec.elf.section(".BTF")
    assert section is not None and len(data) <= section.size
    image = bytearray(spec.elf.data)
    image[section.offset : section.offset + len(data)] = data
    (shoff,) = struct.unpack_from("<Q", image, 0x28)
    (shentsize,) = struct.unpack_from("<H", image, 0x3A)
    struct.pack_into("<Q", image, shoff + section.index * shentsize + 0x20, len(data))
    btf = Btf.from_bytes(data, file=spec.path, section=".BTF")
    return dataclasses.replace(spec, elf=ElfFile(bytes(image), path=spec.path), btf=btf)


def sanitize(spec: ObjectSpec, features: BtfFeatures) -> Btf:
    fixed = kernel_btf(spec, features)
    assert fixed is not None
    return Btf.from_bytes(fixed.data)


def type_offset(data: bytes, btf: Btf, type_id: int) -> int:
    """Byte offset of ``type_id``'s record in the raw section (walked like the kernel)."""
    (hdr_len, type_off) = struct.unpack_from("<II", data, 4)
    at = hdr_len + type_off
    for current in range(1, type_id):
        (info,) = struct.unpack_from("<I", data, at + 4)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        fixed, per = {BtfKind.INT: (4, 0), BtfKind.ARRAY: (12, 0), BtfKind.VAR: (4, 0),
                      BtfKind.DECL_TAG: (4, 0), BtfKind.STRUCT: (0, 12),
                      BtfKind.UNION: (0, 12), BtfKind.ENUM: (0, 8),
                      BtfKind.FUNC_PROTO: (0, 8), BtfKind.DATASEC: (0, 12),
                      BtfKind.ENUM64: (0, 12)}.get(BtfKind(kind), (0, 0))  # fmt: skip
        at += 12 + fixed + per * vlen
        assert btf.kind_of(current) == kind
    return at


def first_datasec(btf: Btf, name: str) -> int:
    return btf.find_one(name, BtfKind.DATASEC)


def patch_u32(data: bytes, offset: int, value: int) -> bytes:
    mutated = bytearray(data)
    struct.pack_into("<I", mutated, offset, value)
    return bytes(mutated)


def expect_located(
    spec: ObjectSpec, features: BtfFeatures, message: str, data: bytes | None = None
) -> BtfError:
    """``spec`` (with ``data`` as its BTF, if given) is refused with a located BtfError."""
    with pytest.raises(BtfError, match=message) as info:
        kernel_btf(spec if data is None else with_btf(spec, data), features)
    assert info.value.file == spec.path and info.value.section == ".BTF"
    return info.value


# --------------------------------------------------------------------------------- cases


def test_truncated_btf_is_a_btf_error(spec: ObjectSpec) -> None:
    """Was struct.error (header unpacked from 10 bytes)."""
    err = expect_located(spec, BtfFeatures(), "truncated header", btf_bytes(spec)[:10])
    assert err.offset == 0


def test_name_offset_past_the_strings_is_a_btf_error(spec: ObjectSpec) -> None:
    """Was ValueError (``bytearray.index`` finding no NUL past the offset)."""
    data = btf_bytes(spec)
    btf = Btf.from_bytes(data)
    bss = first_datasec(btf, ".bss")
    mutant = patch_u32(data, type_offset(data, btf, bss), 0x7FFFFFF0)
    expect_located(spec, BtfFeatures(), rf"type #{bss}: name string offset 2147483632", mutant)


def test_datasec_entry_naming_no_type_is_a_btf_error(spec: ObjectSpec) -> None:
    """Was IndexError (the entry's type id used as an index into the type table)."""
    data = btf_bytes(spec)
    btf = Btf.from_bytes(data)
    bss = first_datasec(btf, ".bss")
    entry = type_offset(data, btf, bss) + 12
    mutant = patch_u32(data, entry, 0xFFFF)
    expect_located(spec, BtfFeatures(), rf"type #{bss}: var 0 refers to type id 65535", mutant)


def test_offset_too_far_for_an_old_kernel_struct_is_a_btf_error(spec: ObjectSpec) -> None:
    """Was struct.error: a DATASEC becomes a STRUCT with bit offsets, 8x its byte offsets.

    The entry is pointed at an INT so that no VAR offset from the object replaces it.
    """
    data = btf_bytes(spec)
    btf = Btf.from_bytes(data)
    bss = first_datasec(btf, ".bss")
    some_int = next(i for i in btf.type_ids() if isinstance(btf[i], BtfInt))
    entry = type_offset(data, btf, bss) + 12
    data = patch_u32(patch_u32(data, entry, some_int), entry + 4, 0x2000_0000)
    sanitize(with_btf(spec, data), BtfFeatures())  # a new kernel keeps DATASECs: no overflow
    err = expect_located(spec, BtfFeatures.none(), rf"type #{bss} \(DATASEC '.bss'\)", data)
    assert "byte 536870912" in str(err)


def test_section_too_big_for_btf_is_a_btf_error(spec: ObjectSpec) -> None:
    """Was struct.error: a NOBITS .bss may claim any size, BTF's DATASEC size is 32-bit."""
    elf = spec.elf
    bss = elf.section(".bss")
    assert bss is not None
    huge = dataclasses.replace(bss, size=1 << 33)
    sections = [huge if s is bss else s for s in elf.sections]
    fake = ElfFile(elf.data, path=spec.path)
    fake.sections = sections
    lookup = {s.name: s for s in sections}
    fake.section = lookup.get  # type: ignore[method-assign]
    mutant = dataclasses.replace(spec, elf=fake)
    bss_id = first_datasec(Btf.from_bytes(btf_bytes(spec)), ".bss")
    expect_located(mutant, BtfFeatures(), rf"type #{bss_id} .*size 8589934592 does not fit")


def test_names_that_are_not_utf8_pass_through(spec: ObjectSpec) -> None:
    """Was UnicodeDecodeError: names are bytes, and the kernel only checks their charset."""
    data = bytearray(btf_bytes(spec))
    btf = Btf.from_bytes(bytes(data))
    (hdr_len, _t, _l, str_off) = struct.unpack_from("<IIII", data, 4)
    strings = hdr_len + str_off
    name_at = strings + btf.string_bytes.index(b"\0.bss\0") + 1
    data[name_at] = 0xFF  # ".bss" -> "\xffbss" (no section has that name: size stays 0)
    for features in FEATURES.values():
        out = sanitize(with_btf(spec, bytes(data)), features)
        assert "\udcffbss" in {out.name_of(i) for i in out.type_ids()}


def test_datasec_entry_of_void_is_left_alone(spec: ObjectSpec) -> None:
    """Type id 0 in a DATASEC is no VAR: its offset and size are kept, nothing else read."""
    data = btf_bytes(spec)
    btf = Btf.from_bytes(data)
    bss = first_datasec(btf, ".bss")
    entry = type_offset(data, btf, bss) + 12
    data = patch_u32(patch_u32(patch_u32(data, entry, 0), entry + 4, 4000), entry + 8, 4)
    out = sanitize(with_btf(spec, data), BtfFeatures())
    sec = out[bss]
    assert isinstance(sec, BtfDatasec)
    assert (0, 4000, 4) in {(v.type, v.offset, v.size) for v in sec.vars}
    old = sanitize(with_btf(spec, data), BtfFeatures.none())[bss]
    assert isinstance(old, BtfStruct)
    assert any(m.type == 0 and m.offset == 4000 * 8 for m in old.members)


# --------------------------------------------------------------------------------- fuzz


def mutants(data: bytes, btf: Btf, rng: random.Random) -> list[bytes]:
    """Truncations, bit flips, word overwrites, and every DATASEC field set to edge values.

    The DATASEC fields matter most: they are what the sanitizer rewrites, from values
    (sizes, offsets, type ids) that the BTF parser alone has no reason to refuse.
    """
    cases = [data[:n] for n in range(0, len(data), max(1, len(data) // 60))]
    for _ in range(150):
        mutated = bytearray(data)
        bit = rng.randrange(len(data) * 8)
        mutated[bit // 8] ^= 1 << (bit % 8)
        cases.append(bytes(mutated))
    edges = [0, 1, 4, btf.end_id - 1, btf.end_id, 0xFFFF, 0x1FFF_FFFF, 0x2000_0000,
             0x7FFF_FFFF, 0xFFFF_FFFF]  # fmt: skip
    for _ in range(150):
        off = rng.randrange(0, len(data) - 3) & ~3
        value = rng.choice(edges) if rng.random() < 0.6 else rng.getrandbits(32)
        cases.append(patch_u32(data, off, value))
    for sec_id in btf.type_ids():
        sec = btf[sec_id]
        if not isinstance(sec, BtfDatasec):
            continue
        at = type_offset(data, btf, sec_id)
        for field in [at, at + 8, *range(at + 12, at + 12 + 12 * len(sec.vars), 4)]:
            cases.extend(patch_u32(data, field, value) for value in rng.sample(edges, 3))
    for _ in range(60):  # a name byte made invalid UTF-8, or a name made empty
        mutated = bytearray(data)
        (hdr_len, _t, _l, str_off, str_len) = struct.unpack_from("<IIIII", data, 4)
        pos = hdr_len + str_off + rng.randrange(1, str_len)
        mutated[pos] = rng.choice([0xFF, 0xC3, 0x80, 0])
        cases.append(bytes(mutated))
    return cases


def run_one(spec: ObjectSpec, data: bytes, features: BtfFeatures) -> bool:
    """Sanitize one mutant: True if it was accepted, False if refused with a located error."""
    try:
        fixed = kernel_btf(with_btf(spec, data), features)
    except BtfError as exc:
        assert exc.file == spec.path and exc.section == ".BTF", exc
        return False
    except BpfError as exc:
        assert spec.path is None or "BTF" in str(exc), exc
        return False
    assert fixed is not None
    Btf.from_bytes(fixed.data).validate()  # what is accepted must be well-formed BTF
    return True


@pytest.mark.parametrize("features", FEATURES.values(), ids=FEATURES.keys())
def test_fuzz_sanitizer(spec: ObjectSpec, features: BtfFeatures) -> None:
    data = btf_bytes(spec)
    btf = Btf.from_bytes(data)
    cases = mutants(data, btf, random.Random(SEED))
    assert len(cases) > 400
    accepted = 0
    slowest = 0.0
    for case in cases:
        start = time.perf_counter()
        accepted += run_one(spec, case, features)
        slowest = max(slowest, time.perf_counter() - start)
    # Both outcomes must be common, or the mutations test nothing.
    assert len(cases) // 10 < accepted < len(cases) - len(cases) // 10
    assert slowest < CASE_BUDGET_S


def test_every_fixture_header_field_edge(spec: ObjectSpec) -> None:
    """Each header word (magic..str_len) at each edge value: refused, or sanitized cleanly."""
    data = btf_bytes(spec)
    for off in range(0, HEADER, 4):
        for value in (0, 3, 24, len(data), 0xFFFF_FFF0, 0xFFFF_FFFF):
            run_one(spec, patch_u32(data, off, value), BtfFeatures.none())
