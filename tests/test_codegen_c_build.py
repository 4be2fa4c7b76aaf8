"""The generated C headers in use: compiled as C and C++, and driving real programs on libbpf.

The key acceptance test builds a BPF library from two files, links it into two applications
whose own globals shift the library's variables, and runs C drivers that use the pybpf-made
skeleton of each application plus the pybpf-made subskeleton of the library (configured
before load, read after).  Their output must equal the output of the same drivers built on
bpftool's headers, and the values computed here from the fixtures' source.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import FIXTURES, bpftool, have_bpf_syscall
from pybpf.skel.codegen import generate
from test_codegen_c import build_objects

GCC = shutil.which("gcc")
GXX = shutil.which("g++")
TRACEFS = Path("/sys/kernel/tracing")

pytestmark = [
    pytest.mark.oracle,
    pytest.mark.skipif(GCC is None or GXX is None, reason="gcc/g++ are not installed"),
    pytest.mark.skipif(
        not Path("/usr/include/bpf/libbpf.h").exists(), reason="libbpf-dev is not installed"
    ),
]

TYPES_HEADER = {"globals": "skel_globals.h", "lib": "skel_lib.h"}
"""bpftool's headers use the objects' named types without defining them: users include these."""

HEADERS = [
    ("globals", "skeleton", "g_skel"),
    ("globals", "subskeleton", "g_subskel"),
    ("strings", "skeleton", "s_skel"),
    ("strings", "subskeleton", "s_subskel"),
    ("minimal", "skeleton", "m_skel"),
    ("minimal", "subskeleton", "m_subskel"),
    ("maponly", "skeleton", "mo_skel"),
    ("maponly", "subskeleton", "mo_subskel"),
    ("lib", "subskeleton", "skel_lib"),
    ("final1", "skeleton", "skel_app1"),
    ("final2", "skeleton", "skel_app2"),
    ("weak", "skeleton", "skel_weak"),
]


@pytest.fixture(scope="module")
def objects() -> dict[str, Path]:
    return build_objects()


def run(cmd: list[str], timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr}")
    return result


@pytest.mark.parametrize(("obj", "kind", "name"), HEADERS, ids=lambda v: str(v))
def test_header_compiles_as_c_and_cxx(
    objects: dict[str, Path], tmp_path: Path, obj: str, kind: str, name: str
) -> None:
    header = tmp_path / f"{name}.gen.h"
    header.write_text(generate(kind, objects[obj], name=name))
    prelude = "".join(f'#include "{h}"\n' for key, h in TYPES_HEADER.items() if obj.startswith(key))
    if obj.startswith("final"):
        prelude = '#include "skel_lib.h"\n'
    source = f'{prelude}#include "{header.name}"\nint main(void) {{ return 0; }}\n'
    for compiler, suffix in ((GCC, "c"), (GXX, "cpp")):
        assert compiler is not None
        unit = tmp_path / f"unit.{suffix}"
        unit.write_text(source)
        run([compiler, "-Wall", "-Werror", f"-I{tmp_path}", f"-I{FIXTURES}", "-c", str(unit),
             "-o", str(tmp_path / f"unit_{suffix}.o")])  # fmt: skip


# ------------------------------------------------------------------------------ end to end


def mount_tracefs() -> None:
    if not (TRACEFS / "events").exists():
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], check=False)
    if not (TRACEFS / "events" / "syscalls").exists():
        pytest.skip("tracefs with syscall tracepoints is not available")


def kernel_config() -> dict[str, str]:
    """The running kernel's config, found where libbpf looks for it."""
    boot = Path(f"/boot/config-{os.uname().release}")
    if boot.exists():
        text = boot.read_text()
    elif Path("/proc/config.gz").exists():
        text = gzip.decompress(Path("/proc/config.gz").read_bytes()).decode()
    else:
        return {}
    config: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, value = line.split("=", 1)
            config[key] = value
    return config


def kernel_version_code() -> int:
    """LINUX_KERNEL_VERSION as libbpf computes it (Ubuntu's version_signature, else uname;
    the patch level is capped at 255)."""
    release = os.uname().release
    signature = Path("/proc/version_signature")
    if signature.exists():
        release = signature.read_text().split()[-1]
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", release)
    if match is None:
        return 0
    major, minor, patch = (int(g) for g in match.groups())
    return (major << 16) + (minor << 8) + min(patch, 255)


