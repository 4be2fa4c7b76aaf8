"""Robustness: corrupt objects raise :class:`BpfError`, never a raw Python exception.

Seeded mutations of the fixture objects: truncations anywhere, random bit flips anywhere, and
bit flips aimed at the sections the object model interprets (BTF, ``.maps``, symbols,
relocations, code), where a random flip of the whole file would rarely land.  Whatever
parses must also be printable by ``object show``.
"""

from __future__ import annotations

import random
import time

import pytest

from conftest import compile_bpf
from pybpf.elf import ElfFile
from pybpf.errors import BpfError
from pybpf.obj import ObjectSpec
from pybpf.obj.show import format_object

SEEDS = ["obj_maps", "obj_data", "obj_progs"]
CASES_PER_SEED = 100
TARGETS = (".BTF", ".BTF.ext", ".maps", ".symtab", ".rel.maps", ".text", "license", ".strtab")
PER_CASE_SECONDS = 2.0


def _mutants(data: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    elf = ElfFile.from_bytes(data)
    spans = []
    for s in elf.sections:
        interesting = s.name in TARGETS or s.name.startswith(".rel") or s.is_exec
        if interesting and s.size and not s.is_nobits:
            spans.append((s.name, s.offset, s.size))
    out: list[tuple[str, bytes]] = []
    for i in range(CASES_PER_SEED):
        buf = bytearray(data)
        mode = i % 3
        if mode == 0:
            cut = rng.randrange(len(data))
            out.append((f"truncate@{cut}", bytes(buf[:cut])))
            continue
        if mode == 1:
            where = [rng.randrange(len(buf)) for _ in range(rng.randint(1, 8))]
            label = "flip-anywhere"
        else:
            name, start, size = rng.choice(spans)
            where = [start + rng.randrange(size) for _ in range(rng.randint(1, 4))]
            label = f"flip-in-{name}"
        for pos in where:
            buf[pos] ^= 1 << rng.randrange(8)
        out.append((f"{label}@{where}", bytes(buf)))
    return out


@pytest.mark.parametrize("seed_name", SEEDS)
def test_corrupt_objects_raise_only_bpf_errors(seed_name: str) -> None:
    data = compile_bpf(seed_name).read_bytes()
    rng = random.Random(f"pybpf-obj-{seed_name}")
    parsed = failed = 0
    for label, mutant in _mutants(data, rng):
        start = time.monotonic()
        try:
            spec = ObjectSpec.from_bytes(mutant, path=f"{seed_name}:{label}")
            format_object(spec)
            format_object(spec, as_json=True)
            parsed += 1
        except BpfError as exc:
            failed += 1
            assert f"{seed_name}:{label}" in str(exc) or "<bytes>" not in str(exc), str(exc)
        except Exception as exc:  # pragma: no cover - this is what the test hunts for
            raise AssertionError(f"{seed_name} {label}: {type(exc).__name__}: {exc}") from exc
        assert time.monotonic() - start < PER_CASE_SECONDS, label
    assert parsed + failed == CASES_PER_SEED
    assert failed > 0


def test_truncated_header_names_the_file() -> None:
    data = compile_bpf("obj_maps").read_bytes()
    with pytest.raises(BpfError, match=r"short\.o"):
        ObjectSpec.from_bytes(data[:40], path="short.o")
