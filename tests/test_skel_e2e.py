"""Acceptance: the skeleton test library driven from Python, checked against libbpf.

The C scenario of ``test_codegen_c_build.py`` (``skel_app1.c``/``skel_app2.c`` with the
library's user-space half ``skel_libuser.c``, on the system libbpf) is mirrored step by step in
Python: open the application's skeleton, let the library's companion configure the library
through its subskeleton *before load*, load, attach, trigger ``getpid``, and let the companion
read the library's results *after load*.  The companion runs once with the live runtime
(:class:`Subskeleton.open`) and once with the generated module, for both applications, whose
layouts differ.  Every printed value must equal what the C driver prints for the same objects.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import BPFTOOL, have_bpf_syscall, open_fds
from pybpf.skel.codegen import generate
from pybpf.skel.runtime import Skeleton, Subskeleton
from pybpf.skel.values import VariableError
from test_codegen_c_build import build_driver, expected_values, mount_tracefs, parse, run
from test_codegen_python import load_module
from test_skel_runtime import build_skel_objects

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not have_bpf_syscall(), reason="needs root and bpf()"),
    pytest.mark.skipif(
        not Path("/usr/include/bpf/libbpf.h").exists(), reason="libbpf-dev is not installed"
    ),
]

APPS = {"app1": "final1", "app2": "final2"}
SYS_getpid = 39


class Scenario:
    """The objects of one linker, their C driver outputs and generated Python modules."""

    def __init__(self, root: Path, linker: str) -> None:
        self.objects = build_skel_objects(root / "objs", linker)
        self.c_output = {app: self._run_c_driver(root, app) for app in APPS}
        mods = root / "mods"
        mods.mkdir()
        self.lib_module = load_module(
            mods / f"skel_lib_{linker}.py",
            generate("subskeleton", self.objects["lib"], "skel_lib", "python"),
        )
        self.app_modules = {
            app: load_module(
                mods / f"skel_{app}_{linker}.py",
                generate("skeleton", self.objects[final], f"skel_{app}", "python"),
            )
            for app, final in APPS.items()
        }

    def _run_c_driver(self, root: Path, app: str) -> dict[str, str]:
        """The C driver on libbpf, with bpftool's headers for these very objects."""
        assert BPFTOOL is not None
        headers = root / f"h_{app}"
        headers.mkdir()
        lib = str(self.objects["lib"])
        (headers / "skel_lib.subskel.h").write_text(
            run([BPFTOOL, "gen", "subskeleton", lib, "name", "skel_lib"]).stdout
        )
        (headers / f"skel_{app}.skel.h").write_text(
            run([BPFTOOL, "gen", "skeleton", str(self.objects[APPS[app]]),
                 "name", f"skel_{app}"]).stdout
        )  # fmt: skip
        exe = build_driver(headers, [f"skel_{app}.c", "skel_libuser.c"], root / f"c_{app}")
        return parse(run([str(exe)], timeout=60).stdout)


@pytest.fixture(scope="module", params=["bpftool", "pybpf"], ids=lambda p: f"linked-by-{p}")
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    if BPFTOOL is None:
        pytest.skip("bpftool is not installed")
    mount_tracefs()
    return Scenario(tmp_path_factory.mktemp(f"e2e_{request.param}"), request.param)


# ------------------------------------------------------------------ the library's companion


def libuser_configure(lib: Any, tgid: int) -> None:
    """``libuser_configure`` of ``skel_libuser.c``, line for line."""
    lib.rodata.lib_scale = 3
    lib.rodata.lib_cfg.mode = b"b"
    lib.rodata.lib_cfg.base = 2000
    lib.rodata.lib_cfg.step = 2
    lib.rodata.lib_target_tgid = tgid
    lib.rodata.lib_scale2 = 5
    lib.data.lib_counter = 200
    lib.data.lib_hist[2] = 33
    lib.data.lib_stats.sum = 500
    tag = bytearray(lib.data.lib_tag.ljust(8, b"\0"))
    tag[3] = ord("X")
    lib.data.lib_tag = bytes(tag)
    lib.data_custom.lib_custom = 17
    lib.data_custom.lib_custom_arr[2] = 80


