"""Build seed inputs for every target from the test fixtures: ``python -m fuzz.seed``.

Objects are compiled as the tests compile them (``tests/conftest.py``'s ``compile_bpf``,
clang-16, cached in ``tests/.build``), then copied with their DWARF stripped
(``llvm-objcopy --strip-debug``): pybpf never reads DWARF, and without it a random offset
lands in something pybpf interprets far more often.  A few objects are kept whole, so the
paths that skip ``.debug_*`` sections and their relocations are fuzzed too.  Linked objects
(pybpf's linker over the fixture sets the link tests use) are seeds as well, and the link
target gets the pairs that link.

Seeds go to ``fuzz/.work/seeds/<target>/<name>``.  The committed corpus is chosen from fuzz
results by hand: ``python -m fuzz.seed --add-to-corpus TARGET FILE...`` files each input as
``fuzz/corpus/TARGET/<sha1>``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import random
import shutil
import subprocess
import sys
from pathlib import Path

from fuzz.findings import WORK
from fuzz.mutators import cached_regions, hostile_text, rename_to
from fuzz.targets import TARGETS, pack_pair
from pybpf.elf import ElfFile, SymbolBinding, SymbolType
from pybpf.errors import BpfError
from pybpf.linker import link_objects

ROOT = Path(__file__).resolve().parent.parent
SEEDS = WORK / "seeds"
CORPUS = Path(__file__).resolve().parent / "corpus"
MAX_SEED = 64 * 1024
"""Larger objects slow every case down and add little the smaller ones do not have."""
KEEP_DEBUG = ("skel_globals", "link_lib1", "btfkinds_core")
"""Objects also seeded with their DWARF."""

LINK_SETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("link_lib1", ("link_lib2",)),
    ("link_app", ("link_lib1", "link_lib2")),
    ("link_mim_a", ("link_mim_b",)),
    ("skel_weak_a", ("skel_weak_b",)),
    ("obj_weak1", ("obj_weak2",)),
    ("dedup_a", ("dedup_b",)),
    ("dedup_b", ("dedup_c",)),
    ("skel_lib1", ("skel_lib2",)),
    ("skel_app1", ("skel_lib1", "skel_lib2")),
    ("skel_app2", ("skel_lib2",)),
    ("load_link_app", ("load_link_lib", "load_link_util")),
    ("btfkinds", ("cdump_decls",)),
)
"""Link-target pairs: first input, and the objects linked (by pybpf) into the second."""

HOSTILE_FROM = ("skel_globals", "skel_lib1", "skel_maponly", "skel_strings", "obj_maps")
"""Objects whose global names get hostile replacements for the codegen targets' seeds."""
HOSTILE_PER_NAME = 4


def hostile_variants(name: str, data: bytes) -> dict[str, bytes]:
    """Copies of ``data`` with one global name (map, variable or program) made hostile.

    The name changes in the symbol table and in BTF alike, so the object still opens and the
    name reaches the generated code.  Deterministic: the same object gives the same seeds.
    """
    regions = cached_regions("elf", data)
    symbols = ElfFile(data, require_bpf=False).symbols[1:]
    wanted = (SymbolType.STT_OBJECT, SymbolType.STT_FUNC)
    names = sorted(
        {s.name for s in symbols if s.type in wanted and s.binding == SymbolBinding.STB_GLOBAL}
    )
    variants: dict[str, bytes] = {}
    for symbol in names[:4]:
        original = symbol.encode("utf-8", "surrogateescape")
        for k in range(HOSTILE_PER_NAME):
            buf = bytearray(data)
            replacement = hostile_text(original, random.Random(f"{name}:{symbol}:{k}"))
            if rename_to(buf, regions, original, replacement):
                variants[f"hostile.{name}.{symbol}.{k}"] = bytes(buf)
    return variants


