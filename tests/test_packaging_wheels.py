"""BPF libraries as Python packages, end to end: build wheels, install them elsewhere, run.

``examples/flowlib`` (a BPF library with its companion) and ``examples/flowapp`` (an
application linking it) are built with ``python -m build --no-isolation`` in a clean virtual
environment holding only the build tools and pybpf (itself built from this tree), twice and
in two places (the wheels must be byte-identical), then installed into another clean
environment with no clang on PATH, where the application runs against the kernel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import requires_root

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EPOCH = "1700000000"
LIB = "pybpf_example_flowlib"
"""The example library's import package (and wheel name); its BPF library is ``flowlib``."""
APP = "pybpf_example_flowapp"
pytestmark = pytest.mark.slow


def run(*cmd: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd, check=False
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYBPF_CLANG", "VIRTUAL_ENV")}
    env["SOURCE_DATE_EPOCH"] = EPOCH
    env.update(extra)
    return env


def venv(path: Path) -> Path:
    run(sys.executable, "-m", "venv", path)
    return path / "bin" / "python"


@dataclass
class Built:
    house: Path
    """pybpf's wheel and the build tools' wheels."""
    dist: Path
    """flowlib's and flowapp's wheels."""
    again: Path
    """The same wheels, built a second time from copies of the sources elsewhere."""
    base: Path


def _build_examples(python: Path, house: Path, sources: Path, out: Path) -> None:
    env = clean_env()
    pip = [python, "-m", "pip", "install", "-q", "--no-index", "-f", house, "-f", out]
    run(python, "-m", "build", "-q", "--no-isolation", "--wheel", "-o", out,
        sources / "flowlib", env=env)
    run(*pip, "--force-reinstall", "--no-deps", *out.glob(f"{LIB}-*.whl"), env=env)
    run(python, "-m", "build", "-q", "--no-isolation", "--wheel", "-o", out,
        sources / "flowapp", env=env)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    if shutil.which("clang-16") is None:
        pytest.skip("building the example wheels needs clang-16")
    base = tmp_path_factory.mktemp("wheels")
    house = base / "wheelhouse"
    # The build tools come from the package index once; every install after that is offline.
    fetch = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "-d", str(house), "hatchling>=1.18",
         "build", "editables"], capture_output=True, text=True, check=False,
    )
    if fetch.returncode != 0:
        pytest.skip(f"cannot fetch hatchling and build: {fetch.stderr.strip()[-300:]}")
    python = venv(base / "buildenv")
    run(python, "-m", "pip", "install", "-q", "--no-index", "-f", house, "hatchling", "build")
    run(python, "-m", "build", "-q", "--no-isolation", "--wheel", "-o", house, ROOT,
        env=clean_env())
    run(python, "-m", "pip", "install", "-q", "--no-index", "-f", house, "pybpf")
    dist, again = base / "dist", base / "again"
    _build_examples(python, house, EXAMPLES, dist)
    elsewhere = base / "elsewhere" / "src"
    for name in ("flowlib", "flowapp"):
        shutil.copytree(EXAMPLES / name, elsewhere / name)
    _build_examples(python, house, elsewhere, again)
    return Built(house, dist, again, base)


@pytest.fixture(scope="module")
def runenv(built: Built) -> Path:
    """A clean environment with the three wheels installed, and no compiler anywhere."""
    python = venv(built.base / "runenv")
    run(python, "-m", "pip", "install", "-q", "--no-index", "-f", built.house, "-f", built.dist,
        "pybpf-example-flowapp")
    return python


def wheel(directory: Path, name: str) -> Path:
    (found,) = directory.glob(f"{name}-*.whl")
    return found


