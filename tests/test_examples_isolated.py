"""The example packages built in *isolated* environments, as ``pip install`` of an sdist does.

``--no-isolation`` (tests/test_packaging_wheels.py) reuses the build tools already installed;
an isolated ``python -m build`` instead resolves ``build-system.requires`` by distribution name
in a fresh environment.  With a name taken on PyPI (``flowlib`` is a 2014 git-flow tool) that
build would install the stranger and fail, so this runs the README's isolated block as written:
pybpf and the library come from local wheels through ``PIP_FIND_LINKS`` (as a private index
would serve them), hatchling from the package index.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import requires_root
from test_packaging_wheels import clean_env, run, venv

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
pytestmark = pytest.mark.slow


def isolated_block() -> str:
    """The README's ```bash block of "Ship a BPF library on PyPI" (the isolated builds)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Ship a BPF library on PyPI\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "no section '## Ship a BPF library on PyPI' in README.md"
    blocks = re.findall(r"^```bash\n(.*?)^```$", section.group(1), re.M | re.S)
    assert len(blocks) == 1, "the section should hold one ```bash block: the isolated builds"
    return blocks[0]


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Run the block in a fresh environment holding only ``build``; returns (python, wheels)."""
    if shutil.which("clang-16") is None:
        pytest.skip("building the example wheels needs clang-16")
    base = tmp_path_factory.mktemp("isolated")
    shutil.copytree(EXAMPLES, base / "examples", ignore=shutil.ignore_patterns("dist"))
    wheels = base / "wheels"
    # pybpf's own wheel, as its repository would publish it (built from this tree).
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "-w", wheels, ROOT, env=clean_env())
    python = venv(base / "env")
    fetch = subprocess.run([python, "-m", "pip", "install", "-q", "build"],
                           capture_output=True, text=True, check=False)
    if fetch.returncode != 0:
        pytest.skip(f"cannot install 'build' from the package index: {fetch.stderr[-300:]}")
    env = clean_env(PATH=f"{python.parent}:{os.environ.get('PATH', '')}",
                    VIRTUAL_ENV=str(python.parent.parent))
    run("bash", "-c", "set -euo pipefail\n" + isolated_block(), env=env, cwd=base)
    return python, wheels


def test_isolated_builds_use_the_local_wheels(isolated: tuple[Path, Path]) -> None:
    python, wheels = isolated
    names = sorted(p.name for p in wheels.glob("*.whl"))
    assert names == [
        "pybpf-0.1.0-py3-none-any.whl",
        "pybpf_example_flowapp-0.1.0-py3-none-any.whl",
        "pybpf_example_flowlib-0.1.0-py3-none-any.whl",
    ]
    with zipfile.ZipFile(wheels / names[1]) as z:
        meta = z.read("pybpf_example_flowapp-0.1.0.dist-info/METADATA").decode()
        # The application's object holds flowlib's programs: the build linked the local library.
        assert b"flowlib_sys_enter" in z.read("pybpf_example_flowapp/bpf/flowapp.bpf.o")
    assert "Requires-Dist: pybpf-example-flowlib<1,>=0.1" in meta
    installed = run(python, "-m", "pip", "list", "--format", "json")
    dists = {d["name"].lower(): d["version"] for d in json.loads(installed)}
    assert dists.get("pybpf-example-flowlib") == "0.1.0"
    assert "flowlib" not in dists  # the unrelated PyPI project never came in


@requires_root
def test_isolated_application_runs(isolated: tuple[Path, Path], tmp_path: Path) -> None:
    python, _ = isolated
    result = json.loads(run(python.parent / "flowapp", "300", env=clean_env(), cwd=tmp_path))
    assert result["calls"] == result["watched"] == result["library_events"] == 300
