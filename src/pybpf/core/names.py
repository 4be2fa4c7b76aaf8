"""Flavor suffixes: how CO-RE tells ``task_struct___old`` from ``task_struct``, yet matches both.

A BPF program may declare several local variants ("flavors") of one kernel type by appending
``___<anything>``; relocation ignores everything from the *last* ``X___Y`` separator on, where
neither ``X`` nor ``Y`` is an underscore.  What remains is the *essential name*, the only part
compared with kernel type names (libbpf's ``bpf_core_essential_name_len``).
"""

from __future__ import annotations


def essential_name_len(name: str) -> int:
    """Length of ``name`` before its last flavor separator (the whole length if it has none)."""
    for i in range(len(name) - 5, -1, -1):
        if (
            name[i] != "_"
            and name[i + 1] == "_"
            and name[i + 2] == "_"
            and name[i + 3] == "_"
            and name[i + 4] != "_"
        ):
            return i + 1
    return len(name)


def essential_name(name: str) -> str:
    """``name`` without its flavor suffix: ``"task_struct___old"`` -> ``"task_struct"``."""
    if "___" not in name:
        return name
    return name[: essential_name_len(name)]


def names_match(local: str, target: str) -> bool:
    """Equal once flavor suffixes are dropped (an anonymous name only matches another)."""
    if not target:
        return not local
    return essential_name(local) == essential_name(target)
