"""The README's walkthrough, run as written: every ```sh block under its heading, in order.

They run in one bash (so ``cd`` carries over) in an empty directory,
with this environment's ``pybpf``, ``python3`` and ``mypy`` first on PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_root

ROOT = Path(__file__).resolve().parent.parent
WALKTHROUGH = "Five-minute walkthrough"


def sh_blocks(heading: str) -> list[str]:
    """The ```sh blocks of section ``## heading`` of README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section '## {heading}' in README.md"
    blocks = re.findall(r"^```sh\n(.*?)^```$", match.group(1), re.M | re.S)
    assert blocks, f"section '{heading}' of README.md has no ```sh block"
    return blocks


def run_script(blocks: list[str], cwd: Path, env: dict[str, str]) -> str:
    script = "set -euo pipefail\n" + "\n".join(blocks)
    result = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, check=False,
        timeout=240,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def test_walkthrough_is_there() -> None:
    commands = "\n".join(sh_blocks(WALKTHROUGH))
    for step in ("pybpf gen subskeleton", "pybpf gen object", "pybpf gen skeleton", "python3"):
        assert step in commands


@requires_root
def test_walkthrough_runs_as_written(tmp_path: Path) -> None:
    if subprocess.run(["which", "clang-16"], capture_output=True, check=False).returncode:
        pytest.skip("the walkthrough compiles with clang-16")
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}"}
    out = run_script(sh_blocks(WALKTHROUGH), tmp_path, env)
    match = re.search(r"mylib counted (\d+) syscalls; the app saw (\d+) exits", out)
    assert match, out
    assert int(match.group(1)) >= 100  # the 100 getppid() calls, at least
    assert int(match.group(2)) >= 100  # the application's program counts every exit
    assert "Success: no issues found in 2 source files" in out
    assert "app_count_exits" in out and "mylib_count" in out  # object show
    assert (tmp_path / "app.skel.h").read_text().startswith("/* SPDX-License-Identifier")
    assert "struct mylib {" in (tmp_path / "mylib.subskel.h").read_text()
