"""Run the benchmarks: ``python -m benchmarks [elf btf ...]`` (all by default)."""

from __future__ import annotations

import importlib
import sys

ALL = ["elf", "btf", "kernel_maps", "link", "skel", "core", "events", "load", "perf_btf"]


def main() -> None:
    names = sys.argv[1:] or ALL
    for name in names:
        importlib.import_module(f"benchmarks.bench_{name}").main()


if __name__ == "__main__":
    main()