def _compile_fixtures() -> dict[str, Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    conftest = importlib.import_module("conftest")

    built: dict[str, Path] = {}
    for source in sorted(conftest.FIXTURES.glob("*.bpf.c")):
        name = source.name.removesuffix(".bpf.c")
        try:
            built[name] = conftest.compile_bpf(name)
        except subprocess.CalledProcessError:
            print(f"seed: {name} does not compile on its own, skipped", file=sys.stderr)
        except BaseException as exc:  # pytest.skip outside pytest: clang is missing
            if type(exc).__name__ != "Skipped":
                raise
            raise SystemExit(f"seed: cannot compile fixtures: {exc}") from None
    return built


def _strip(path: Path, out_dir: Path) -> bytes:
    objcopy = shutil.which("llvm-objcopy-16") or shutil.which("llvm-objcopy")
    if objcopy is None:
        return path.read_bytes()
    out = out_dir / path.name
    subprocess.run([objcopy, "--strip-debug", str(path), str(out)], check=True)
    return out.read_bytes()


def _section(data: bytes, name: str) -> bytes | None:
    section = ElfFile(data, require_bpf=False).section(name)
    return None if section is None else section.data


def build_seeds() -> dict[str, dict[str, bytes]]:
    """Seed inputs per target name: ``{target: {seed name: bytes}}``."""
    build = WORK / "build"
    build.mkdir(parents=True, exist_ok=True)
    paths = _compile_fixtures()
    objects = {name: _strip(path, build) for name, path in paths.items()}
    objects = {name: data for name, data in objects.items() if len(data) <= MAX_SEED}
    whole = {f"{name}.debug": paths[name].read_bytes() for name in KEEP_DEBUG if name in paths}

    pairs: dict[str, bytes] = {}
    linked: dict[str, bytes] = {}
    for first, second in LINK_SETS:
        if not all(n in objects for n in (first, *second)):
            continue
        label = f"{first}_{'+'.join(second)}"
        a = objects[first]
        try:
            b = (
                objects[second[0]]
                if len(second) == 1
                else link_objects([(n, objects[n]) for n in second])
            )
            linked[f"linked.{label}"] = link_objects([("a", a), ("b", b)])
        except BpfError as exc:
            print(f"seed: {label} does not link ({exc}), skipped", file=sys.stderr)
            continue
        pairs[label] = pack_pair(a, b)

    elf_like = {**objects, **whole, **linked}
    hostile: dict[str, bytes] = {}
    for name in HOSTILE_FROM:
        if name in objects:
            hostile.update(hostile_variants(name, objects[name]))
    seeds: dict[str, dict[str, bytes]] = {
        "elf": elf_like,
        "object": elf_like,
        "gen_python": {**objects, **linked, **hostile},
        "gen_c": {**objects, **linked, **hostile},
        "link": pairs,
    }
    btf: dict[str, bytes] = {}
    ext: dict[str, bytes] = {}
    for name, data in {**objects, **linked}.items():
        types = _section(data, ".BTF")
        if types is None:
            continue
        btf[name] = types
        records = _section(data, ".BTF.ext")
        if records is not None:
            ext[name] = pack_pair(types, records)
    seeds["btf"] = btf
    seeds["btf_ext"] = ext
    return seeds


def write_seeds(seeds: dict[str, dict[str, bytes]]) -> None:
    for target, inputs in seeds.items():
        out = SEEDS / target
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        seen: set[bytes] = set()
        for name, data in sorted(inputs.items()):
            digest = hashlib.sha1(data).digest()
            if digest not in seen:
                seen.add(digest)
                (out / name).write_bytes(data)
        print(f"seed: {target}: {len(list(out.iterdir()))} seeds", file=sys.stderr)


def load_seeds(target: str, *, build: bool = True) -> list[tuple[str, bytes]]:
    """The seeds of ``target`` (built first if missing) plus its committed corpus."""
    directory = SEEDS / target
    if build and not directory.is_dir():
        write_seeds(build_seeds())
    found: list[tuple[str, bytes]] = []
    for source in (directory, CORPUS / target):
        if source.is_dir():
            found.extend((p.name, p.read_bytes()) for p in sorted(source.iterdir()) if p.is_file())
    return found


def add_to_corpus(target: str, files: list[Path]) -> list[Path]:
    """Copy inputs into the committed corpus under their content's SHA-1; the new paths."""
    out = CORPUS / target
    out.mkdir(parents=True, exist_ok=True)
    added: list[Path] = []
    for file in files:
        data = file.read_bytes()
        path = out / hashlib.sha1(data).hexdigest()
        if not path.exists():
            path.write_bytes(data)
            added.append(path)
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--add-to-corpus",
        metavar="TARGET",
        choices=sorted(TARGETS),
        help="copy FILEs into fuzz/corpus/TARGET instead of building seeds",
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    if args.add_to_corpus:
        for path in add_to_corpus(args.add_to_corpus, args.files):
            print(path)
        return 0
    write_seeds(build_seeds())
    missing = sorted(set(TARGETS) - {p.name for p in SEEDS.iterdir()})
    if missing:
        print(f"seed: no seeds for {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