def test_wheels_are_pure_python_with_objects_as_package_data(built: Built) -> None:
    lib, app = wheel(built.dist, LIB), wheel(built.dist, APP)
    assert lib.name == f"{LIB}-0.1.0-py3-none-any.whl"
    assert app.name == f"{APP}-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(lib) as z:
        names = set(z.namelist())
        assert {
            f"{LIB}/bpf/flowlib.bpf.o",
            f"{LIB}/bpf/flowlib.h",
            f"{LIB}/flowlib_subskel.py",
            f"{LIB}/companion.py",
            f"{LIB}/pybpf-library.json",
            f"{LIB}/py.typed",
        } <= names
        assert "Root-Is-Purelib: true" in z.read(f"{LIB}-0.1.0.dist-info/WHEEL").decode()
        entry_points = z.read(f"{LIB}-0.1.0.dist-info/entry_points.txt").decode()
        assert f"[pybpf.libraries]\nflowlib = {LIB}" in entry_points
        manifest = json.loads(z.read(f"{LIB}/pybpf-library.json"))
        assert manifest["libraries"]["flowlib"]["objects"] == ["bpf/flowlib.bpf.o"]
    with zipfile.ZipFile(app) as z:
        assert {f"{APP}/bpf/flowapp.bpf.o", f"{APP}/flowapp_skel.py"} <= set(z.namelist())


def test_rebuilds_are_byte_identical(built: Built) -> None:
    for name in (LIB, APP):
        first, second = wheel(built.dist, name), wheel(built.again, name)
        with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
            assert a.namelist() == b.namelist()
            for member in a.namelist():
                assert a.read(member) == b.read(member), member
        assert first.read_bytes() == second.read_bytes()


def test_installed_library_is_discovered_by_entry_point(runenv: Path) -> None:
    out = run(runenv, "-c", (
        "import pybpf.registry as r\n"
        "print([(i.name, i.version, [p.name for p in i.objects]) for i in r.libraries()])\n"
        "try:\n    r.find_library('flowlib>=2')\nexcept r.LibraryVersionError as e:\n"
        "    print('refused:', e)\n"
    ))
    assert "[('flowlib', '0.1.0', ['flowlib.bpf.o'])]" in out
    refused = (
        "refused: BPF library 'flowlib' 0.1.0 (from pybpf-example-flowlib) "
        "does not satisfy 'flowlib>=2'"
    )
    assert refused in out


@requires_root
def test_application_runs_from_wheels_without_clang(runenv: Path, tmp_path: Path) -> None:
    env = clean_env(PATH=str(runenv.parent))
    assert shutil.which("clang-16", path=env["PATH"]) is None
    assert shutil.which("clang", path=env["PATH"]) is None
    result = json.loads(run(runenv.parent / "flowapp", "1000", env=env, cwd=tmp_path))
    getppid = {"x86_64": "110", "aarch64": "173"}[os.uname().machine]
    # The companion set pid, syscall and unit before load; the histogram was read after.
    assert result["calls"] == 1000
    assert result["watched"] == 1000  # the application's own counter
    assert result["library_events"] == 1000
    assert result["library_syscalls"] == {getppid: 1000}
    assert sum(result["buckets"]) == 1000
    assert result["unit_shift"] == 8
    assert result["name"] == "flowapp"


def test_application_code_passes_mypy_strict(runenv: Path) -> None:
    mypy = Path(sys.executable).parent / "mypy"
    out = run(mypy, "--strict", "--no-incremental", "--python-executable", runenv,
              "-p", APP, "-p", LIB, cwd=runenv.parent)
    assert "Success: no issues found" in out


