"""The atheris fuzzing loop, run by :mod:`fuzz.run_atheris` in a child process.

pybpf is instrumented only if it is first imported under ``atheris.instrument_imports``, so
importing *this* module does that before anything else (every pybpf module, lazily imported
ones included) and is only ever done by running it.  Usage (by the parent only)::

    python -m fuzz.atheris_child --target T --seconds S --stats F --current F -- LIBFUZZER_ARGS
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import pkgutil
import random
import sys
import time
from pathlib import Path

import atheris  # type: ignore[import-untyped]


def _instrumented_imports() -> None:
    """Import every pybpf module under atheris instrumentation."""
    with atheris.instrument_imports(include=["pybpf"]):
        import pybpf

        for info in pkgutil.walk_packages(pybpf.__path__, "pybpf."):
            with contextlib.suppress(ImportError):
                importlib.import_module(info.name)


_instrumented_imports()

from fuzz.findings import (  # noqa: E402 - pybpf must be instrumented first
    BAD,
    HANG,
    MEM_PEAK,
    MEM_PEAK_BYTES,
    Counts,
    FindingStore,
    install_alarm,
    limit_address_space,
    peak_rss,
    run_case,
)
from fuzz.mutators import mutate_with  # noqa: E402
from fuzz.run_atheris import RECYCLE  # noqa: E402
from fuzz.targets import TARGETS  # noqa: E402

STATS_EVERY = 2.0
"""Seconds between writes of the counts file the parent reads."""


class _Child:
    """The fuzzing loop's state in the child process."""

    def __init__(self, target: str, stats: Path, current: Path, deadline: float) -> None:
        self.target = target
        self.func = TARGETS[target]
        self.stats = stats
        self.current = current
        self.deadline = deadline
        self.counts = Counts()
        self.store = FindingStore(target)
        self.last_write = 0.0

    def write_stats(self) -> None:
        data = {
            "counts": {
                "cases": self.counts.cases,
                "escapes": self.counts.escapes,
                "hangs": self.counts.hangs,
                "mem_peaks": self.counts.mem_peaks,
                "refused": self.counts.refused,
                "slowest": self.counts.slowest,
            },
            "seen": self.store.seen,
        }
        tmp = self.stats.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.stats)
        self.last_write = time.monotonic()

    def one_input(self, data: bytes) -> None:
        self.current.write_bytes(data)
        outcome = run_case(self.func, data)
        self.counts.add(outcome)
        if outcome.status in BAD:
            self.store.record(outcome, data, "atheris")
        now = time.monotonic()
        recycle = outcome.status in (HANG, MEM_PEAK) or peak_rss() > MEM_PEAK_BYTES
        if recycle or now >= self.deadline or now - self.last_write > STATS_EVERY:
            self.write_stats()
        if recycle or now >= self.deadline:
            os._exit(RECYCLE if recycle else 0)


def child_main(args: argparse.Namespace, libfuzzer_args: list[str]) -> None:
    limit_address_space()
    install_alarm()
    state = _Child(
        args.target, Path(args.stats), Path(args.current), time.monotonic() + args.seconds
    )
    state.write_stats()

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        return mutate_with(args.target, data, random.Random(seed), atheris.Mutate, max_size)

    atheris.Setup([sys.argv[0], *libfuzzer_args], state.one_input, custom_mutator=mutator)
    atheris.Fuzz()


def main() -> None:
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--current", required=True)
    child_main(parser.parse_args(argv[:cut]), argv[cut + 1 :])


if __name__ == "__main__":
    main()