def libuser_report(lib: Any) -> dict[str, str]:
    """``libuser_report`` of ``skel_libuser.c``: the same keys, formatted as printf does."""
    raw = lib.maps.lib_map2.lookup(1)
    values: dict[str, object] = {
        "lib_map2_1": raw if isinstance(raw, int) else int.from_bytes(raw, "little", signed=True),
        "lib_counter": lib.data.lib_counter,
        "lib_result": lib.bss.lib_result,
        "lib_stats_hits": lib.data.lib_stats.hits,
        "lib_stats_flags": lib.data.lib_stats.flags,
        "lib_stats_sum": lib.data.lib_stats.sum,
        "lib_hist_3": lib.data.lib_hist[3],
        "lib_weak": lib.data.lib_weak,
        "lib_shared": lib.data.lib_shared,
        "lib_calls": lib.bss.lib_calls,
        "lib_tag": lib.data.lib_tag.decode(),
        "lib_custom": lib.data_custom.lib_custom,
        "lib_custom_arr_0": lib.data_custom.lib_custom_arr[0],
        "lib_hook_null": int(lib.bss.lib_hook == 0),
        "lib_cb_null": int(lib.bss.lib_cb == 0),
        "lib_scale": lib.rodata.lib_scale,
        "lib_cfg_base": lib.rodata.lib_cfg.base,
        "kconfig_version": lib.kconfig.LINUX_KERNEL_VERSION,
        "kconfig_hz": lib.kconfig.CONFIG_HZ,
        "kconfig_missing": lib.kconfig.CONFIG_PYBPF_SURELY_MISSING,
        "kconfig_localversion": lib.kconfig.CONFIG_LOCALVERSION.decode(),
        "seen_version": lib.bss.lib_kversion_seen,
        "seen_hz": lib.bss.lib_hz_seen,
        "seen_missing": lib.bss.lib_missing_seen,
        "seen_localversion": lib.bss.lib_localversion_seen.decode(),
    }
    return {key: str(value) for key, value in values.items()}


def app_configure(app: str, skel: Any, tgid: int) -> None:
    if app == "app1":
        skel.rodata.app1_mult = 4
        skel.rodata.app1_target_tgid = tgid
        skel.data.app1_a = 6
    else:
        skel.rodata.app2_offset = 5000
        skel.rodata.app2_target_tgid = tgid
        skel.data.app2_pair[1] = 9


def app_report(app: str, skel: Any) -> dict[str, str]:
    if app == "app1":
        own: dict[str, object] = {
            "app1_out": skel.bss.app1_out,
            "app1_wide_1": skel.data.app1_wide[1],
            "app1_custom": skel.data_custom.app1_custom.decode(),
        }
    else:
        own = {
            "app2_out": skel.bss.app2_out,
            "app2_pad_bss_32": _byte(skel, "app2_pad_bss", 32),
            "app2_note": skel.rodata_app2.app2_note.decode(),
            "app2_custom_0": skel.data_custom.app2_custom[0],
        }
    own |= {
        "app_view_lib_result": skel.bss.lib_result,
        "app_view_lib_counter": skel.data.lib_counter,
        "app_view_lib_custom": skel.data_custom.lib_custom,
        "app_view_hz": skel.kconfig.CONFIG_HZ,
    }
    return {key: str(value) for key, value in own.items()}


def _byte(skel: Any, name: str, index: int) -> int:
    """One byte of a char array, which reads as a C string (bytes up to its first NUL)."""
    var = next(v for v in skel.obj.spec.variables if v.name == name)
    return int(skel.obj.map(var.section_name).memory[var.offset + index])


def trigger() -> None:
    """``syscall(SYS_getpid)``: straight to the kernel, whatever libc caches."""
    ctypes.CDLL(None).syscall(SYS_getpid)


Opener = Callable[[Scenario, str], tuple[Any, Any]]


