"""The README's walkthrough, run as written: every ```sh block under its heading, in order.

They run in one bash (so ``cd`` carries over) in an empty directory, as on a fresh machine:
the test environment's directory is taken off PATH, so ``pybpf``, ``mypy`` and everything else
the walkthrough uses must be installed by the walkthrough itself.  pybpf is served to its
``pip install`` as a local wheel built from this tree (``PIP_FIND_LINKS``, as a private index
would serve it); mypy comes from the package index.
"""

from __future__ import annotations

import os
import re
import shutil
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
    steps = ("pip install pybpf mypy", "pybpf gen subskeleton", "pybpf gen object",
             "pybpf gen skeleton", "python3")
    for step in steps:
        assert step in commands


@requires_root
def test_walkthrough_runs_as_written(tmp_path: Path) -> None:
    if subprocess.run(["which", "clang-16"], capture_output=True, check=False).returncode:
        pytest.skip("the walkthrough compiles with clang-16")
    bindir = str(Path(sys.executable).parent)
    path = ":".join(p for p in os.environ.get("PATH", "").split(":") if p and p != bindir)
    for tool in ("mypy", "pybpf"):
        if shutil.which(tool, path=path):
            pytest.skip(f"{tool} is installed outside the test environment ({path}): "
                        "the walkthrough's own installs cannot be checked here")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(ROOT)], check=True, capture_output=True,
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PATH=path, PIP_FIND_LINKS=str(wheels))
    out = run_script(sh_blocks(WALKTHROUGH), work, env)
    match = re.search(r"mylib counted (\d+) syscalls; the app saw (\d+) exits", out)
    assert match, out
    assert int(match.group(1)) >= 100  # the 100 getppid() calls, at least
    assert int(match.group(2)) >= 100  # the application's program counts every exit
    assert "Success: no issues found in 2 source files" in out
    assert "app_count_exits" in out and "mylib_count" in out  # object show
    assert (work / "app.skel.h").read_text().startswith("/* SPDX-License-Identifier")
    assert "struct mylib {" in (work / "mylib.subskel.h").read_text()
