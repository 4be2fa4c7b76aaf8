"""``pybpf gen skeleton|subskeleton --lang python``: typed, deterministic modules that behave as
the live runtime does, with ctypes classes laid out as :class:`CTypesBuilder` lays them out.
No kernel is needed here; ``test_skel_e2e.py`` runs the generated modules against the kernel.
"""

from __future__ import annotations

import ctypes
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import compile_bpf
from pybpf.btf.to_ctypes import CBitfield, CTypesBuilder
from pybpf.elf.strip import strip_debug
from pybpf.errors import CodegenError
from pybpf.object import BpfObject
from pybpf.skel.codegen import generate
from pybpf.skel.codegen.python_types import camel_case
from pybpf.skel.runtime import SkeletonError, Subskeleton
from pybpf.skel.values import VariableError
from test_skel_runtime import build_skel_objects

VENV_BIN = Path(sys.executable).parent
FIXTURE_OBJECTS = [
    "skel_globals", "skel_strings", "skel_minimal", "skel_maponly", "btfkinds",
    "layout_types", "obj_data", "load_globals",
]  # fmt: skip


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    objs = build_skel_objects(tmp_path_factory.mktemp("skel_gen"))
    for name in FIXTURE_OBJECTS:
        objs[name] = compile_bpf(name)
    objs["mismatch"] = compile_bpf("pyskel_mismatch")
    return objs


def load_module(path: Path, text: str) -> ModuleType:
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"pyskel_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def modules(objects: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("skel_gen_mods")
    return {
        "lib": load_module(out / "skel_lib_sub.py", generate("subskeleton", objects["lib"],
                                                              "skel_lib", "python")),
        "app1": load_module(out / "skel_app1_skel.py", generate("skeleton", objects["final1"],
                                                                "skel_app1", "python")),
        "app2": load_module(out / "skel_app2_skel.py", generate("skeleton", objects["final2"],
                                                                "skel_app2", "python")),
    }  # fmt: skip


def run_mypy(paths: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "mypy"), "--strict", "--no-incremental", "--cache-dir", str(cwd / ".mc"),
         *map(str, paths)],
        capture_output=True, text=True, cwd=cwd,
    )  # fmt: skip