def open_live(sc: Scenario, app: str) -> tuple[Any, Any]:
    skel = Skeleton.open(sc.objects[APPS[app]], f"skel_{app}")
    return skel, Subskeleton.open(skel.obj, sc.objects["lib"])


def open_generated(sc: Scenario, app: str) -> tuple[Any, Any]:
    module = sc.app_modules[app]
    skel = getattr(module, f"Skel{app.capitalize()}").open()
    return skel, sc.lib_module.SkelLib.open(skel.obj)


OPENERS: dict[str, Opener] = {"live": open_live, "generated": open_generated}


@pytest.mark.parametrize("mode", OPENERS)
@pytest.mark.parametrize("app", APPS)
def test_python_companion_sees_what_the_c_driver_on_libbpf_sees(
    scenario: Scenario, app: str, mode: str
) -> None:
    before = open_fds()
    skel, lib = OPENERS[mode](scenario, app)
    tgid = os.getpid()
    app_configure(app, skel, tgid)
    libuser_configure(lib, tgid)
    skel.load()
    skel.attach()
    trigger()
    printed = app_report(app, skel) | libuser_report(lib)
    skel.destroy()
    lib.destroy()
    assert open_fds() == before
    assert printed == scenario.c_output[app]
    assert printed == expected_values(app)


@pytest.mark.parametrize("mode", OPENERS)
def test_accessors_taken_before_load_see_live_memory_after_it(
    scenario: Scenario, mode: str
) -> None:
    skel, lib = OPENERS[mode](scenario, "app1")
    data, bss, rodata = lib.data, lib.bss, lib.rodata
    stats, hist, cfg = lib.data.lib_stats, lib.data.lib_hist, lib.rodata.lib_cfg
    tgid = os.getpid()
    app_configure("app1", skel, tgid)
    libuser_configure(lib, tgid)
    try:
        skel.load()
        skel.attach()
        trigger()
        expected = scenario.c_output["app1"]
        assert str(stats.hits) == expected["lib_stats_hits"]  # written by the program
        assert str(stats.sum) == expected["lib_stats_sum"]
        assert str(bss.lib_result) == expected["lib_result"]
        assert str(data.lib_counter) == expected["lib_counter"]
        assert cfg.base == 2000 and rodata.lib_scale == 3
        hist[3] = 44  # a view made before load writes the kernel's map now
        assert lib.data.lib_hist[3] == 44 == skel.data.lib_hist[3]
        data.lib_counter = 7
        trigger()
        assert lib.data.lib_counter == 8  # the program incremented what user space wrote
    finally:
        skel.destroy()


@pytest.mark.parametrize("mode", OPENERS)
def test_rodata_after_load_and_kconfig_ever_refuse_writes(scenario: Scenario, mode: str) -> None:
    skel, lib = OPENERS[mode](scenario, "app2")
    with pytest.raises(VariableError, match="kconfig"):
        lib.kconfig.CONFIG_HZ = 1
    lib.rodata.lib_scale = 4  # still opened: fine
    try:
        skel.load()
        with pytest.raises(VariableError, match=r"\.rodata.*lib_scale.*frozen"):
            lib.rodata.lib_scale = 5
        with pytest.raises(VariableError, match=r"\.rodata.*app2_offset.*frozen"):
            skel.rodata.app2_offset = 1
        with pytest.raises(VariableError, match="kconfig"):
            skel.kconfig.CONFIG_HZ = 1
        assert lib.rodata.lib_scale == 4
        lib.data.lib_counter = 3  # .data stays writable
        assert skel.data.lib_counter == 3
    finally:
        skel.destroy()


def test_destroying_the_subskeleton_keeps_the_application_running(scenario: Scenario) -> None:
    before = open_fds()
    skel, lib = open_live(scenario, "app1")
    app_configure("app1", skel, os.getpid())
    libuser_configure(lib, os.getpid())
    lib.destroy()
    with skel:
        skel.load().attach()
        trigger()
        assert skel.links.app1_on_getpid is not None
        assert str(skel.bss.lib_result) == scenario.c_output["app1"]["app_view_lib_result"]
        skel.detach()
        assert len(skel.links) == 0
    assert open_fds() == before
