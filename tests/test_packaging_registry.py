"""Installed BPF libraries: discovery through the ``pybpf.libraries`` entry-point group.

The tests install fake distributions (a ``*.dist-info`` and a package with a manifest) on
``sys.path``, which is all :mod:`importlib.metadata` looks at.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pybpf.registry import (
    LibraryError,
    LibraryNotFoundError,
    LibraryVersionError,
    Requirement,
    find_library,
    libraries,
    library_objects,
    resolve_libraries,
)

DEMO_LIBRARY = Path(__file__).resolve().parent.parent / "src/pybpf/data/demo/flowlib.bpf.o"


def install(site: Path, name: str, version: str, *, requires: list[str] | None = None,
            manifest: object = None, package_name: str | None = None,
            entry_point: str | None = None) -> Path:
    """A fake wheel install of BPF library ``name`` into ``site``; returns the package dir.

    ``package_name`` (default ``NAME_pkg``) may be dotted: its parents are created as plain
    directories, for the caller to give them an ``__init__.py`` or leave them namespaces.
    """
    package_name = package_name or f"{name}_pkg"
    package = site.joinpath(*package_name.split("."))
    (package / "bpf").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "bpf" / f"{name}.bpf.o").write_bytes(DEMO_LIBRARY.read_bytes())
    (package / "bpf" / f"{name}.h").write_text("/* header */\n")
    entry = {"objects": [f"bpf/{name}.bpf.o"], "headers": [f"bpf/{name}.h"],
             "requires": requires or []}
    data = manifest if manifest is not None else {"format": 1, "libraries": {name: entry}}
    (package / "pybpf-library.json").write_text(json.dumps(data))
    info = site / f"{name}_dist-{version}.dist-info"
    info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: {name}-dist\nVersion: {version}\n"
    (info / "METADATA").write_text(metadata)
    value = entry_point or package_name
    (info / "entry_points.txt").write_text(f"[pybpf.libraries]\n{name} = {value}\n")
    return package


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_an_installed_library_is_found_with_its_objects_and_headers(site: Path) -> None:
    install(site, "netlib", "1.4.2")
    info = find_library("netlib")
    assert info.version == "1.4.2"
    assert info.distribution == "netlib-dist"
    assert [p.name for p in info.objects] == ["netlib.bpf.o"]
    assert info.objects[0].read_bytes() == DEMO_LIBRARY.read_bytes()
    assert [p.name for p in info.headers] == ["netlib.h"]
    assert info.include_dirs == (info.headers[0].parent,)
    assert "netlib" in [lib.name for lib in libraries()]


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ("netlib>=1.4", True),
        ("netlib>=1.4,<2", True),
        ("netlib==1.4.*", True),
        ("netlib~=1.3", True),
        ("netlib~=1.4.3", False),
        ("netlib>=2", False),
        ("netlib!=1.4.2", False),
        ("netlib<1.4.2", False),
        ("NetLib==1.4.2", True),
    ],
)
def test_version_requirements(site: Path, spec: str, ok: bool) -> None:
    install(site, "netlib", "1.4.2")
    if ok:
        assert find_library(spec).version == "1.4.2"
    else:
        with pytest.raises(LibraryVersionError) as info:
            find_library(spec)
        assert "netlib' 1.4.2 (from netlib-dist) does not satisfy" in str(info.value)


def test_a_missing_library_names_what_is_installed(site: Path) -> None:
    install(site, "netlib", "1.0")
    with pytest.raises(LibraryNotFoundError) as info:
        find_library("flowlibx")
    assert "BPF library 'flowlibx' is not installed" in str(info.value)
    assert "netlib" in str(info.value)


def test_libraries_a_library_needs_come_after_it(site: Path) -> None:
    install(site, "base", "1.0")
    install(site, "middle", "2.0", requires=["base>=1"])
    assert [i.name for i in resolve_libraries(["middle", "base"])] == ["middle", "base"]
    assert [p.name for p in library_objects(["middle"])] == ["middle.bpf.o", "base.bpf.o"]
    install(site, "picky", "1.0", requires=["base>=3"])
    with pytest.raises(LibraryVersionError):
        resolve_libraries(["base", "picky"])


def test_a_broken_manifest_is_reported(site: Path) -> None:
    install(site, "oldlib", "1.0", manifest={"format": 99})
    with pytest.raises(LibraryError, match="manifest format 99"):
        find_library("oldlib")


@pytest.mark.parametrize("text", ["", "flowlib >> 1", "flowlib>=one"])
def test_bad_requirements(text: str) -> None:
    with pytest.raises(LibraryError):
        Requirement.parse(text)


def test_finding_a_library_runs_none_of_its_python(site: Path) -> None:
    install(site, "quiet", "1.0")
    (site / "quiet_pkg" / "__init__.py").write_text("raise RuntimeError('imported!')\n")
    assert [p.name for p in find_library("quiet").objects] == ["quiet.bpf.o"]
