"""The committed fuzz corpus replays clean: every input ends normally or in a BpfError.

``fuzz/corpus/<target>/<sha1>`` holds the mutants the fuzzers found interesting (one per
finding they ever made, hostile names for the code generators, a few seeds), so each defect
the fuzzers found stays fixed.  Each input goes through the same entry point as in fuzzing
(:mod:`fuzz.targets`), which for ``gen_python`` also compiles the generated modules and imports
them in a watched subprocess (one for the whole corpus), and for ``gen_c`` checks the headers
lexically.  See ``fuzz/__init__.py`` for running the fuzzers themselves (``make fuzz``).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz.targets import TARGETS, import_checker, remove_scratch  # noqa: E402

from pybpf.errors import BpfError  # noqa: E402

CORPUS = ROOT / "fuzz" / "corpus"
CASE_SECONDS = 5.0


@pytest.fixture(scope="module", autouse=True)
def _scratch() -> Iterator[None]:
    """One scratch directory and one import checker for the module; removed at the end."""
    yield
    remove_scratch()


def _inputs(target: str) -> list[Path]:
    return sorted(p for p in (CORPUS / target).iterdir() if p.is_file())


def test_every_target_has_a_corpus_named_by_content() -> None:
    assert {p.name for p in CORPUS.iterdir() if p.is_dir()} == set(TARGETS)
    for target in TARGETS:
        inputs = _inputs(target)
        assert inputs, f"no corpus for {target}"
        for path in inputs:
            assert path.name == hashlib.sha1(path.read_bytes()).hexdigest(), path


def test_corpus_stays_small() -> None:
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total < 512 * 1024, f"committed corpus is {total} bytes"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_corpus_replays_with_bpf_errors_only(target: str) -> None:
    entry = TARGETS[target]
    problems: list[str] = []
    accepted = 0
    for path in _inputs(target):
        start = time.monotonic()
        try:
            entry(path.read_bytes())
            accepted += 1
        except BpfError:
            pass
        except Exception as exc:  # what this test exists to catch
            problems.append(f"{path.name}: {type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - start
        if elapsed > CASE_SECONDS:
            problems.append(f"{path.name}: took {elapsed:.1f} s")
    assert not problems, "\n".join(problems)
    # Some inputs must get all the way through, or the deep checks (codegen output compiled
    # and imported, linked output reopened) would never run.
    assert accepted, f"every {target} input was refused"


def test_import_checker_reports_side_effects_and_passes_clean_modules() -> None:
    """The gen_python replay is only as good as the checker: it must see what imports do."""
    checker = import_checker()
    clean = b'"""A module like a generated one."""\nimport base64\n__all__ = ["X"]\nX = 1\n'
    assert checker.check(clean) is None
    spawned = checker.check(clean + b"import os\nos.system('true')\n")
    assert spawned is not None and spawned.key == "imports os"
    opened = checker.check(clean + b"open('/etc/hostname')\n")
    assert opened is not None and opened.key == "audit event open"
    compiled = checker.check(clean + b"exec('X = 2')\n")
    assert compiled is not None and compiled.key == "audit event compile"
    printed = checker.check(clean + b"print('hi')\n")
    assert printed is not None and printed.key == "import wrote output"
    broken = checker.check(clean + b"X = undefined_name\n")
    assert broken is not None and broken.key == "import raised NameError"
    assert checker.check(clean) is None
