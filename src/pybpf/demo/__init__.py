"""``pybpf demo``: a BPF library and its Python companion, linked into an application.

What it shows, end to end and without a compiler (everything it needs ships as package data
in :mod:`pybpf.data.demo`):

1. pybpf's static linker links the prebuilt library ``flowlib.bpf.o`` into the prebuilt
   application object ``app_top.bpf.o`` (the bytes equal those the application's generated
   skeleton embeds: the link is reproducible);
2. the application's generated skeleton (``AppTop``) opens the result, and the library's
   companion (``Flow``, built on the generated subskeleton ``FlowLib``) configures the library
   before load: trace this process only, microsecond buckets;
3. load and attach (raw tracepoints ``sys_enter``/``sys_exit``), run a thread making syscalls,
   and draw the library's log2 latency histogram live;
4. detach and close everything, also on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from importlib import resources
from typing import TYPE_CHECKING, TextIO

from pybpf import probes
from pybpf.demo.render import Frame, make_renderer
from pybpf.demo.workload import Workload
from pybpf.errors import BpfError
from pybpf.linker import link_objects
from pybpf.object import BpfObject

if TYPE_CHECKING:
    from pybpf.data.demo.app_top_skel import AppTop

__all__ = ["link_demo_app", "open_demo_app", "run_demo"]

DATA_PACKAGE = "pybpf.data.demo"
REFRESH_SECONDS = 0.25


def demo_object(name: str) -> bytes:
    """A prebuilt object shipped with pybpf (``flowlib.bpf.o``, ``app_top.bpf.o``...)."""
    return resources.files(DATA_PACKAGE).joinpath(name).read_bytes()


def link_demo_app(app: str = "app_top") -> bytes:
    """Link the library into application ``app`` with pybpf's linker, as ``gen object`` does."""
    names = [f"{app}.bpf.o", "flowlib.bpf.o"]
    return link_objects([(name, demo_object(name)) for name in names])


def open_demo_app(out: TextIO | None = None) -> AppTop:
    """The demo application, linked now and opened through its generated skeleton.

    The skeleton embeds the object linked when pybpf was built; linking again must give
    the same bytes (the linker is deterministic), which the demo says when ``out`` is given.
    """
    # Lazy, like Flow in _run: the generated skeletons (object bytes inside) load only once
    # the preflight has passed, so a machine without BPF gets its explanation at once.
    from pybpf.data.demo.app_top_skel import AppTop

    linked = link_demo_app("app_top")
    if out is not None:
        same = "identical to" if linked == AppTop.object_bytes() else "DIFFERENT from"
        out.write(
            f"linked app_top.bpf.o + flowlib.bpf.o with pybpf's linker: {len(linked)} bytes, "
            f"{same} the object in the generated skeleton\n"
        )
    return AppTop(BpfObject.open(linked, "app_top"))


def _preflight(err: TextIO) -> bool:
    if os.geteuid() != 0:
        err.write(
            "pybpf demo: loading BPF programs needs root (CAP_BPF and CAP_PERFMON); "
            "run it as root, e.g. sudo pybpf demo\n"
        )
        return False
    if not probes.has_bpf_syscall():
        err.write(
            "pybpf demo: this kernel does not offer the bpf() system call "
            "(CONFIG_BPF_SYSCALL is off, or BPF is disabled here)\n"
        )
        return False
    return True


def run_demo(seconds: float, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the demo for ``seconds``; returns the process exit code (0 ok, 1 failed, 130 ^C)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if not _preflight(err):
        return 1
    try:
        return _run(seconds, out, err)
    except KeyboardInterrupt:
        err.write("pybpf demo: interrupted; programs detached\n")
        return 130
    except BpfError as exc:
        err.write(f"pybpf demo: {exc}\n")
        return 1


def _run(seconds: float, out: TextIO, err: TextIO) -> int:
    from pybpf.data.demo.companion import Flow  # lazy: a generated subskeleton, see above

    skel = open_demo_app(out)
    workload = Workload()
    interrupted = False
    frame: Frame | None = None
    try:
        flow = Flow(skel.obj)
        flow.configure(pid=os.getpid(), unit_shift=0)
        title = skel.data.top_title.decode() + f" (pid {os.getpid()})"
        skel.load()
        skel.attach()
        workload.start()
        start = time.monotonic()
        with make_renderer(out) as renderer:
            try:
                while True:
                    elapsed = time.monotonic() - start
                    frame = Frame(flow.snapshot(), elapsed, seconds, skel.bss.top_enters, title)
                    renderer.update(frame)
                    if elapsed >= seconds:
                        break
                    time.sleep(min(REFRESH_SECONDS, max(0.0, seconds - elapsed)))
            except KeyboardInterrupt:
                interrupted = True
            workload.stop()
            frame = Frame(
                flow.snapshot(), time.monotonic() - start, seconds, skel.bss.top_enters, title
            )
            renderer.final(frame)
    finally:
        # A second Ctrl-C must not cut the cleanup short: hold SIGINT until it is done.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            workload.stop()
            skel.destroy()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
    if interrupted:
        err.write("pybpf demo: interrupted; programs detached\n")
        return 130
    if frame is None or frame.snapshot.events == 0:
        err.write("pybpf demo: no syscall was traced; is the raw tracepoint attached?\n")
        return 1
    out.write(
        f"detached; {frame.snapshot.events} syscalls traced by the library, "
        f"{frame.app_counter} counted by the application\n"
    )
    return 0
