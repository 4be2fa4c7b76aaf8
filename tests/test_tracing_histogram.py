"""pybpf.tracing's histograms against libbpf-tools' own printing.

The golden file is what libbpf-tools' ``print_log2_hist``/``print_linear_hist`` (bcc commit
named in its first line) print for the vectors in ``fixtures/hist_vectors.txt``, built in a
development session from bcc's sources; it is regenerated the same way if the vectors change.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pybpf.tracing import format_linear_hist, format_log2_hist, print_log2_hist

FIXTURES = Path(__file__).parent / "fixtures"


def vectors() -> list[tuple[str, str, int, int, list[int]]]:
    cases = []
    for line in (FIXTURES / "hist_vectors.txt").read_text().splitlines():
        kind, unit, *numbers = line.split()
        base, step = (numbers.pop(0), numbers.pop(0)) if kind == "linear" else ("0", "0")
        count, *values = numbers
        assert len(values) == int(count)
        cases.append((kind, unit, int(base), int(step), [int(v) for v in values]))
    return cases


def golden() -> list[tuple[str, list[str]]]:
    blocks: list[tuple[str, list[str]]] = []
    for line in (FIXTURES / "golden" / "hist_libbpf_tools.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("=== "):
            blocks.append((line[4:], []))
        else:
            blocks[-1][1].append(line)
    return blocks


def test_every_vector_has_its_golden_block() -> None:
    assert [f"{kind} {unit}" for kind, unit, *_ in vectors()] == [b[0] for b in golden()]


@pytest.mark.parametrize("index", range(len(vectors())))
def test_matches_libbpf_tools(index: int) -> None:
    kind, unit, base, step, values = vectors()[index]
    got = (format_log2_hist(values, unit) if kind == "log2"
           else format_linear_hist(values, base, step, unit))  # fmt: skip
    assert got == golden()[index][1]


def test_counts_the_c_code_would_overflow_still_scale() -> None:
    """libbpf-tools multiplies in ``unsigned int``: 123456789 * 40 wraps and the fullest
    bucket gets 5 stars.  Python ints do not wrap; the fullest bucket is always full."""
    lines = format_log2_hist([123456789, 1], "kbytes")
    assert lines[1].endswith("|" + "*" * 40 + "|")


def test_print_writes_the_lines() -> None:
    out = io.StringIO()
    print_log2_hist([0, 2], "usecs", file=out)
    assert out.getvalue() == "\n".join(format_log2_hist([0, 2], "usecs")) + "\n"
