"""Drawing the demo's live histogram: with ``rich`` on a terminal, as plain text otherwise.

``rich`` is optional (pybpf has no run-time dependencies): without it, or when stdout is not
a terminal (a pipe, a test), the demo prints one progress line per refresh and the full
histogram at the end, which is also what a log file wants.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from pybpf.demo.syscalls import syscall_name

if TYPE_CHECKING:
    from pybpf.data.demo.companion import Snapshot


@dataclass(frozen=True, slots=True)
class Frame:
    """One refresh: the library's snapshot plus the application's own counter."""

    snapshot: Snapshot
    elapsed: float
    duration: float
    app_counter: int
    title: str


def format_ns(ns: float) -> str:
    if ns < 1000:
        return f"{ns:.0f}ns"
    if ns < 1_000_000:
        return f"{ns / 1000:.1f}us"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.1f}ms"
    return f"{ns / 1_000_000_000:.1f}s"


def summary_line(frame: Frame) -> str:
    snap = frame.snapshot
    return (
        f"[{frame.elapsed:4.1f}s] syscalls traced: {snap.events}, mean "
        f"{format_ns(snap.mean_ns)}, max {format_ns(snap.max_ns)} "
        f"({syscall_name(snap.max_nr)}); app counter: {frame.app_counter}"
    )


def top_lines(snap: Snapshot) -> list[str]:
    return [f"  {syscall_name(nr):<16} {count}" for nr, count in snap.top_syscalls(6)]


class PlainRenderer:
    """Text for pipes and terminals without rich."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __enter__(self) -> PlainRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, frame: Frame) -> None:
        self.out.write(summary_line(frame) + "\n")
        self.out.flush()

    def final(self, frame: Frame) -> None:
        self.out.write(f"\n{frame.title}\n{frame.snapshot.format()}\n\nmost frequent:\n")
        self.out.write("\n".join(top_lines(frame.snapshot)) + "\n")
        self.out.flush()


class RichRenderer:
    """A live-updating table with bars, redrawn in place."""

    def __init__(self, rich_live: Callable[..., Any], console: Any) -> None:
        self._live_factory = rich_live
        self.console = console
        self._live: Any = None

    def __enter__(self) -> RichRenderer:
        self._live = self._live_factory(console=self.console, auto_refresh=False, transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def _table(self, frame: Frame) -> Any:
        # Lazy: rich is optional, and only this renderer (chosen when it imports) uses it.
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        snap = frame.snapshot
        table = Table(title=frame.title, expand=False, show_edge=False)
        table.add_column("latency", justify="right")
        table.add_column("count", justify="right")
        table.add_column("distribution", width=42)
        peak = max(snap.buckets, default=0) or 1
        for slot in snap.used_buckets():
            low, high = snap.bucket_bounds_ns(slot)
            count = snap.buckets[slot]
            bar = Text("█" * round(40 * count / peak) or ("▏" if count else ""), style="cyan")
            table.add_row(f"{format_ns(low)} - {format_ns(high)}", str(count), bar)
        tops = Table(title="most frequent", show_edge=False)
        tops.add_column("syscall")
        tops.add_column("calls", justify="right")
        for nr, count in snap.top_syscalls(6):
            tops.add_row(syscall_name(nr), str(count))
        status = Text(summary_line(frame) + f"  (of {frame.duration:.0f}s, Ctrl-C stops)")
        return Group(table, tops, status)

    def update(self, frame: Frame) -> None:
        self._live.update(self._table(frame), refresh=True)

    def final(self, frame: Frame) -> None:
        self.update(frame)


Renderer = PlainRenderer | RichRenderer


def make_renderer(out: TextIO = sys.stdout, *, force_plain: bool = False) -> Renderer:
    """Rich when ``out`` is a terminal and rich is importable; plain text otherwise."""
    if not force_plain and out.isatty():
        try:  # lazy: rich is an optional dependency
            from rich.console import Console
            from rich.live import Live
        except ImportError:
            pass
        else:
            return RichRenderer(Live, Console(file=out))
    return PlainRenderer(out)