def expected_values(app: str) -> dict[str, str]:
    """What the drivers must print, worked out from the fixtures' source and the drivers'
    configuration (see skel_lib1/2.bpf.c, skel_app1/2.bpf.c, skel_libuser.c, skel_app1/2.c)."""
    config = kernel_config()
    hz = int(config.get("CONFIG_HZ", "0"))
    localversion = config.get("CONFIG_LOCALVERSION", '""').strip('"')[:15]
    lib_scale, mode, base, step = 3, ord("b"), 2000, 2
    lib_scale2, lib_shared, tag3 = 5, 42, ord("X")
    lib_custom, lib_custom_arr2 = 17, 80
    lib_weak = 99 if app == "app2" else 11

    def lib_compute(x: int) -> int:
        return x * lib_scale2 + lib_shared + tag3

    counter = 200 + 1
    result = (
        lib_scale * base + step * mode + lib_shared + lib_weak + lib_custom + lib_custom_arr2
        + lib_compute(counter)
    )  # fmt: skip
    values: dict[str, object] = {
        "app_view_lib_result": result,
        "app_view_lib_counter": counter,
        "app_view_lib_custom": lib_custom,
        "app_view_hz": hz,
        "lib_map2_1": result + 1,
        "lib_counter": counter,
        "lib_result": result,
        "lib_stats_hits": 5 + 3,
        "lib_stats_flags": 1,
        "lib_stats_sum": 500 + 33,
        "lib_hist_3": 4,
        "lib_weak": lib_weak,
        "lib_shared": lib_shared,
        "lib_calls": 2,
        "lib_tag": "libX",
        "lib_custom": lib_custom,
        "lib_custom_arr_0": 70,
        "lib_hook_null": 1,
        "lib_cb_null": 1,
        "lib_scale": lib_scale,
        "lib_cfg_base": base,
        "kconfig_version": kernel_version_code(),
        "kconfig_hz": hz,
        "kconfig_missing": 0,
        "kconfig_localversion": localversion,
        "seen_version": kernel_version_code(),
        "seen_hz": hz,
        "seen_missing": 0,
        "seen_localversion": localversion,
    }
    if app == "app1":
        values |= {
            "app1_out": lib_compute(6) * 4 + 20 + ord("1"),
            "app1_wide_1": 20,
            "app1_custom": "app1",
        }
    else:
        values |= {
            "app2_out": lib_compute(9) + 5000 + 13 + 1 + ord("h") + 8 + lib_weak,
            "app2_pad_bss_32": 1,
            "app2_note": "hi",
            "app2_custom_0": 7,
        }
    return {key: str(value) for key, value in values.items()}


def write_headers(objects: dict[str, Path], out: Path, maker: str) -> None:
    """The three headers the drivers include, made by pybpf or by bpftool."""
    out.mkdir()
    wanted = [
        ("lib", "subskeleton", "skel_lib", "skel_lib.subskel.h"),
        ("final1", "skeleton", "skel_app1", "skel_app1.skel.h"),
        ("final2", "skeleton", "skel_app2", "skel_app2.skel.h"),
        ("weak", "skeleton", "skel_weak", "skel_weak.skel.h"),
    ]
    for obj, kind, name, filename in wanted:
        if maker == "pybpf":
            text = generate(kind, objects[obj], name=name)
        else:
            text = bpftool("gen", kind, objects[obj], "name", name)
        (out / filename).write_text(text)


def build_driver(headers: Path, sources: list[str], out: Path) -> Path:
    assert GCC is not None
    run([GCC, "-O2", "-Wall", "-Werror", f"-I{headers}", f"-I{FIXTURES}",
         *(str(FIXTURES / s) for s in sources), "-o", str(out), "-lbpf"])  # fmt: skip
    return out


def parse(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


needs_kernel = pytest.mark.skipif(not have_bpf_syscall(), reason="needs root and bpf()")


@pytest.mark.kernel
@needs_kernel
def test_library_and_applications_run_on_libbpf(objects: dict[str, Path], tmp_path: Path) -> None:
    mount_tracefs()
    outputs: dict[tuple[str, str], dict[str, str]] = {}
    for maker in ("pybpf", "bpftool"):
        headers = tmp_path / maker
        write_headers(objects, headers, maker)
        for app in ("app1", "app2"):
            exe = build_driver(
                headers, [f"skel_{app}.c", "skel_libuser.c"], tmp_path / f"{maker}_{app}"
            )
            outputs[maker, app] = parse(run([str(exe)], timeout=60).stdout)
    for app in ("app1", "app2"):
        assert outputs["pybpf", app] == outputs["bpftool", app]
        assert outputs["pybpf", app] == expected_values(app)


@pytest.mark.kernel
@needs_kernel
def test_weak_then_strong_global_is_written_where_the_program_reads_it(
    objects: dict[str, Path], tmp_path: Path
) -> None:
    """The driver writes 40 to the overriding ``shared_knob`` through the skeleton; the
    programs return ``shared_knob + a_only`` (2) and ``shared_knob + b_first`` (3)."""
    results = {}
    for maker in ("pybpf", "bpftool"):
        headers = tmp_path / maker
        write_headers(objects, headers, maker)
        exe = build_driver(headers, ["skel_weak.c"], tmp_path / f"{maker}_weak")
        results[maker] = parse(run([str(exe)], timeout=60).stdout)
    assert results["pybpf"] == {"weak_a": "42", "weak_b": "43", "shared_knob": "40"}
    # bpftool's header writes the stale DATASEC slot; the programs still see the strong 4.
    assert results["bpftool"]["weak_a"] == "6"
