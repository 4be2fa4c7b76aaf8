"""The ``pybpf`` command line: bpftool-shaped commands, bpftool-identical output, clean errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import bpftool, compile_bpf

PYBPF = [sys.executable, "-m", "pybpf.cli"]
VMLINUX = Path("/sys/kernel/btf/vmlinux")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PYBPF, *map(str, args)], capture_output=True, text=True)


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "pybpf"
    assert exe.exists()
    result = subprocess.run([exe, "version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("pybpf ")


def test_btf_dump_raw_matches_bpftool_for_an_object() -> None:
    obj = compile_bpf("elf_basic")
    result = run("btf", "dump", "file", obj)
    assert result.returncode == 0, result.stderr
    assert result.stdout == bpftool("btf", "dump", "file", obj)


@pytest.mark.skipif(not VMLINUX.exists(), reason="kernel has no BTF (CONFIG_DEBUG_INFO_BTF)")
def test_btf_dump_raw_matches_bpftool_for_vmlinux_via_cli() -> None:
    result = run("btf", "dump", "file", VMLINUX, "format", "raw")
    assert result.returncode == 0, result.stderr
    assert result.stdout == bpftool("btf", "dump", "file", VMLINUX)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("btf", "dump", "file", "/nonexistent.o"), "cannot read"),
        (("btf", "dump", "file", "/etc/hostname"), "bad magic"),
        (("btf", "dump", "file", "X", "format", "yaml"), "unknown format"),
        (("frobnicate",), "unknown object"),
        (("gen", "skeleton"), "expected"),
    ],
)
def test_errors_are_one_clear_line_and_non_zero(args: tuple[str, ...], needle: str) -> None:
    if "X" in args:
        args = tuple(str(compile_bpf("elf_basic")) if a == "X" else a for a in args)
    result = run(*args)
    assert result.returncode != 0
    first = result.stderr.splitlines()[0]
    assert first.startswith("Error: ") and needle in first, result.stderr
    assert "Traceback" not in result.stderr


def test_object_without_btf_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "nobtf.bpf.c"
    src.write_text('int x __attribute__((section(".data"))) = 1;\n')
    obj = tmp_path / "nobtf.bpf.o"
    clang = os.environ.get("CLANG", "clang-16")
    subprocess.run([clang, "-O2", "-target", "bpf", "-c", src, "-o", obj], check=True)
    result = run("btf", "dump", "file", obj)
    assert result.returncode != 0
    assert "no .BTF section" in result.stderr


def test_gen_errors_are_one_clear_line(tmp_path: Path) -> None:
    """gen skeleton/subskeleton/object: unreadable file, invalid name, no BTF, link conflict."""
    obj = compile_bpf("elf_basic")
    nobtf_src = tmp_path / "nobtf.bpf.c"
    nobtf_src.write_text(
        'int counter __attribute__((section(".data"))) = 1;\n'
        'char LICENSE[] __attribute__((section("license"))) = "GPL";\n'
    )
    nobtf = tmp_path / "nobtf.bpf.o"
    subprocess.run(
        [
            os.environ.get("CLANG", "clang-16"),
            "-O2",
            "-target",
            "bpf",
            "-c",
            nobtf_src,
            "-o",
            nobtf,
        ],
        check=True,
    )
    cases = [
        (("gen", "skeleton", tmp_path / "missing.o"), "missing.o"),
        (("gen", "skeleton", obj, "name", "1abc"), "invalid object name '1abc'"),
        (("gen", "subskeleton", nobtf), "BTF"),
        (("gen", "skeleton", nobtf), "BTF"),
        (("gen", "object", tmp_path / "out.o", obj, obj), "elf_basic"),
    ]
    for args, needle in cases:
        result = run(*args)
        assert result.returncode == 1, (args, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, result.stderr)
        assert needle in lines[0], (args, lines[0])
    assert not (tmp_path / "out.o").exists()


def test_btf_dump_format_c_matches_bpftool_for_an_object() -> None:
    obj = compile_bpf("btfkinds")
    result = run("btf", "dump", "file", obj, "format", "c")
    assert result.returncode == 0, result.stderr
    assert result.stdout == bpftool("btf", "dump", "file", obj, "format", "c")


def test_object_show_json_lists_maps_programs_and_variables() -> None:
    """Everything tests/fixtures/elf_basic.bpf.c defines, as the source declares it."""
    import json

    result = run("object", "show", compile_bpf("elf_basic"), "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert {m["name"]: m["section"] for m in shown["maps"]}["counts"] == ".maps"
    assert {p["name"] for p in shown["programs"]} == {"on_getpid", "on_sys_enter"}
    variables = {
        (section, v["name"]): (v["size"], v["linkage"], v["weak"])
        for section, entries in shown["variables"].items()
        for v in entries
    }
    assert variables == {
        (".data", "g"): (4, "global", False),
        (".data", "weak_default"): (4, "global", True),
        (".rodata", "ro"): (4, "global", False),
        (".data.custom", "custom_data"): (4, "global", False),
        (".bss", "zeroed"): (4, "global", False),
        (".bss", "hidden_counter"): (4, "static", False),
    }
