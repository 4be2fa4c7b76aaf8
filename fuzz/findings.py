"""Running one case and judging it; counting and storing what went wrong.

Both drivers use :func:`run_case`, so "escape", "hang" and "memory peak" mean the same thing
whichever engine produced the input:

- *escape*: the target raised anything but :class:`~pybpf.errors.BpfError` (a
  :class:`~fuzz.targets.Finding` included); deduplicated by exception type and the innermost
  pybpf frame;
- *hang*: the case ran longer than :data:`HANG_SECONDS` (an interval timer interrupts it, and
  the frame it interrupted names it);
- *memory peak*: the process's peak RSS passed :data:`MEM_PEAK_BYTES`, or an allocation failed
  under the address-space limit the drivers set (:data:`ADDRESS_SPACE`).

:class:`FindingStore` keeps one reproducer per distinct finding (the smallest seen) with a text
file describing it, under ``fuzz/.work/findings/<target>/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType, TracebackType

from fuzz.targets import Finding
from pybpf.errors import BpfError

HANG_SECONDS = 5.0
MEM_PEAK_BYTES = 1 << 30
ADDRESS_SPACE = 2 << 30
"""RLIMIT_AS of processes running cases: a runaway allocation fails instead of swapping."""

WORK = Path(os.environ.get("PYBPF_FUZZ_WORK") or Path(__file__).resolve().parent / ".work")
"""Seeds, findings and atheris corpora; ``PYBPF_FUZZ_WORK`` moves it (to fuzz another tree)."""
FINDINGS = WORK / "findings"

OK, REFUSED, ESCAPE, HANG, MEM_PEAK = "ok", "refused", "escape", "hang", "mem_peak"
BAD = (ESCAPE, HANG, MEM_PEAK)


class CaseTimeout(BaseException):
    """Raised into a case by the interval timer; a BaseException so no handler swallows it."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one case ended; ``key`` identifies a distinct finding, ``where`` its pybpf frame."""

    status: str
    key: str = ""
    message: str = ""
    where: str = ""
    trace: str = ""
    seconds: float = 0.0


def limit_address_space() -> None:
    """Cap this process's address space at :data:`ADDRESS_SPACE` (never raise the cap)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = ADDRESS_SPACE if hard == resource.RLIM_INFINITY else min(ADDRESS_SPACE, hard)
    if soft == resource.RLIM_INFINITY or soft > cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def peak_rss() -> int:
    """This process's peak resident set size in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise CaseTimeout


def install_alarm() -> None:
    signal.signal(signal.SIGALRM, _on_alarm)


def _frames(tb: TracebackType | None) -> list[traceback.FrameSummary]:
    return list(traceback.extract_tb(tb))


def pybpf_frame(tb: TracebackType | None, *, with_line: bool = True) -> str:
    """The innermost frame inside pybpf (else the innermost outside this module), as
    ``path:line``; with ``with_line=False``, the function a hang is in, as ``path:function``.

    Where an alarm strikes varies from case to case, so a hang is named by the pybpf function
    that occurs most often on the stack (the recursive one), else by the innermost.
    """
    frames = [f for f in _frames(tb) if f.filename != __file__]  # not the alarm handler
    ours = [f for f in frames if "/pybpf/" in f.filename]
    if not with_line:
        named = [f for f in ours if not f.name.startswith("<")] or ours
        if named:
            counts = Counter((f.filename, f.name) for f in named)
            top = max(counts.values())
            recursive = next(f for f in reversed(named) if counts[(f.filename, f.name)] == top)
            return f"{_short(recursive.filename)}:{recursive.name}"
    chosen = ours[-1] if ours else frames[-1] if frames else None
    if chosen is None:
        return "?"
    return f"{_short(chosen.filename)}:{chosen.lineno if with_line else chosen.name}"


def _short(filename: str) -> str:
    cut = filename.rfind("/pybpf/")
    return filename[cut + 1 :] if cut >= 0 else filename.rsplit("/", 1)[-1]


