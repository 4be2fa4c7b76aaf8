"""Coverage-guided fuzzing with atheris: ``python -m fuzz.run_atheris --target NAME --seconds S``.

atheris (libFuzzer for Python, from PyPI: ``pip install -e '.[fuzz]'``) instruments pybpf's
bytecode and keeps inputs that reach new code.  Its mutations are half libFuzzer's own
(``atheris.Mutate``) and half ours (:mod:`fuzz.mutators`, as a custom mutator), so the
structure-aware edits and hostile names reach coverage feedback too.

The fuzzing loop runs in a child process (:mod:`fuzz.atheris_child`): every case goes through
:func:`fuzz.findings.run_case`, so an escape is counted and stored instead of stopping
libFuzzer, and the counts mean what they mean for :mod:`fuzz.mutate`.  After a hang or a
memory peak the child exits and the parent starts a new one with the time that is left (a
process's peak RSS never goes down, so it could not report a second one).  libFuzzer's own
timer is off (our alarm replaces it); the child writes each input to a scratch file before
running it, so when the child dies or stops answering, the parent knows which input did it.
The corpus grows in ``fuzz/.work/atheris/<target>/corpus``, seeded from ``fuzz.seed``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fuzz.findings import ESCAPE, HANG, MEM_PEAK, WORK, Counts, FindingStore, Outcome, summary
from fuzz.seed import load_seeds
from fuzz.targets import TARGETS, driver_arguments

RECYCLE = 3
"""Child exit status after a hang or memory peak: start another child."""
STALL_SECONDS = 30.0
"""A child whose case counter stops this long is stuck where our alarm cannot reach."""


class Runner:
    """Starts children until the time is up and adds up what they report."""

    def __init__(self, target: str, seconds: float) -> None:
        self.target = target
        self.seconds = seconds
        self.home = WORK / "atheris" / target
        self.corpus = self.home / "corpus"
        self.artifacts = self.home / "artifacts"
        self.counts = Counts()
        self.store = FindingStore(target)
        self.children = 0

    def _prepare(self) -> int:
        """Seed the corpus (first run only); the largest input libFuzzer may make."""
        seeds = load_seeds(self.target)
        self.corpus.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        for _, data in seeds:
            path = self.corpus / hashlib.sha1(data).hexdigest()
            if not path.exists():
                path.write_bytes(data)
        return max((len(d) for _, d in seeds), default=4096) * 2

    def run(self) -> Counts:
        max_len = self._prepare()
        deadline = time.monotonic() + self.seconds
        while (left := deadline - time.monotonic()) > 1:
            self._child(left, max_len)
        (self.home / f"current.{os.getpid()}").unlink(missing_ok=True)
        return self.counts

    def _child(self, seconds: float, max_len: int) -> None:
        self.children += 1
        stats = self.home / f"stats.{os.getpid()}.{self.children}.json"
        current = self.home / f"current.{os.getpid()}"
        log = self.home / "libfuzzer.log"
        command = [
            sys.executable, "-m", "fuzz.atheris_child", "--target", self.target,
            "--seconds", f"{seconds:.1f}", "--stats", str(stats), "--current", str(current),
            "--", str(self.corpus), f"-max_len={max_len}", "-timeout=0", "-rss_limit_mb=2048",
            f"-artifact_prefix={self.artifacts}/", f"-max_total_time={int(seconds) + 60}",
            "-print_final_stats=1",
        ]  # fmt: skip
        root = Path(__file__).resolve().parent.parent
        with log.open("ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=out, cwd=root)
            code = self._watch(proc, stats, seconds)
        ran = self._collect(stats)
        if code not in (0, RECYCLE):
            if not ran:
                tail = self._log_tail().decode(errors="replace").strip().splitlines()
                raise SystemExit(f"atheris did not start (exit {code}): {tail[-1:]} (see {log})")
            self._blame(current, code)

    def _watch(self, proc: subprocess.Popen[bytes], stats: Path, seconds: float) -> int:
        """Wait for the child; kill it if its case counter stalls. Its exit status."""
        last, since = -1.0, time.monotonic()
        give_up = time.monotonic() + seconds + 120
        while True:
            try:
                return proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
            cases = self._read(stats).get("counts", {}).get("cases", -1)
            now = time.monotonic()
            if cases != last:
                last, since = cases, now
            elif now - since > STALL_SECONDS or now > give_up:
                proc.kill()
                proc.wait()
                return -9

    @staticmethod
    def _read(stats: Path) -> dict[str, dict[str, float]]:
        try:
            data: dict[str, dict[str, float]] = json.loads(stats.read_text())
        except (OSError, ValueError):
            return {}
        return data

    def _collect(self, stats: Path) -> int:
        """Add a finished child's counts to the run's; how many cases it ran."""
        data = self._read(stats)
        counts = data.get("counts", {})
        self.counts.merge(
            Counts(
                int(counts.get("cases", 0)),
                int(counts.get("escapes", 0)),
                int(counts.get("hangs", 0)),
                int(counts.get("mem_peaks", 0)),
                int(counts.get("refused", 0)),
                float(counts.get("slowest", 0.0)),
            )
        )
        for key, n in data.get("seen", {}).items():
            self.store.seen[key] = self.store.seen.get(key, 0) + int(n)
        stats.unlink(missing_ok=True)
        return int(counts.get("cases", 0))

    def _blame(self, current: Path, code: int) -> None:
        """The child died (native crash, libFuzzer's RSS limit) or stalled: report the input."""
        data = current.read_bytes() if current.exists() else None
        tail = self._log_tail()
        last = tail.strip().splitlines()[-1].decode(errors="replace") if tail.strip() else ""
        if code == -9:
            outcome = Outcome(HANG, "hang (child stalled, killed)", last)
        elif b"out-of-memory" in tail:
            outcome = Outcome(MEM_PEAK, "libFuzzer RSS limit", last)
        else:
            outcome = Outcome(ESCAPE, f"child died (exit {code})", last)
        self.counts.add(outcome)
        path = self.store.record(outcome, data, "atheris: child lost")
        print(f"{self.target}: {outcome.status}: {outcome.key} -> {path}", file=sys.stderr)

    def _log_tail(self) -> bytes:
        log = self.home / "libfuzzer.log"
        with log.open("rb") as f:
            f.seek(max(0, log.stat().st_size - 4096))
            return f.read()


def main(argv: list[str] | None = None) -> int:
    parser = driver_arguments(__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds per target")
    args = parser.parse_args(argv)
    targets = args.target or list(TARGETS)
    found = False
    for target in targets:
        started = time.monotonic()
        runner = Runner(target, args.seconds)
        counts = runner.run()
        line = summary(
            target, counts, time.monotonic() - started, len(runner.store.seen), "atheris"
        )
        print(line, flush=True)
        for key, n in sorted(runner.store.seen.items()):
            print(f"  {n} x {key}", flush=True)
        found |= bool(runner.store.seen)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
