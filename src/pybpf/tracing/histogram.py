"""Log2 and linear histograms in the layout of libbpf-tools' ``print_log2_hist`` and
``print_linear_hist`` (and BCC's ``print_log2_hist``).

Users compare a ported tool's output with the C tool's, and scripts parse it, so the layout is
kept to the character: bucket bounds right-aligned in a 10-wide column (20 once a bucket above
2^32 is in use, when the bar halves to 20 stars), counts left-aligned in 8, a 40-star bar
scaled to the largest bucket.  Empty trailing buckets are not printed; an all-empty histogram
prints nothing at all, header included.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

STARS = 40
"""Width of the distribution bar."""

_WIDE_FROM = 33
"""First bucket index whose bounds need the wide (20-digit) columns."""


def _bar(value: int, value_max: int, width: int) -> str:
    stars = min(value, value_max) * width // value_max
    return "*" * stars + " " * (width - stars) + ("+" if value > value_max else "")


def format_log2_hist(slots: Sequence[int], val_type: str) -> list[str]:
    """The lines of a power-of-two histogram; ``slots[i]`` counts values in [2^i, 2^(i+1))
    (slot 0 also holds 0), ``val_type`` names the unit ("usecs")."""
    used = [i for i, value in enumerate(slots) if value > 0]
    if not used:
        return []
    last = used[-1]
    value_max = max(slots)
    wide = last >= _WIDE_FROM
    width = 20 if wide else 10
    stars = STARS // 2 if wide else STARS
    lines = [f"{'':{15 if wide else 5}}{val_type:<{29 if wide else 19}} : count    distribution"]
    for i in range(last + 1):
        low, high = (1 << (i + 1)) >> 1, (1 << (i + 1)) - 1
        if low == high:
            low -= 1
        value = slots[i]
        lines.append(f"{low:>{width}} -> {high:<{width}} : {value:<8} |"
                     f"{_bar(value, value_max, stars)}|")  # fmt: skip
    return lines


def format_linear_hist(slots: Sequence[int], base: int, step: int, val_type: str) -> list[str]:
    """The lines of a linear histogram: ``slots[i]`` counts values from ``base + i * step``;
    only non-empty buckets are printed, as libbpf-tools does."""
    used = [i for i, value in enumerate(slots) if value > 0]
    if not used:
        return []
    value_max = max(slots)
    lines = [f"     {val_type:<13} : count     distribution"]
    for i in range(used[0], used[-1] + 1):
        value = slots[i]
        if value:
            lines.append(f"        {base + i * step:<10} : {value:<8} |"
                         f"{_bar(value, value_max, STARS)}|")  # fmt: skip
    return lines


def print_log2_hist(slots: Sequence[int], val_type: str, file: TextIO | None = None) -> None:
    """Print :func:`format_log2_hist` (to stdout unless ``file`` is given)."""
    _print(format_log2_hist(slots, val_type), file)


def print_linear_hist(
    slots: Sequence[int], base: int, step: int, val_type: str, file: TextIO | None = None
) -> None:
    """Print :func:`format_linear_hist` (to stdout unless ``file`` is given)."""
    _print(format_linear_hist(slots, base, step, val_type), file)


def _print(lines: list[str], file: TextIO | None) -> None:
    out = sys.stdout if file is None else file
    for line in lines:
        out.write(line + "\n")