def test_generated_modules_pass_mypy_strict(objects: dict[str, Path], tmp_path: Path) -> None:
    paths = []
    for key, path in objects.items():
        if key == "mismatch":
            continue
        for kind in ("skeleton", "subskeleton"):
            out = tmp_path / f"{kind}_{key}.py"
            out.write_text(generate(kind, path, lang="python"))
            paths.append(out)
    result = run_mypy(paths, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_attributes_are_precisely_typed(objects: dict[str, Path], tmp_path: Path) -> None:
    """A user of the modules type-checks; misuses are caught statically."""
    (tmp_path / "skel_lib_sub.py").write_text(
        generate("subskeleton", objects["lib"], "skel_lib", "python"))
    (tmp_path / "skel_app1_skel.py").write_text(
        generate("skeleton", objects["final1"], "skel_app1", "python"))  # fmt: skip
    good = tmp_path / "user_good.py"
    good.write_text(
        "import ctypes\n"
        "from skel_app1_skel import SkelApp1\nfrom skel_lib_sub import LibCfg, SkelLib\n"
        "from pybpf.skel.generated import Link, Map, Program\n"
        "skel = SkelApp1.open()\nlib = SkelLib.open(skel.obj)\n"
        "counter: int = lib.data.lib_counter\nlib.data.lib_counter = counter + 1\n"
        "cfg: LibCfg = lib.rodata.lib_cfg\nbase: int = cfg.base\nmode: bytes = cfg.mode\n"
        "hist: ctypes.Array[ctypes.c_int64] = lib.data.lib_hist\nlib.data.lib_hist = [1, 2, 3, 4]\n"
        "tag: bytes = lib.data.lib_tag\nlib.data.lib_tag = 'x'\n"
        "hz: int = lib.kconfig.CONFIG_HZ\nm: Map = lib.maps.lib_map2\n"
        "p: Program = skel.progs.app1_on_getpid\nlink: Link | None = skel.links.app1_on_getpid\n"
        "out: int = skel.bss.app1_out\nnote: bytes = skel.data_custom.app1_custom\n"
    )  # fmt: skip
    bad = tmp_path / "user_bad.py"
    bad.write_text(
        "from skel_app1_skel import SkelApp1\nfrom skel_lib_sub import SkelLib\n"
        "lib = SkelLib.open(SkelApp1.open().obj)\n"
        "lib.kconfig.CONFIG_HZ = 1\n"
        "lib.data.lib_counter = 'x'\n"
        "s: str = lib.data.lib_tag\n"
        "lib.data.nope = 1\n"
        "lib.maps = None\n"
    )  # fmt: skip
    result = run_mypy([good], tmp_path)
    assert result.returncode == 0, result.stdout
    result = run_mypy([bad], tmp_path)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert sorted({int(line.split(":")[1]) for line in errors}) == [4, 5, 6, 7, 8], result.stdout


@pytest.mark.parametrize("kind", ["skeleton", "subskeleton"])
def test_output_is_deterministic(objects: dict[str, Path], kind: str) -> None:
    first = generate(kind, objects["final2"], "skel_app2", "python")
    assert first == generate(kind, objects["final2"], "skel_app2", "python")
    cli = subprocess.run(
        [str(VENV_BIN / "pybpf"), "gen", kind, str(objects["final2"]), "name", "skel_app2",
         "--lang", "python"], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert cli.stdout == first


def test_class_names_are_camel_case(objects: dict[str, Path]) -> None:
    assert camel_case("flow_lib") == "FlowLib"
    assert camel_case("skel_app1") == "SkelApp1"
    assert "class FlowLib(SubskeletonBase):" in generate(
        "subskeleton", objects["lib"], "flow_lib", "python"
    )
    assert "class SkelLib(SubskeletonBase):" in generate("subskeleton", objects["lib"],
                                                          lang="python")
    with pytest.raises(CodegenError, match="invalid object name"):
        generate("skeleton", objects["lib"], "not-an-identifier", "python")


def _layout(ctype: Any) -> Any:
    """A ctypes type's layout, recursively: fields with offsets and sizes, bitfields."""
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Array):
        return ("array", ctype._length_, _layout(ctype._type_))
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure | ctypes.Union):
        fields = [(name, getattr(ctype, name).offset, getattr(ctype, name).size, _layout(t))
                  for name, t, *_ in ctype._fields_]  # fmt: skip
        bits = [(n, b.bit_offset, b.bits, b.signed)
                for n, b in vars(ctype).items() if isinstance(b, CBitfield)]  # fmt: skip
        return (ctypes.sizeof(ctype), fields, bits, list(getattr(ctype, "_anonymous_", ())))
    return (ctypes.sizeof(ctype), getattr(ctype, "_type_", None))


@pytest.mark.parametrize("fixture", ["btfkinds", "skel_globals", "layout_types", "lib"])
def test_ctypes_classes_are_laid_out_as_ctypesbuilder_does(
    objects: dict[str, Path], tmp_path: Path, fixture: str
) -> None:
    module = load_module(tmp_path / "m.py", generate("skeleton", objects[fixture], "m", "python"))
    obj = BpfObject.open(objects[fixture])
    assert obj.spec.btf is not None
    builder = CTypesBuilder(obj.spec.btf)
    specs = {v.name: v for v in obj.spec.variables}
    checked = 0
    for section in module.M.DESCRIPTION.sections:
        for var in section.variables:
            if var.ctype is not None:
                expected = builder.ctype(specs[var.name].type_id)
                assert _layout(var.ctype) == _layout(expected), var.name
                checked += 1
    assert checked


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, ctypes.Array | ctypes.Structure | ctypes.Union) \
        else value  # fmt: skip


