"""examples/tools: runqlat and execsnoop ported to Python, run for real.

Each tool is compiled, its skeleton generated with ``pybpf gen skeleton --lang python``, and
run as a user would run it against a workload it must see; the output keeps libbpf-tools'
layout (header, columns, histogram rows).  ``mypy --strict`` checks both tools.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CFLAGS, CLANG, requires_root

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "examples" / "tools"

pytestmark = requires_root


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CLANG is None:
        pytest.skip("clang-16 is not installed")
    out = tmp_path_factory.mktemp("tools")
    for name in ("runqlat", "execsnoop"):
        shutil.copy(TOOLS / f"{name}.py", out)
        obj = out / f"{name}.bpf.o"
        subprocess.run([CLANG, *CFLAGS, "-c", str(TOOLS / f"{name}.bpf.c"), "-o", str(obj)],
                       check=True)  # fmt: skip
        skel = subprocess.run(
            [sys.executable, "-m", "pybpf.cli", "gen", "skeleton", str(obj), "name", name,
             "--lang", "python"], check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        (out / f"{name}_skel.py").write_text(skel)
    return out


def env_for(tools: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=f"{tools}{os.pathsep}{ROOT / 'src'}")


def test_execsnoop_sees_an_exec_with_its_arguments(tools: Path) -> None:
    proc = subprocess.Popen([sys.executable, "execsnoop.py", "--count", "1"], cwd=tools,
                            env=env_for(tools), stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    header = proc.stdout.readline()  # printed once attached
    assert header.split() == ["PCOMM", "PID", "PPID", "RET", "ARGS"]
    marker = subprocess.run(["/bin/true", "pybpf-marker", "second arg"], check=True)
    assert marker.returncode == 0
    out, _ = proc.communicate(timeout=20)
    line = out.splitlines()[0]
    # libbpf-tools: "%-16s %-6d %-6d %3d " then each argument followed by a space.
    match = re.fullmatch(r"(\S+) +(\d+) +(\d+) +(-?\d+) (.*)", line)
    assert match, line
    comm, _pid, ppid, ret, args = match.groups()
    assert comm == "true" and int(ppid) == os.getpid() and ret == "0"
    assert args == "/bin/true pybpf-marker second arg "  # records cut to the args in use


def test_runqlat_prints_a_log2_histogram(tools: Path) -> None:
    proc = subprocess.Popen([sys.executable, "runqlat.py", "1", "1"], cwd=tools,
                            env=env_for(tools), stdout=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:  # context switches for the histogram to count
        time.sleep(0.001)
    out, _ = proc.communicate(timeout=20)
    lines = out.splitlines()
    assert lines[0] == "Tracing run queue latency... Hit Ctrl-C to end."
    header = next(i for i, line in enumerate(lines) if "distribution" in line)
    assert re.fullmatch(r" {5}usecs {15}: count {4}distribution", lines[header])
    rows = lines[header + 1 :]
    assert rows and all(re.fullmatch(r" *\d+ -> \d+ +: \d+ +\|[* ]{40}\|", r) for r in rows)
    assert sum(int(r.split(":")[1].split()[0]) for r in rows) > 0


def test_the_tools_type_check(tools: Path) -> None:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed in this environment")
    result = subprocess.run([mypy, "--strict", "runqlat.py", "execsnoop.py"], cwd=tools,
                            env=env_for(tools), capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
