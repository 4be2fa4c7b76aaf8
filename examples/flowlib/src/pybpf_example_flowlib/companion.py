"""flowlib's Python companion: configure the BPF library before load, read it after.

The BPF half of flowlib is linked *into* applications, so where its variables live depends
on the application.  The companion never assumes: it opens the generated subskeleton
(``Flowlib``, from ``pybpf gen subskeleton flowlib.bpf.o name flowlib --lang python``)
against the application's object, which finds the library's maps and globals by name.

    skel = MyApp.open()             # the application's generated skeleton
    flow = Flow(skel.obj)           # the library inside it
    flow.configure(pid=os.getpid()) # .rodata / .data / map sizes: before load
    skel.load(); skel.attach()
    ...
    print(flow.snapshot().format()) # .bss histogram and totals: after load, live

This file is shared verbatim by the flowlib package (pybpf_example_flowlib) and by ``pybpf demo``.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .flowlib_subskel import Flowlib

if TYPE_CHECKING:
    from pybpf.object import BpfObject

BUCKETS = 32
"""Latency buckets: bucket ``i`` holds ``[2**i, 2**(i+1))`` units (bucket 0 also holds 0)."""
MAX_SYSCALLS = 512
"""Syscall numbers counted one by one (larger numbers still count in the histogram)."""


class FlowError(Exception):
    """The library was used out of order (configured after load, read before it)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The library's counters at one moment (a copy: it does not change afterwards)."""

    unit_shift: int
    buckets: tuple[int, ...]
    syscalls: dict[int, int]
    events: int
    total_ns: int
    max_ns: int
    max_nr: int
    missed: int

    @property
    def unit_ns(self) -> int:
        return 1 << self.unit_shift

    @property
    def mean_ns(self) -> float:
        return self.total_ns / self.events if self.events else 0.0

    def bucket_bounds_ns(self, slot: int) -> tuple[int, int]:
        """Latencies bucket ``slot`` holds, in ns: ``[low, high)``."""
        low = 0 if slot == 0 else (1 << slot) * self.unit_ns
        return low, (1 << (slot + 1)) * self.unit_ns

    def used_buckets(self) -> range:
        """From the first to the last non-empty bucket (empty range when nothing was seen)."""
        used = [i for i, n in enumerate(self.buckets) if n]
        return range(used[0], used[-1] + 1) if used else range(0)

    def top_syscalls(self, count: int = 5) -> list[tuple[int, int]]:
        """The ``count`` most frequent syscalls as ``(number, calls)``."""
        ranked = sorted(self.syscalls.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:count]

    def format(self, width: int = 40) -> str:
        """A text histogram, like bcc's ``funclatency``."""
        lines = [f"{'latency':>21} : {'count':<9} distribution"]
        peak = max(self.buckets, default=0) or 1
        for slot in self.used_buckets():
            low, high = self.bucket_bounds_ns(slot)
            count = self.buckets[slot]
            bar = "*" * round(width * count / peak)
            span = f"{format_ns(low):>9} -> {format_ns(high):<9}"
            lines.append(f"{span} : {count:<9} |{bar:<{width}}|")
        lines.append(
            f"events {self.events}, mean {format_ns(round(self.mean_ns))}, "
            f"max {format_ns(self.max_ns)}, missed {self.missed}"
        )
        return "\n".join(lines)


def format_ns(ns: int) -> str:
    """``512ns``, ``1.0us``, ``2.1ms``, ``1.5s``."""
    if ns < 1000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1000:.1f}us"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.1f}ms"
    return f"{ns / 1_000_000_000:.1f}s"


class Flow:
    """flowlib inside one application's object (opened or loaded)."""

    def __init__(self, obj: BpfObject) -> None:
        self.lib = Flowlib.open(obj)
        self.obj = obj

    def configure(
        self,
        *,
        pid: int | None = None,
        syscall: int | None = None,
        unit_shift: int | None = None,
        max_threads: int | None = None,
    ) -> None:
        """Settings that only exist before load.

        ``pid``: trace only this process (default: all); ``syscall``: only this number;
        ``unit_shift``: the histogram's unit is ``2**unit_shift`` ns (default 10, ~1 µs);
        ``max_threads``: threads that may be inside a syscall at once (the start table).
        """
        if self.obj.loaded:
            raise FlowError("flowlib: configure() must come before the object is loaded")
        if pid is not None:
            self.lib.rodata.flowlib_target_tgid = pid
        if syscall is not None:
            self.lib.rodata.flowlib_only_syscall = syscall
        if unit_shift is not None:
            if not 0 <= unit_shift < 40:
                raise FlowError(f"flowlib: unit_shift {unit_shift} is not in [0, 40)")
            self.lib.data.flowlib_unit_shift = unit_shift
        if max_threads is not None:
            self.lib.maps.flowlib_starts.max_entries = max_threads

    @property
    def paused(self) -> bool:
        return bool(self.lib.bss.flowlib_paused)

    @paused.setter
    def paused(self, value: bool) -> None:
        """Stop or restart counting without detaching (``.bss`` is writable while loaded)."""
        self.lib.bss.flowlib_paused = int(value)

    def snapshot(self) -> Snapshot:
        """Copy the counters (live kernel memory once loaded)."""
        bss = self.lib.bss
        summary: Any = bss.flowlib_summary
        syscalls = [int(n) for n in bss.flowlib_syscalls]
        return Snapshot(
            unit_shift=int(self.lib.data.flowlib_unit_shift),
            buckets=tuple(int(n) for n in bss.flowlib_hist),
            syscalls={nr: n for nr, n in enumerate(syscalls) if n},
            events=int(summary.events),
            total_ns=int(summary.total_ns),
            max_ns=int(summary.max_ns),
            max_nr=int(summary.max_nr),
            missed=int(summary.missed),
        )

    def reset(self) -> None:
        """Zero the counters (while loaded: the programs keep counting from zero)."""
        bss = self.lib.bss
        for name in ("flowlib_hist", "flowlib_syscalls", "flowlib_summary"):
            view: Any = getattr(bss, name)
            ctypes.memset(ctypes.addressof(view), 0, ctypes.sizeof(view))