def run_case(func: Callable[[bytes], None], data: bytes) -> Outcome:
    """Run ``func(data)`` under the hang alarm and judge the result (see the module doc)."""
    start = time.monotonic()
    rss_before = peak_rss()
    try:
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
        try:
            func(data)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        outcome = Outcome(OK)
    except BpfError:
        outcome = Outcome(REFUSED)
    except CaseTimeout as exc:
        where = pybpf_frame(exc.__traceback__)
        key = f"hang in {pybpf_frame(exc.__traceback__, with_line=False)}"
        outcome = Outcome(HANG, key, f"no result after {HANG_SECONDS} s", where, _trace(exc))
    except MemoryError as exc:
        where = pybpf_frame(exc.__traceback__)
        outcome = Outcome(MEM_PEAK, f"MemoryError at {where}", "allocation failed", where)
    except Finding as exc:
        where = pybpf_frame(exc.__traceback__)
        status = HANG if exc.hang else ESCAPE
        outcome = Outcome(status, exc.key, str(exc), where, _trace(exc))
    except (Exception, SystemExit) as exc:
        where = pybpf_frame(exc.__traceback__)
        key = f"{type(exc).__name__} at {where}"
        outcome = Outcome(ESCAPE, key, f"{type(exc).__name__}: {exc}"[:500], where, _trace(exc))
    seconds = time.monotonic() - start
    rss = peak_rss()
    if rss > MEM_PEAK_BYTES and rss_before <= MEM_PEAK_BYTES and outcome.status not in BAD:
        outcome = Outcome(MEM_PEAK, "peak RSS over 1 GiB", f"peak RSS {rss >> 20} MiB")
    return Outcome(
        outcome.status, outcome.key, outcome.message, outcome.where, outcome.trace, seconds
    )


def _trace(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))[-4000:]


@dataclass(slots=True)
class Counts:
    """What a run found, per category, plus how many cases it ran."""

    cases: int = 0
    escapes: int = 0
    hangs: int = 0
    mem_peaks: int = 0
    refused: int = 0
    """Cases pybpf rejected with a BpfError (the expected end of most mutants)."""
    slowest: float = 0.0

    def add(self, outcome: Outcome, *, case: bool = True) -> None:
        """Count ``outcome``; ``case=False`` counts its category but not another case."""
        self.cases += case
        self.slowest = max(self.slowest, outcome.seconds)
        if outcome.status == ESCAPE:
            self.escapes += 1
        elif outcome.status == HANG:
            self.hangs += 1
        elif outcome.status == MEM_PEAK:
            self.mem_peaks += 1
        elif outcome.status == REFUSED:
            self.refused += 1

    def merge(self, other: Counts) -> None:
        self.cases += other.cases
        self.escapes += other.escapes
        self.hangs += other.hangs
        self.mem_peaks += other.mem_peaks
        self.refused += other.refused
        self.slowest = max(self.slowest, other.slowest)


def summary(target: str, counts: Counts, seconds: float, distinct: int, engine: str) -> str:
    """The one-line result of a run, as the lead's note quotes it."""
    return (
        f"target={target} cases={counts.cases} escapes={counts.escapes} hangs={counts.hangs} "
        f"mem_peaks={counts.mem_peaks} seconds={seconds:.0f} distinct={distinct} "
        f"refused={counts.refused} slowest_case={counts.slowest:.2f}s engine={engine}"
    )


class FindingStore:
    """Reproducers of distinct findings of one target: ``<hash>.bin`` and ``<hash>.json``."""

    def __init__(self, target: str, root: Path = FINDINGS) -> None:
        self.target = target
        self.dir = root / target
        self.seen: dict[str, int] = {}
        """Key -> number of cases with that finding in this run."""

    def record(self, outcome: Outcome, data: bytes | None, note: str = "") -> Path:
        """Count ``outcome``; keep ``data`` as its reproducer if it is the first or smallest."""
        digest = hashlib.sha1(f"{self.target}\0{outcome.key}".encode()).hexdigest()[:12]
        reproducer = self.dir / f"{digest}.bin"
        self.seen[outcome.key] = self.seen.get(outcome.key, 0) + 1
        if data is None:
            return reproducer
        self.dir.mkdir(parents=True, exist_ok=True)
        if not reproducer.exists() or len(data) < reproducer.stat().st_size:
            reproducer.write_bytes(data)
            info = {"target": self.target, **asdict(outcome), "mutation": note}
            info["size"] = len(data)
            reproducer.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
        return reproducer
