"""Trace this process's syscalls with flowlib while making a known number of ``getppid()``.

The generated skeleton (``Flowapp``) opens the application's final object, which holds
flowlib linked in; the library's companion configures it before load and reads its
histogram after, through the library's generated subskeleton.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

from pybpf_example_flowlib import Flow

from pybpf_example_flowapp.flowapp_skel import Flowapp

GETPPID = {"x86_64": 110, "aarch64": 173, "s390x": 64, "ppc64le": 64, "riscv64": 173}


@dataclass(frozen=True, slots=True)
class Result:
    calls: int
    """getppid() calls made while attached."""
    watched: int
    """The application's own counter (its .bss)."""
    library_events: int
    """Syscalls the library histogrammed (configured to getppid only)."""
    library_syscalls: dict[int, int]
    buckets: tuple[int, ...]
    unit_shift: int
    name: bytes


def run(calls: int = 1000, unit_shift: int = 8) -> Result:
    """Load, attach, make ``calls`` getppid() calls, read both counters, detach."""
    nr = GETPPID[platform.machine()]
    skel = Flowapp.open()
    try:
        flow = Flow(skel.obj)
        flow.configure(pid=os.getpid(), syscall=nr, unit_shift=unit_shift, max_threads=256)
        skel.rodata.flowapp_watch_nr = nr
        skel.load()
        skel.attach()
        for _ in range(calls):
            os.getppid()
        skel.detach()
        snap = flow.snapshot()
        return Result(
            calls=calls,
            watched=skel.bss.flowapp_watched,
            library_events=snap.events,
            library_syscalls=snap.syscalls,
            buckets=snap.buckets,
            unit_shift=snap.unit_shift,
            name=skel.data.flowapp_name,
        )
    finally:
        skel.destroy()
