"""Padding of the BTF-to-C dumper: libbpf's pointer-size guess and explicit padding fields.

BTF records where every member sits and how big a struct is, but not the source attributes
that produced that layout.  To print C that compiles back to the *same* layout, the dumper
infers ``__attribute__((packed))`` from misaligned members (``TypeLayout.is_packed``) and
fills holes the compiler would not leave on its own with anonymous bitfields (``long: 64;``,
:func:`padding_fields`, libbpf's ``btf_dump_emit_bit_padding`` as shipped with bpftool 7.1).
Sizes and alignments themselves are :mod:`pybpf.btf.layout`'s.
"""

from __future__ import annotations

from pybpf.btf.btf import Btf
from pybpf.btf.types import BtfKind

__all__ = ["guess_pointer_size", "padding_fields"]

_LONG_NAMES = (
    "long",
    "long int",
    "int long",
    "unsigned long",
    "long unsigned",
    "unsigned long int",
    "unsigned int long",
    "long unsigned int",
    "long int unsigned",
    "int unsigned long",
    "int long unsigned",
)
_HOST_POINTER_SIZE = 8
"""bpftool runs on x86-64 here; libbpf falls back to the host's pointer size."""


def guess_pointer_size(btf: Btf) -> int:
    """The pointer size libbpf assumes for ``btf``: the size of its first ``long`` INT.

    For BPF objects libbpf takes it from the ELF class instead, which is 64-bit and agrees:
    BPF's ``long`` is 8 bytes.  Raw BTF of a 32-bit kernel would say 4.
    """
    best: tuple[int, int] | None = None
    for name in _LONG_NAMES:
        for type_id in btf.find(name, BtfKind.INT):
            size = btf.size_of(type_id)
            if size in (4, 8) and (best is None or type_id < best[0]):
                best = (type_id, size)
                break
    return _HOST_POINTER_SIZE if best is None else best[1]


def _roundup(value: int, step: int) -> int:
    return (value + step - 1) // step * step


def padding_fields(
    ptr_size: int, cur_off: int, next_off: int, next_align: int, in_bitfield: bool
) -> list[tuple[str, int, int]]:
    """Anonymous bitfields that move the layout from bit ``cur_off`` to bit ``next_off``.

    Returns ``(type name, bit count, repeat)`` runs, each line printed as
    ``<type>: <bits>;``, ``repeat`` times over.  Runs rather than lines because a hole can
    span millions of ``long: 64;`` lines, which the dumper writes out in bounded blocks.
    The idea (libbpf's): pick the widest of long/int/short/char whose next natural boundary
    does not overshoot, let the compiler's own alignment close the first stretch where it
    would, then fill the rest with whole units and one smallest-sufficient remainder.
    """
    if cur_off >= next_off:
        return []
    pads = (("long", ptr_size * 8), ("int", 32), ("short", 16), ("char", 8))
    out: list[tuple[str, int, int]] = []
    # The widest unit whose next boundary does not overshoot (char if none fits).
    pad_type, pad_bits = pads[-1]
    new_off = _roundup(cur_off, pad_bits)
    for name, width in pads:
        if _roundup(cur_off, width) <= next_off:
            pad_type, pad_bits = name, width
            new_off = _roundup(cur_off, width)
            break
    if cur_off < new_off <= next_off:
        # An explicit `<type>: 0;` is needed when the compiler would not align to new_off by
        # itself: always inside a bitfield run (where the count is then spelled out), when
        # the next member's own alignment lands elsewhere, or when the following `<type>: X`
        # would fit entirely in the hole and be swallowed by it.
        if (
            in_bitfield
            or (new_off == next_off and _roundup(cur_off, max(next_align, 1) * 8) != new_off)
            or (new_off != next_off and next_off - new_off <= new_off - cur_off)
        ):
            out.append((pad_type, new_off - cur_off if in_bitfield else 0, 1))
        cur_off = new_off
    # Whole units, then one remainder in the smallest type that holds it.
    units, rest = divmod(next_off - cur_off, pad_bits)
    if units:
        out.append((pad_type, pad_bits, units))
    if rest:
        name = next(name for name, width in reversed(pads) if width >= rest)
        out.append((name, rest, 1))
    return out
