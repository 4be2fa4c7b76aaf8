"""Inputs the linker must refuse, each with a message naming the files and the symbol.

Each case is a pair of variants of ``fixtures/link_err.bpf.c``; libbpf's linker (bpftool gen
object) refuses the same pairs, which the oracle checks confirm where bpftool 7.1 does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import BPFTOOL, compile_bpf
from pybpf import LinkError
from pybpf.btf.btf import Btf
from pybpf.btf.types import BtfDatasec, BtfKind
from pybpf.elf import ElfFile
from pybpf.linker import link_objects


def variant(tag: str, *defines: str, license_text: str = "GPL") -> Path:
    """Compile one variant of link_err.bpf.c (program named after ``tag``)."""
    flags = [f"-D{d}" for d in defines]
    return compile_bpf(
        "link_err",
        *flags,
        f"-DPROG=prog_{tag}",
        f'-DLICENSE_TEXT="{license_text}"',
        out_name=f"link_err_{tag}",
    )


def bpftool_refuses(*inputs: Path, tmp: Path) -> bool:
    if BPFTOOL is None:
        pytest.skip("bpftool is not installed")
    result = subprocess.run(
        [BPFTOOL, "gen", "object", str(tmp / "out.o"), *map(str, inputs)], capture_output=True
    )
    return result.returncode != 0


def test_two_strong_definitions(tmp_path: Path) -> None:
    a = variant("strong_a", "STRONG")
    b = variant("strong_b", "STRONG")
    with pytest.raises(LinkError) as err:
        link_objects([a, b])
    message = str(err.value)
    assert "dup_var" in message and str(a) in message and str(b) in message
    assert "strong" in message
    assert bpftool_refuses(a, b, tmp=tmp_path)


def test_extern_with_a_different_type(tmp_path: Path) -> None:
    definition = variant("type_def", "TYPE_DEF")
    extern = variant("type_ext", "TYPE_EXT")
    for order in ([definition, extern], [extern, definition]):
        with pytest.raises(LinkError) as err:
            link_objects(order)
        message = str(err.value)
        assert "typed" in message and str(definition) in message and str(extern) in message
        assert "size 8 vs 4" in message or "size 4 vs 8" in message
    assert bpftool_refuses(definition, extern, tmp=tmp_path)


def test_unresolved_externs_are_all_listed_but_kconfig_is_left_to_the_loader() -> None:
    obj = variant("unresolved", "UNRESOLVED")
    with pytest.raises(LinkError) as err:
        link_objects([obj])
    message = str(err.value)
    assert "missing_var" in message and "missing_func" in message
    assert str(obj) in message
    assert "LINUX_KERNEL_VERSION" not in message and "bpf_prog_active" not in message
    # A library link may leave them for its user; loader externs keep their DATASECs.
    elf = ElfFile.from_bytes(link_objects([obj], allow_unresolved=True))
    btf = Btf.from_bytes(elf.section(".BTF").data)  # type: ignore[union-attr]
    for name, var in ((".kconfig", "LINUX_KERNEL_VERSION"), (".ksyms", "bpf_prog_active")):
        sec = btf[btf.find_one(name, BtfKind.DATASEC)]
        assert isinstance(sec, BtfDatasec)
        assert [btf.name_of(v.type) for v in sec.vars] == [var]
        sym = elf.symbol_named(var)
        assert sym is not None and sym.is_extern


def test_kconfig_extern_alone_links() -> None:
    objs = [compile_bpf(n) for n in ("link_lib1", "link_lib2", "link_app")]
    assert link_objects(objs)  # app's LINUX_KERNEL_VERSION stays extern, no error


def test_map_declared_differently(tmp_path: Path) -> None:
    definition = variant("map_def", "MAP_DEF")
    extern = variant("map_ext", "MAP_EXT")
    for order in ([definition, extern], [extern, definition]):
        with pytest.raises(LinkError) as err:
            link_objects(order)
        message = str(err.value)
        assert "shared_map" in message and "max_entries" in message
        assert str(definition) in message and str(extern) in message
    assert bpftool_refuses(definition, extern, tmp=tmp_path)


def test_two_weak_maps_must_agree(tmp_path: Path) -> None:
    a = variant("weak_map_a", "WEAK_MAP_A")
    b = variant("weak_map_b", "WEAK_MAP_B")
    with pytest.raises(LinkError) as err:
        link_objects([a, b])
    message = str(err.value)
    assert "weak_map" in message and "value" in message
    assert str(a) in message and str(b) in message
    assert bpftool_refuses(a, b, tmp=tmp_path)
    # Two identical weak definitions are one map.
    assert link_objects([a, variant("weak_map_a2", "WEAK_MAP_A")])


def test_license_must_be_the_same(tmp_path: Path) -> None:
    gpl = variant("lic_gpl", "STRONG")
    bsd = variant("lic_bsd", license_text="Dual BSD/GPL")
    with pytest.raises(LinkError) as err:
        link_objects([gpl, bsd])
    message = str(err.value)
    assert "license" in message and str(gpl) in message and str(bsd) in message
    assert bpftool_refuses(gpl, bsd, tmp=tmp_path)


def test_non_bpf_input(tmp_path: Path) -> None:
    src = tmp_path / "host.c"
    src.write_text("int host_function(void) { return 1; }\n")
    host = tmp_path / "host.o"
    subprocess.run(["gcc", "-c", str(src), "-o", str(host)], check=True)
    bpf = variant("strong_a", "STRONG")
    with pytest.raises(LinkError) as err:
        link_objects([bpf, host])
    assert str(host) in str(err.value) and "BPF" in str(err.value)
    text = tmp_path / "notes.txt"
    text.write_text("not an object")
    with pytest.raises(LinkError, match=r"notes\.txt"):
        link_objects([text])


def test_missing_input_and_nothing_to_link(tmp_path: Path) -> None:
    with pytest.raises(LinkError, match=r"missing\.o"):
        link_objects([tmp_path / "missing.o"])
    with pytest.raises(LinkError, match="nothing to link"):
        link_objects([])


def test_an_uninstalled_library_is_a_clear_error(tmp_path: Path) -> None:
    from pybpf import BpfError
    from pybpf.linker import link_files

    with pytest.raises(BpfError, match="BPF library 'libfoo' is not installed") as info:
        link_files(str(tmp_path / "out.o"), [], ["libfoo"])
    assert "pip install libfoo" in str(info.value)
    assert not (tmp_path / "out.o").exists()
