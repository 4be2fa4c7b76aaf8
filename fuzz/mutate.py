"""Mutation fuzzing without coverage feedback: ``python -m fuzz.mutate --target NAME ...``.

Case ``i`` of a run is a pure function of ``(--seed, i)``: the seed input it starts from and
every mutation follow from ``random.Random(f"{seed}:{i}")``, so ``--replay-case i`` rebuilds
it.  Cases run in ``--jobs`` worker processes, each under an address-space limit, with the
per-case hang alarm of :mod:`fuzz.findings`.  A worker is replaced after a hang, after a memory
peak (its peak RSS only ever grows, so it could not report another), and when it dies;
a watchdog in the parent kills a worker whose case outlives the alarm (stuck in C code) and
reports that case as a hang.

Prints one summary line per target and each distinct finding with its reproducer; exit
status 1 when anything was found.
"""

from __future__ import annotations

import multiprocessing
import random
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from fuzz.findings import (
    BAD,
    HANG,
    HANG_SECONDS,
    MEM_PEAK,
    MEM_PEAK_BYTES,
    Counts,
    FindingStore,
    Outcome,
    install_alarm,
    limit_address_space,
    peak_rss,
    run_case,
    summary,
)
from fuzz.mutators import safe_mutate
from fuzz.seed import load_seeds
from fuzz.targets import TARGETS, driver_arguments, remove_scratch

CHUNK = 50
"""Cases handed to a worker at a time."""
WATCHDOG_SECONDS = HANG_SECONDS * 3


def make_case(
    target: str, seeds: list[tuple[str, bytes]], run_seed: int, index: int
) -> tuple[bytes, str]:
    """The input of case ``index`` and a description of how it was made."""
    rng = random.Random(f"{run_seed}:{index}")
    name, data = seeds[rng.randrange(len(seeds))]
    mutant, done = safe_mutate(target, data, rng)
    return mutant, f"seed {name}: " + "; ".join(done)


# --------------------------------------------------------------------------- worker


def _worker(
    target: str,
    run_seed: int,
    conn: Connection,
    current: Any,
) -> None:
    """Run chunks of cases sent by the parent; report findings and chunk totals."""
    limit_address_space()
    install_alarm()
    func = TARGETS[target]
    seeds = load_seeds(target, build=False)
    best: dict[str, int] = {}
    try:
        while True:
            request = conn.recv()
            if request is None:
                return
            start, end = request
            counts = Counts()
            for index in range(start, end):
                current.value = index
                data, note = make_case(target, seeds, run_seed, index)
                outcome = run_case(func, data)
                counts.add(outcome)
                if outcome.status in BAD:
                    smaller = len(data) < best.get(outcome.key, len(data) + 1)
                    best[outcome.key] = min(len(data), best.get(outcome.key, len(data)))
                    conn.send(("finding", index, outcome, data if smaller else None, note))
                recycle = outcome.status in (HANG, MEM_PEAK) or peak_rss() > MEM_PEAK_BYTES
                if recycle:
                    conn.send(("chunk", start, index + 1, counts))
                    conn.send(("exit", index + 1, end))
                    return
            current.value = -1
            conn.send(("chunk", start, end, counts))
    finally:
        remove_scratch()


@dataclass
class _Slot:
    process: BaseProcess
    conn: Connection
    current: Any
    """A shared ``c_int64``: the case the worker is running, -1 between chunks."""
    chunk: tuple[int, int] | None = None
    case_since: tuple[int, float] = (-1, 0.0)


