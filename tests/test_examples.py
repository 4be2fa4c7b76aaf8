"""The demo's BPF library, its companion and its two applications (examples/, package data).

The library's variables sit at different offsets in each application (the applications'
own globals come first); the companion, built on the generated subskeleton, must configure
and read the library the same way in both.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_root

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "pybpf" / "data" / "demo"
EXAMPLES = ROOT / "examples"
LIBRARY_VARS = ("flowlib_target_tgid", "flowlib_unit_shift", "flowlib_hist", "flowlib_summary")
GETPPID = {"x86_64": 110, "aarch64": 173}.get(platform.machine())


def test_companion_is_shared_verbatim() -> None:
    shipped = (DATA / "companion.py").read_bytes()
    example = EXAMPLES / "flowlib" / "src" / "pybpf_example_flowlib" / "companion.py"
    assert shipped == example.read_bytes()


@pytest.mark.skipif(shutil.which("clang-16") is None, reason="needs clang-16")
def test_shipped_demo_data_is_what_rebuild_sh_makes(tmp_path: Path) -> None:
    pybpf = Path(sys.executable).parent / "pybpf"
    env = {**os.environ, "OUT": str(tmp_path), "PYBPF": str(pybpf)}
    script = EXAMPLES / "demo" / "rebuild.sh"
    subprocess.run(["sh", str(script)], check=True, env=env, capture_output=True)
    built = sorted(p.name for p in tmp_path.iterdir())
    shipped = [p.name for p in DATA.iterdir() if p.name not in ("__init__.py", "__pycache__")]
    assert built == sorted(shipped)
    for name in built:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_run_time_link_equals_the_skeletons_object() -> None:
    from pybpf.data.demo.app_errors_skel import AppErrors
    from pybpf.data.demo.app_top_skel import AppTop
    from pybpf.demo import link_demo_app

    assert link_demo_app("app_top") == AppTop.object_bytes()
    assert link_demo_app("app_errors") == AppErrors.object_bytes()


def test_library_variables_move_between_applications() -> None:
    from pybpf.data.demo.app_errors_skel import AppErrors
    from pybpf.data.demo.app_top_skel import AppTop
    from pybpf.demo import demo_object
    from pybpf.obj.object_spec import ObjectSpec

    def offsets(spec: ObjectSpec) -> dict[str, int]:
        return {
            v.name: v.offset
            for section in (".rodata", ".data", ".bss")
            for v in spec.variables_of(section)
            if v.name in LIBRARY_VARS
        }

    lib = offsets(ObjectSpec.from_bytes(demo_object("flowlib.bpf.o")))
    top = offsets(ObjectSpec.from_bytes(AppTop.object_bytes()))
    errors = offsets(ObjectSpec.from_bytes(AppErrors.object_bytes()))
    assert set(lib) == set(top) == set(errors) == set(LIBRARY_VARS)
    assert lib != top and lib != errors and top != errors


@requires_root
@pytest.mark.skipif(GETPPID is None, reason="syscall numbers known for x86-64 and arm64 only")
@pytest.mark.parametrize("app", ["app_top", "app_errors"])
def test_companion_configures_before_load_and_reads_after(app: str) -> None:
    from pybpf.data.demo.app_errors_skel import AppErrors
    from pybpf.data.demo.app_top_skel import AppTop
    from pybpf.data.demo.companion import Flow, FlowError

    skel = AppTop.open() if app == "app_top" else AppErrors.open()
    try:
        flow = Flow(skel.obj)
        flow.configure(pid=os.getpid(), syscall=GETPPID, unit_shift=4, max_threads=64)
        assert skel.obj.map("flowlib_starts").max_entries == 64
        skel.load()
        skel.attach()
        for _ in range(500):
            os.getppid()
        if isinstance(skel, AppErrors):
            for _ in range(7):
                with pytest.raises(OSError):
                    os.close(-1)  # EBADF, counted by the application's own program
        flow.paused = True
        for _ in range(100):
            os.getppid()  # not counted while paused
        snap = flow.snapshot()
        assert snap.events == 500
        assert snap.syscalls == {GETPPID: 500}
        assert sum(snap.buckets) == 500
        assert snap.unit_shift == 4
        assert snap.max_ns > 0 and snap.max_nr == GETPPID
        assert snap.missed == 0
        if isinstance(skel, AppTop):
            assert skel.bss.top_enters >= 600  # the application counts every syscall
        else:
            assert skel.bss.errors_by_errno[9] >= 7
        assert skel.rodata.flowlib_target_tgid == os.getpid()  # .rodata, as configured
        with pytest.raises(FlowError):
            flow.configure(pid=1)
        flow.reset()
        assert flow.snapshot().events == 0
        flow.paused = False
        os.getppid()
        assert flow.snapshot().syscalls == {GETPPID: 1}
    finally:
        skel.destroy()
