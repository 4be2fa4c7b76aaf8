"""pybpf.probes: each probe blob says what it means to, and on a kernel at or past a
feature's first release the probe must say yes (a no there is a regression, not a skip)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from conftest import open_fds, requires_root
from pybpf import probes
from pybpf.abi.bpf import MapType, ProgType
from pybpf.abi.btf import FuncLinkage, VarLinkage
from pybpf.btf import Btf
from pybpf.btf.types import (
    BtfDatasec,
    BtfDeclTag,
    BtfEnum64,
    BtfFloat,
    BtfFunc,
    BtfFuncProto,
    BtfInt,
    BtfPtr,
    BtfTypeTag,
    BtfVar,
)
from pybpf.kernel.system import kernel_version


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    before = open_fds()
    yield
    assert open_fds() == before


def decode(kind: str) -> list[object]:
    return list(Btf.from_bytes(probes.probe_blob(kind), section=None))


# --- the blobs, without a kernel ----------------------------------------------------------


def test_every_btf_kind_has_a_blob_and_nothing_else_does() -> None:
    assert set(probes.BTF_KINDS) == {
        "int", "func", "func_global", "datasec", "qmark_datasec", "float", "decl_tag",
        "type_tag", "enum64",
    }  # fmt: skip
    with pytest.raises(ValueError, match="no probe for BTF kind 'nonsense'"):
        probes.probe_blob("nonsense")
    with pytest.raises(ValueError):
        probes.btf_kind_supported("nonsense")


def test_int_blob_is_one_signed_int() -> None:
    (t,) = decode("int")
    assert isinstance(t, BtfInt) and (t.name, t.size, t.nr_bits) == ("int", 4, 32)


@pytest.mark.parametrize(
    ("kind", "linkage"), [("func", FuncLinkage.STATIC), ("func_global", FuncLinkage.GLOBAL)]
)
def test_func_blobs_differ_only_in_linkage(kind: str, linkage: FuncLinkage) -> None:
    # The plain FUNC probe must stay static: global linkage is itself a later feature.
    i, proto, func = decode(kind)
    assert isinstance(i, BtfInt)
    assert isinstance(proto, BtfFuncProto) and proto.return_type == 1
    assert [p.type for p in proto.params] == [1]
    assert isinstance(func, BtfFunc) and func.type == 2 and func.linkage == linkage


@pytest.mark.parametrize(("kind", "name"), [("datasec", ".data"), ("qmark_datasec", "?.data")])
def test_datasec_blobs_differ_only_in_the_section_name(kind: str, name: str) -> None:
    i, var, sec = decode(kind)
    assert isinstance(i, BtfInt)
    assert isinstance(var, BtfVar) and var.type == 1
    assert var.linkage == VarLinkage.GLOBAL_ALLOCATED
    assert isinstance(sec, BtfDatasec) and sec.name == name and sec.size == 4
    assert [(v.type, v.offset, v.size) for v in sec.vars] == [(2, 0, 4)]


def test_newer_kind_blobs_hold_that_kind_and_only_older_helpers() -> None:
    (f,) = decode("float")
    assert isinstance(f, BtfFloat) and f.size == 4
    i, var, tag = decode("decl_tag")
    assert isinstance(i, BtfInt) and isinstance(var, BtfVar)
    assert isinstance(tag, BtfDeclTag) and tag.type == 2 and tag.component_idx == -1
    i, ttag, ptr = decode("type_tag")
    assert isinstance(ttag, BtfTypeTag) and ttag.type == 1
    assert isinstance(ptr, BtfPtr) and ptr.type == 2
    (e,) = decode("enum64")
    assert isinstance(e, BtfEnum64) and e.size == 8
    assert [v.value for v in e.values] == [1 << 40]  # needs the high word


def test_the_table_names_every_reported_feature_in_order() -> None:
    names = [f.name for f in dataclasses.fields(probes.KernelFeatures)]
    assert names[0] == "kernel_version"
    assert [f.name for f in probes.FEATURES] == names[1:]
    for feature in probes.FEATURES:
        assert (4, 18) <= feature.since < (7, 0), feature
        assert feature.since_code == (feature.since[0] << 16) | (feature.since[1] << 8)


# --- the probes, on this kernel ------------------------------------------------------------


@requires_root
@pytest.mark.parametrize("feature", probes.FEATURES, ids=lambda f: f.name)
def test_every_feature_is_there_from_its_first_release(feature: probes.Feature) -> None:
    running = kernel_version()
    if running < feature.since_code:
        pytest.skip(f"{feature.name} arrived in {feature.since}; this kernel predates it")
    assert feature.probe(), f"{feature.name} probe failed on a kernel past {feature.since}"


@requires_root
def test_the_snapshot_agrees_with_the_probes() -> None:
    feats = probes.kernel_features()
    assert feats.kernel_version == kernel_version()
    for feature in probes.FEATURES:
        assert getattr(feats, feature.name) == feature.probe()


@requires_root
def test_map_and_program_type_probes() -> None:
    assert probes.has_bpf_syscall()
    assert probes.map_type_supported(MapType.HASH)
    assert not probes.map_type_supported(MapType.UNSPEC)
    assert probes.prog_type_supported(ProgType.XDP)
