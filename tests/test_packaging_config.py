"""``[tool.pybpf]``, the build's configuration, and the errors a package author sees."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from pybpf.packaging import BuildConfig, BuildError, build_bpf

CLANG = shutil.which("clang-16")


def project(tmp_path: Path, pyproject: str, files: dict[str, str] | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    for name, text in (files or {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


LIB = """
    [tool.pybpf]
    package = "mylib"
    include-dirs = ["bpf"]

    [tool.pybpf.libraries.mylib]
    sources = ["bpf/mylib.bpf.c"]
"""


def test_defaults_and_names(tmp_path: Path) -> None:
    cfg = BuildConfig.from_pyproject(project(tmp_path, LIB))
    (lib,) = cfg.libraries
    assert (lib.name, lib.module, lib.sources) == ("mylib", "mylib_subskel", ("bpf/mylib.bpf.c",))
    assert cfg.apps == ()
    assert cfg.package_path == "mylib"
    assert cfg.endian_target == "bpfel"
    assert cfg.include_dirs == ("bpf",)


def test_hook_table_overrides_tool_pybpf(tmp_path: Path) -> None:
    cfg = BuildConfig.from_pyproject(project(tmp_path, LIB), {"path": "x.py", "package": "other"})
    assert cfg.package == "other"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "'package' must name the import package"),
        ({"package": "p"}, "nothing to build"),
        ({"package": "p", "colour": 1}, "unknown key(s) colour"),
        ({"package": "p", "apps": {"a": {"sources": []}}}, "'sources' lists no .bpf.c file"),
        ({"package": "p", "apps": {"a-b": {"sources": ["x.c"]}}}, "must be a C identifier"),
        ({"package": "p", "libraries": {"l": {"sources": ["x.c"], "link": []}}},
         "unknown key(s) link"),
        ({"package": "p", "apps": {"a": {"sources": ["x.c"], "libraries": "flowlib"}}},
         "'libraries' must be a list of strings"),
        ({"package": "p", "apps": {"a": {"sources": ["x.c"], "module": "m"},
                                   "b": {"sources": ["y.c"], "module": "m"}}},
         "module m used twice"),
    ],
)
def test_configuration_mistakes_are_named(table: dict[str, object], message: str) -> None:
    with pytest.raises(BuildError) as info:
        BuildConfig.from_table(table)
    assert message in str(info.value)


def test_missing_clang_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, LIB, {"bpf/mylib.bpf.c": "int x;\n"})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("PYBPF_CLANG", raising=False)
    with pytest.raises(BuildError) as info:
        build_bpf(root, tmp_path / "scratch")
    assert "apt-get install clang-16" in str(info.value)


def test_named_clang_that_does_not_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, LIB, {"bpf/mylib.bpf.c": "int x;\n"})
    monkeypatch.setenv("PYBPF_CLANG", "clang-does-not-exist")
    with pytest.raises(BuildError, match="clang 'clang-does-not-exist' was not found"):
        build_bpf(root, tmp_path / "scratch")


@pytest.mark.skipif(CLANG is None, reason="needs clang-16")
def test_compile_error_shows_clangs_message_and_the_file(tmp_path: Path) -> None:
    root = project(tmp_path, LIB, {"bpf/mylib.bpf.c": "int broken(void) { return nope; }\n"})
    with pytest.raises(BuildError) as info:
        build_bpf(root, tmp_path / "scratch")
    text = str(info.value)
    assert "compiling BPF source bpf/mylib.bpf.c failed" in text
    assert "use of undeclared identifier 'nope'" in text


@pytest.mark.skipif(CLANG is None, reason="needs clang-16")
def test_missing_source_is_named(tmp_path: Path) -> None:
    root = project(tmp_path, LIB)
    with pytest.raises(BuildError, match=r"BPF source bpf/mylib\.bpf\.c does not exist"):
        build_bpf(root, tmp_path / "scratch")


@pytest.mark.skipif(CLANG is None, reason="needs clang-16")
def test_app_needing_an_uninstalled_library(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        [tool.pybpf]
        package = "myapp"
        [tool.pybpf.apps.myapp]
        sources = ["bpf/myapp.bpf.c"]
        libraries = ["no_such_bpf_library>=1"]
        """,
        {"bpf/myapp.bpf.c": "int x;\n"},
    )
    with pytest.raises(BuildError) as info:
        build_bpf(root, tmp_path / "scratch")
    assert "BPF library 'no_such_bpf_library' is not installed" in str(info.value)


@pytest.mark.skipif(CLANG is None, reason="needs clang-16")
def test_library_and_app_in_one_project_are_reproducible(tmp_path: Path) -> None:
    """Same sources in two places, same bytes: no absolute path or time in any output."""
    sources = {
        "bpf/lib.h": "extern int shared_counter;\n",
        "bpf/mylib.bpf.c": """
            #include <linux/bpf.h>
            #include <bpf/bpf_helpers.h>
            #include "lib.h"
            int shared_counter;
            const volatile int lib_setting = 3;
            SEC("raw_tp/sys_enter")
            int lib_prog(void *ctx) { shared_counter += lib_setting; return 0; }
            char LICENSE[] SEC("license") = "GPL";
        """,
        "bpf/myapp.bpf.c": """
            #include <linux/bpf.h>
            #include <bpf/bpf_helpers.h>
            #include "lib.h"
            int app_value = 7;
            SEC("raw_tp/sys_exit")
            int app_prog(void *ctx) { shared_counter += app_value; return 0; }
        """,
    }
    pyproject = """
        [tool.pybpf]
        package = "both"
        include-dirs = ["bpf"]
        [tool.pybpf.libraries.mylib]
        sources = ["bpf/mylib.bpf.c"]
        headers = ["bpf/lib.h"]
        [tool.pybpf.apps.myapp]
        sources = ["bpf/myapp.bpf.c"]
        libraries = ["mylib"]
    """
    outputs = []
    for where in ("one", "two/deeper"):
        root = project(tmp_path / where, pyproject, sources)
        built = build_bpf(root, tmp_path / where / "scratch")
        outputs.append({k: v.read_bytes() for k, v in built.files.items()})
    assert outputs[0] == outputs[1]
    assert sorted(outputs[0]) == [
        "both/bpf/lib.h",
        "both/bpf/myapp.bpf.o",
        "both/bpf/mylib.bpf.o",
        "both/myapp_skel.py",
        "both/mylib_subskel.py",
        "both/pybpf-library.json",
    ]
    for data in outputs[0].values():
        assert os.fsencode(str(tmp_path)) not in data
