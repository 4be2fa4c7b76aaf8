"""``pybpf demo``: a library linked into an application, run live, and cleaned up after.

The demo runs as a subprocess (as a user would run it) and must leave nothing attached: the
kernel's lists of programs and links are read with :mod:`pybpf.kernel` before and after.
"""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import requires_root

ROOT = Path(__file__).resolve().parent.parent
DEMO_PROGRAMS = {"flowlib_sys_enter", "flowlib_sys_exit", "top_count_enter"}
PYBPF = [sys.executable, "-c", "import sys; from pybpf.cli import main; sys.exit(main())"]


def _ids(kind: str) -> Iterator[tuple[int, str]]:
    """(id, program name) of every program, or of every link's program, in the kernel."""
    from pybpf.errors import KernelError
    from pybpf.kernel.infos import BpfLinkInfo, BpfProgInfo, obj_get_info_by_fd
    from pybpf.kernel.objs import (
        link_get_fd_by_id,
        link_ids,
        prog_get_fd_by_id,
        prog_ids,
    )

    def prog_name(prog_id: int) -> str:
        fd = prog_get_fd_by_id(prog_id)
        try:
            info = obj_get_info_by_fd(fd, BpfProgInfo())
        finally:
            fd.close()
        return bytes(info.name).split(b"\0", 1)[0].decode()

    for obj_id in list(prog_ids() if kind == "prog" else link_ids()):
        try:
            if kind == "prog":
                yield obj_id, prog_name(obj_id)
            else:
                fd = link_get_fd_by_id(obj_id)
                try:
                    link = obj_get_info_by_fd(fd, BpfLinkInfo())
                finally:
                    fd.close()
                yield obj_id, prog_name(link.prog_id)
        except KernelError:
            continue  # it went away while we looked (another test's object)


def demo_objects() -> set[tuple[str, int]]:
    """Programs and links in the kernel that belong to the demo (by program name)."""
    return {
        (kind, obj_id)
        for kind in ("prog", "link")
        for obj_id, name in _ids(kind)
        if name in DEMO_PROGRAMS
    }


def settled_demo_objects(before: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Demo objects that were not there before, once the kernel has freed what was closed.

    The kernel frees a program after an RCU grace period, so its id may be listed for a
    moment after its last descriptor is gone: wait a little before calling it a leak.
    """
    deadline = time.monotonic() + 5
    while True:
        extra = demo_objects() - before
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.1)


def run_pybpf(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PYBPF, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )


@requires_root
def test_demo_traces_syscalls_and_leaves_nothing_attached() -> None:
    before = demo_objects()
    result = run_pybpf("demo", "--seconds", "2")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    # Plain output (stdout is a pipe): progress lines, then the histogram and a summary.
    assert "identical to the object in the generated skeleton" in out
    assert "syscalls traced:" in out
    assert "latency" in out and "distribution" in out
    assert "getppid" in out  # the workload's most frequent syscall is named
    last = out.strip().splitlines()[-1]
    assert last.startswith("detached; ")
    traced = int(last.split()[1])
    counted = int(last.split(", ")[1].split()[0])
    assert traced > 1000, out  # the workload makes tens of thousands of calls a second
    assert counted > 1000, out  # the application's own program saw them too
    assert settled_demo_objects(before) == set()


def test_demo_refuses_without_root_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    from pybpf.demo import run_demo

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    out, err = io.StringIO(), io.StringIO()
    assert run_demo(1, out=out, err=err) == 1
    assert "needs root" in err.getvalue()
    assert out.getvalue() == ""


def test_demo_explains_a_kernel_without_bpf(monkeypatch: pytest.MonkeyPatch) -> None:
    import pybpf.probes
    from pybpf.demo import run_demo

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(pybpf.probes, "has_bpf_syscall", lambda: False)
    err = io.StringIO()
    assert run_demo(1, out=io.StringIO(), err=err) == 1
    assert "does not offer the bpf() system call" in err.getvalue()


@requires_root
def test_demo_draws_with_rich_on_a_terminal_and_stops_on_ctrl_c() -> None:
    import rich  # noqa: F401 - a test dependency: the terminal rendering needs it

    before = demo_objects()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the demo on a terminal
        os.chdir(ROOT)
        os.execv(sys.executable, [*PYBPF, "demo", "--seconds", "30"])
    output = b""
    deadline = time.monotonic() + 30
    try:
        while b"most frequent" not in output and time.monotonic() < deadline:
            if select.select([fd], [], [], 1)[0]:
                output += os.read(fd, 65536)
        assert b"most frequent" in output, output.decode(errors="replace")
        time.sleep(0.5)
        os.kill(pid, 2)  # Ctrl-C
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 1)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 130, text
    assert "\x1b[" in text  # drawn with rich: terminal control sequences
    assert "━" in text or "█" in text  # rich's bars
    assert "interrupted; programs detached" in text
    assert "Traceback" not in text
    assert settled_demo_objects(before) == set()