@pytest.mark.parametrize("final", ["final1", "final2"])
def test_generated_subskeleton_reads_what_the_live_one_reads(
    objects: dict[str, Path], modules: dict[str, Any], final: str
) -> None:
    obj = BpfObject.open(objects[final])
    live = Subskeleton.open(obj, objects["lib"])
    gen = modules["lib"].SkelLib.open(obj)
    live.data.lib_counter = 321
    gen.rodata.lib_cfg.step = 9
    for ident, section in live.sections.items():
        typed = getattr(gen, ident)
        for name in section.variables():
            assert _plain(getattr(typed, name)) == _plain(getattr(section, name)), name
    assert gen.data.lib_counter == 321 and live.rodata.lib_cfg.step == 9
    assert gen.maps.lib_map2 is live.maps.lib_map2
    assert gen.progs.lib_on_getpid is live.progs.lib_on_getpid
    assert isinstance(gen.rodata.lib_cfg, modules["lib"].LibCfg)


def test_generated_accessors_check_writes_like_the_live_ones(
    objects: dict[str, Path], modules: dict[str, Any]
) -> None:
    gen = modules["lib"].SkelLib.open(BpfObject.open(objects["final1"]))
    gen.data.lib_hist = [5, 6, 7, 8]
    assert list(gen.data.lib_hist) == [5, 6, 7, 8]
    gen.data_custom.lib_custom_arr = (ctypes.c_int16 * 3)(1, 2, 3)
    assert list(gen.data_custom.lib_custom_arr) == [1, 2, 3]
    with pytest.raises(VariableError, match="3 items for 4"):
        gen.data.lib_hist = [1, 2, 3]
    with pytest.raises(VariableError, match="do not fit char\\[8\\]"):
        gen.data.lib_tag = b"123456789"
    with pytest.raises(VariableError, match="expected int"):
        gen.data.lib_counter = 1.5
    with pytest.raises(VariableError, match=r"\.kconfig variable 'CONFIG_HZ'.*read-only"):
        gen.kconfig.CONFIG_HZ = 1


def test_generated_subskeleton_names_every_mismatch(
    objects: dict[str, Path], modules: dict[str, Any]
) -> None:
    obj = BpfObject.open(objects["mismatch"])
    with pytest.raises(SkeletonError) as generated:
        modules["lib"].SkelLib.open(obj)
    with pytest.raises(SkeletonError) as live:
        Subskeleton.open(obj, objects["lib"])
    assert str(generated.value) == str(live.value)
    assert "lib_counter" in str(generated.value) and "lib_custom_arr" in str(generated.value)


def test_generated_skeleton_embeds_its_object(
    objects: dict[str, Path], modules: dict[str, Any]
) -> None:
    app = modules["app2"].SkelApp2
    # The object as given, without the contents of its DWARF sections (see test_strip.py).
    assert app.object_bytes() == strip_debug(objects["final2"].read_bytes())
    skel = app.open()
    assert skel.obj.name == "skel_app2"
    assert skel.rodata.app2_offset == 1000000
    assert skel.rodata_app2.app2_note == b"hi"
    assert list(skel.data.app2_big) == [1, 1, 2, 3, 5, 8, 13]
    assert skel.links.app2_on_getpid is None
    assert skel.maps.rodata is skel.obj.map(".rodata")
    lib = modules["lib"].SkelLib.open(skel.obj)
    lib.data.lib_weak = 5
    assert skel.data.lib_weak == 5


def test_runtime_names_all_resolve_in_generated() -> None:
    """Every name the generator may import exists in the runtime module and is exported."""
    import pybpf.skel.generated as generated
    from pybpf.skel.runtime_names import RUNTIME_NAMES

    missing = [name for name in RUNTIME_NAMES if not hasattr(generated, name)]
    assert missing == []
    assert set(RUNTIME_NAMES) <= set(generated.__all__)
    assert len(generated.__all__) == len(set(generated.__all__))