class Driver:
    """The parent: hands out chunks, watches workers, collects counts and findings."""

    def __init__(self, target: str, cases: int, run_seed: int, jobs: int) -> None:
        self.target = target
        self.cases = cases
        self.run_seed = run_seed
        self.jobs = max(1, jobs)
        self.counts = Counts()
        self.store = FindingStore(target)
        self.context = multiprocessing.get_context("fork")
        self.pending: list[tuple[int, int]] = [
            (i, min(i + CHUNK, cases)) for i in range(0, cases, CHUNK)
        ]
        self.seeds = load_seeds(target)
        self.first_paths: dict[str, str] = {}

    def _spawn(self) -> _Slot:
        parent, child = self.context.Pipe()
        current = self.context.Value("q", -1, lock=False)
        process = self.context.Process(
            target=_worker, args=(self.target, self.run_seed, child, current), daemon=True
        )
        process.start()
        child.close()
        return _Slot(process, parent, current)

    def _assign(self, slot: _Slot) -> None:
        if self.pending:
            slot.chunk = self.pending.pop(0)
            slot.conn.send(slot.chunk)
        else:
            slot.chunk = None

    def _record(self, index: int, outcome: Outcome, data: bytes | None, note: str) -> None:
        self.counts.add(outcome, case=False)  # cases are counted by chunk totals
        path = self.store.record(outcome, data, note)
        if outcome.key not in self.first_paths:
            self.first_paths[outcome.key] = str(path)
            print(
                f"{self.target}: {outcome.status}: {outcome.key} (case {index}) -> {path}",
                file=sys.stderr,
            )

    def _lost(self, slot: _Slot, reason: str) -> None:
        """A worker died or hung in its case: report that case, requeue the rest."""
        index = int(slot.current.value)
        if slot.chunk is not None and index < 0:
            self.pending.insert(0, slot.chunk)
        elif slot.chunk is not None:
            start, end = slot.chunk
            data, note = make_case(self.target, self.seeds, self.run_seed, index)
            status = HANG if reason == "watchdog" else MEM_PEAK if reason == "memory" else "escape"
            key = {"watchdog": "hang (killed by watchdog)", "memory": "worker killed (memory)"}.get(
                reason, f"worker died ({reason})"
            )
            outcome = Outcome(status, key, reason)
            self._record(index, outcome, data, note)
            self.counts.cases += index - start + 1
            if index + 1 < end:
                self.pending.insert(0, (index + 1, end))

    def run(self) -> Counts:
        slots = [self._spawn() for _ in range(min(self.jobs, len(self.pending)))]
        for slot in slots:
            self._assign(slot)
        while any(s.chunk is not None for s in slots):
            ready = wait([s.conn for s in slots if s.chunk is not None], timeout=0.5)
            for slot in list(slots):
                if slot.conn in ready:
                    self._receive(slot, slots)
            self._watch(slots)
        for slot in slots:
            slot.conn.send(None)
            slot.process.join(5)
        return self.counts

    def _receive(self, slot: _Slot, slots: list[_Slot]) -> None:
        try:
            message = slot.conn.recv()
        except EOFError:
            slot.process.join(1)
            code = slot.process.exitcode
            self._lost(slot, "memory" if code == -9 else f"exit code {code}")
            self._replace(slot, slots)
            return
        kind = message[0]
        if kind == "finding":
            _, index, outcome, data, note = message
            self._record(index, outcome, data, note)
        elif kind == "chunk":
            _, start, end, counts = message
            self.counts.cases += end - start
            self.counts.refused += counts.refused
            self.counts.slowest = max(self.counts.slowest, counts.slowest)
            if slot.chunk is not None and end == slot.chunk[1]:
                self._assign(slot)
        elif kind == "exit":
            _, resume, end = message
            if resume < end:
                self.pending.insert(0, (resume, end))
            slot.chunk = None
            self._replace(slot, slots)

    def _replace(self, slot: _Slot, slots: list[_Slot]) -> None:
        slot.process.join(5)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join()
        slot.conn.close()
        slots.remove(slot)
        if self.pending:
            fresh = self._spawn()
            slots.append(fresh)
            self._assign(fresh)

    def _watch(self, slots: list[_Slot]) -> None:
        now = time.monotonic()
        for slot in list(slots):
            index = int(slot.current.value)
            if index < 0 or slot.chunk is None:
                continue
            if slot.case_since[0] != index:
                slot.case_since = (index, now)
            elif now - slot.case_since[1] > WATCHDOG_SECONDS:
                slot.process.kill()
                slot.process.join()
                self._lost(slot, "watchdog")
                slot.chunk = None
                self._replace(slot, slots)


def main(argv: list[str] | None = None) -> int:
    parser = driver_arguments(__doc__)
    parser.add_argument("--cases", type=int, default=2000, help="cases per target")
    parser.add_argument("--seed", type=int, default=1, help="run seed (cases are reproducible)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--replay-case",
        type=int,
        metavar="I",
        help="write case I of the run to stdout instead of fuzzing",
    )
    args = parser.parse_args(argv)
    targets = args.target or list(TARGETS)
    if args.replay_case is not None:
        data, note = make_case(targets[0], load_seeds(targets[0]), args.seed, args.replay_case)
        print(note, file=sys.stderr)
        sys.stdout.buffer.write(data)
        return 0
    found = False
    for target in targets:
        started = time.monotonic()
        driver = Driver(target, args.cases, args.seed, args.jobs)
        counts = driver.run()
        seconds = time.monotonic() - started
        print(summary(target, counts, seconds, len(driver.store.seen), "mutate"), flush=True)
        found |= bool(driver.store.seen)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
