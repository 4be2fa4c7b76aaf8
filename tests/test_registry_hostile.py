"""Installed BPF libraries are data, never code, and their manifests stay inside the package.

Whoever runs ``pybpf gen object --lib NAME`` or builds an application trusts the library's
*objects*; they did not agree to run its Python.  So finding a library must import nothing
(not the package, not a parent of a dotted package, not a zipped package), and no path in
its manifest may reach outside the package, lexically or through a symbolic link.  Every
package here has an ``__init__.py`` that leaves a canary file and raises if it ever runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import compile_bpf
from pybpf.cli import main
from pybpf.obj import ObjectSpec
from pybpf.registry import LibraryError, find_library, libraries, library_objects
from test_packaging_registry import DEMO_LIBRARY, install, site  # noqa: F401 - the site fixture


def booby_trap(canary: Path) -> str:
    """An ``__init__.py`` that proves it ran: it writes ``canary`` and fails the import."""
    return (f"import pathlib\npathlib.Path({str(canary)!r}).write_text('imported')\n"
            "raise RuntimeError('a BPF library package was imported')\n")


def entry(name: str, **fields: object) -> dict[str, object]:
    library = {"objects": [f"bpf/{name}.bpf.o"], "headers": [], "requires": []}
    library.update(fields)
    return {"format": 1, "libraries": {name: library}}


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return tmp_path / "canary"


# --------------------------------------------------------------------------- nothing is imported


@pytest.mark.parametrize(
    ("package_name", "trapped_parents"),
    [
        ("acme_bpf.parts.deeplib", ["acme_bpf", "acme_bpf/parts"]),
        ("nsacme.nslib", []),  # nsacme has no __init__: a namespace package
    ],
)
def test_a_dotted_library_is_found_without_importing_it_or_its_parents(
    site: Path, canary: Path, package_name: str, trapped_parents: list[str]  # noqa: F811
) -> None:
    name = package_name.rsplit(".", 1)[1]
    package = install(site, name, "1.0", package_name=package_name)
    for directory in [package, *(site / p for p in trapped_parents)]:
        (directory / "__init__.py").write_text(booby_trap(canary))
    info = find_library(name)
    assert info.package == package_name
    assert info.objects == (package / "bpf" / f"{name}.bpf.o",)
    assert name in [lib.name for lib in libraries()]
    assert not canary.exists()
    assert package_name.split(".")[0] not in sys.modules


def test_an_entry_point_naming_an_attribute_still_imports_nothing(
    site: Path, canary: Path  # noqa: F811
) -> None:
    package = install(site, "attrlib", "1.0", entry_point="attrlib_pkg.inner:factory",
                      package_name="attrlib_pkg.inner")
    (package.parent / "__init__.py").write_text(booby_trap(canary))
    (package / "__init__.py").write_text(booby_trap(canary))
    assert [p.name for p in find_library("attrlib").objects] == ["attrlib.bpf.o"]
    assert not canary.exists()


def test_a_zipped_library_is_read_from_the_archive_without_importing_it(
    site: Path, canary: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    install(site, "ziplib", "2.0", package_name="ziplib_pkg")
    archive = site / "ziplib.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ziplib_pkg/__init__.py", booby_trap(canary))
        z.writestr("ziplib_pkg/pybpf-library.json", json.dumps(entry("ziplib")))
        z.writestr("ziplib_pkg/bpf/ziplib.bpf.o", DEMO_LIBRARY.read_bytes())
    unpacked = site / "ziplib_pkg"
    for path in sorted(unpacked.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    unpacked.rmdir()
    monkeypatch.syspath_prepend(str(archive))
    info = find_library("ziplib")
    assert info.objects[0].read_bytes() == DEMO_LIBRARY.read_bytes()
    assert not canary.exists()


def test_gen_object_lib_links_a_library_without_running_its_python(
    site: Path, canary: Path, tmp_path: Path  # noqa: F811
) -> None:
    package = install(site, "clilib", "1.0", package_name="cli_vendor.clilib")
    (package / "__init__.py").write_text(booby_trap(canary))
    (site / "cli_vendor" / "__init__.py").write_text(booby_trap(canary))
    out = tmp_path / "linked.bpf.o"
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-m", "pybpf.cli", "gen", "object", str(out),
         str(compile_bpf("skel_minimal")), "--lib", "clilib"],
        capture_output=True, text=True, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert not canary.exists()
    library_programs = {p.name for p in ObjectSpec.from_path(DEMO_LIBRARY).programs}
    assert library_programs <= {p.name for p in ObjectSpec.from_path(out).programs}


def test_gen_object_lib_refuses_a_leaky_manifest_in_one_line(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    install(site, "clileak", "1.0", manifest=entry("clileak", objects=["../../etc/passwd"]))
    out = tmp_path / "never.bpf.o"
    status = main(["gen", "object", str(out), str(compile_bpf("skel_minimal")),
                   "--lib", "clileak"])
    err = capsys.readouterr().err
    assert status == 1 and not out.exists()
    assert err.startswith("Error: BPF library 'clileak'") and err.count("\n") == 1
    assert "object path '../../etc/passwd' leaves the package" in err


# --------------------------------------------------------------------------- paths stay inside


@pytest.mark.parametrize(
    "rel",
    ["../outside.bpf.o", "bpf/../../outside.bpf.o", "ABSOLUTE", "./bpf/x.bpf.o",
     "bpf//x.bpf.o", "bpf\\..\\..\\outside.bpf.o", ""],
)
@pytest.mark.parametrize("field", ["objects", "headers"])
def test_manifest_paths_that_leave_the_package_are_refused(
    site: Path, rel: str, field: str  # noqa: F811
) -> None:
    outside = site / "outside.bpf.o"
    outside.write_bytes(DEMO_LIBRARY.read_bytes())
    rel = str(outside) if rel == "ABSOLUTE" else rel
    manifest = entry("leaky", **{field: [rel]})
    install(site, "leaky", "1.0", manifest=manifest)
    with pytest.raises(LibraryError) as info:
        find_library("leaky")
    message = str(info.value)
    assert "leaky_pkg/pybpf-library.json" in message
    assert repr(rel) in message or f"'{rel}' leaves the package" in message


@pytest.mark.parametrize("link", ["bpf/leaky2.bpf.o", "bpf", "pybpf-library.json"])
def test_symbolic_links_out_of_the_package_are_refused(site: Path, link: str) -> None:  # noqa: F811
    package = install(site, "leaky2", "1.0")
    elsewhere = site / "elsewhere"
    (elsewhere / "bpf").mkdir(parents=True)
    for path in (package / "bpf").iterdir():
        (elsewhere / "bpf" / path.name).write_bytes(path.read_bytes())
    (elsewhere / "pybpf-library.json").write_bytes((package / "pybpf-library.json").read_bytes())
    (elsewhere / "leaky2.bpf.o").write_bytes(DEMO_LIBRARY.read_bytes())
    target = package / link
    if target.is_dir():
        for path in target.iterdir():
            path.unlink()
        target.rmdir()
    else:
        target.unlink()
    target.symlink_to(elsewhere / link)
    with pytest.raises(LibraryError, match=r"leaky2_pkg.*leaves the package \(it resolves to "):
        find_library("leaky2")


def test_symbolic_links_inside_the_package_are_fine(site: Path) -> None:  # noqa: F811
    package = install(site, "linky", "1.0", manifest=entry("linky", objects=["alias.bpf.o"]))
    (package / "alias.bpf.o").symlink_to(package / "bpf" / "linky.bpf.o")
    assert library_objects(["linky"]) == [package / "alias.bpf.o"]


# --------------------------------------------------------------------------- malformed metadata


@pytest.mark.parametrize(
    ("manifest", "needle"),
    [
        ([1, 2], "manifest format [1, 2] is not 1"),
        ({"format": 1, "libraries": ["badman"]}, "does not describe it"),
        (entry("badman", objects="bpf/badman.bpf.o"), "'objects' must be a list of strings"),
        (entry("badman", objects=[7]), "'objects' must be a list of strings"),
        (entry("badman", requires=[3]), "'requires' must be a list of strings"),
        (entry("badman", headers={"a": 1}), "'headers' must be a list of strings"),
    ],
)
def test_malformed_manifests_are_library_errors(
    site: Path, manifest: object, needle: str  # noqa: F811
) -> None:
    install(site, "badman", "1.0", manifest=manifest)
    with pytest.raises(LibraryError) as info:
        find_library("badman")
    assert "badman_pkg/pybpf-library.json" in str(info.value)
    assert needle in str(info.value)


@pytest.mark.parametrize("value", ["not a package!", "../evil", "evil-pkg", "a..b"])
def test_an_entry_point_that_names_no_package_is_refused(site: Path, value: str) -> None:  # noqa: F811
    install(site, "oddep", "1.0", entry_point=value)
    with pytest.raises(LibraryError, match=r"entry point '.*' does not name a package"):
        find_library("oddep")


def test_an_entry_point_naming_a_missing_package_says_so(site: Path) -> None:  # noqa: F811
    install(site, "ghost", "1.0", entry_point="ghost_vendor.nothing_here")
    with pytest.raises(LibraryError, match=r"its package 'ghost_vendor.nothing_here' is not "
                                           r"installed"):
        find_library("ghost")


@pytest.mark.parametrize("text", ["[" * 100_000, "{\"format\": 1,", "\xff\xfe"])
def test_an_unreadable_manifest_is_a_library_error(site: Path, text: str) -> None:  # noqa: F811
    package = install(site, "unreadable", "1.0")
    (package / "pybpf-library.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(LibraryError, match=r"unreadable_pkg/pybpf-library.json: cannot read"):
        find_library("unreadable")