def test_gen_object_links_an_installed_library_by_name(runenv: Path, tmp_path: Path) -> None:
    """``pybpf gen object OUT app.bpf.o --lib flowlib``: the object comes from the wheel."""
    include = run(runenv, "-c", (
        "from pybpf.registry import find_library\n"
        "print(find_library('flowlib').include_dirs[0])"
    )).strip()
    app = tmp_path / "flowapp.bpf.o"
    run("clang-16", "-g", "-O2", "-target", "bpf", f"-I{include}",
        "-I/usr/include/x86_64-linux-gnu", "-c", EXAMPLES / "flowapp/bpf/flowapp.bpf.c",
        "-o", app)
    env = clean_env(PATH=str(runenv.parent))
    out = tmp_path / "flowapp.linked.o"
    run(runenv.parent / "pybpf", "gen", "object", out, app, "--lib", "flowlib>=0.1", env=env)
    shown = run(runenv.parent / "pybpf", "object", "show", out, env=env)
    for program in ("flowapp_on_enter", "flowlib_sys_enter", "flowlib_sys_exit"):
        assert program in shown


@requires_root
def test_readme_ship_on_pypi_commands_run_as_written(built: Built, tmp_path: Path) -> None:
    """The README section's commands, in a fresh environment, offline (the wheelhouse only)."""
    from test_readme import run_script, sh_blocks

    python = venv(tmp_path / "env")
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=shutil.ignore_patterns("dist"))
    env = clean_env(
        PATH=f"{python.parent}:{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(python.parent.parent),
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(built.house),
    )
    out = run_script(sh_blocks("Ship a BPF library on PyPI"), tmp_path, env)
    assert "[('flowlib', '0.1.0')]" in out
    result = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    assert result["calls"] == result["watched"] == result["library_events"] == 1000
    linked = tmp_path / "examples" / "flowapp" / "flowapp.linked.o"
    shown = run(python.parent / "pybpf", "object", "show", linked, env=env)
    assert "flowlib_sys_exit" in shown


def test_hook_by_plugin_name_needs_no_hatch_build_py(built: Built, tmp_path: Path) -> None:
    """``[tool.hatch.build.hooks.pybpf]``: found through pybpf's ``hatch`` entry point."""
    python = built.base / "buildenv" / "bin" / "python"
    groups = run(python, "-c", (
        "from importlib.metadata import distribution as d\n"
        "print(sorted({e.group for e in d('pybpf').entry_points}))"
    ))
    assert "'hatch'" in groups, f"pybpf does not register its hatch plugin: {groups}"
    project = tmp_path / "flowlib"
    shutil.copytree(EXAMPLES / "flowlib", project, ignore=shutil.ignore_patterns("dist"))
    (project / "hatch_build.py").unlink()
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        "[tool.hatch.build.hooks.custom]", "[tool.hatch.build.hooks.pybpf]"
    ))
    run(python, "-m", "build", "-q", "--no-isolation", "--wheel", "-o", tmp_path / "out",
        project, env=clean_env())
    plugin_built = wheel(tmp_path / "out", LIB)
    with zipfile.ZipFile(plugin_built) as a, zipfile.ZipFile(wheel(built.dist, LIB)) as b:
        for member in (f"{LIB}/bpf/flowlib.bpf.o", f"{LIB}/flowlib_subskel.py"):
            assert a.read(member) == b.read(member)


def test_editable_install_generates_into_the_source_tree(built: Built, tmp_path: Path) -> None:
    """``pip install -e``: the package is imported from its sources, so the outputs go there."""
    python = venv(tmp_path / "env")
    run(python, "-m", "pip", "install", "-q", "--no-index", "-f", built.house, "hatchling",
        "editables", "pybpf")
    project = tmp_path / "flowlib"
    shutil.copytree(EXAMPLES / "flowlib", project, ignore=shutil.ignore_patterns("dist"))
    run(python, "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", "--no-deps",
        "-e", project, env=clean_env())
    out = run(python, "-c", (
        f"import {LIB}.flowlib_subskel as m, pybpf.registry as r\n"
        "print(m.__file__); print(r.find_library('flowlib').objects[0])"
    ), cwd=tmp_path)
    assert out.split() == [
        str(project / f"src/{LIB}/flowlib_subskel.py"),
        str(project / f"src/{LIB}/bpf/flowlib.bpf.o"),
    ]
