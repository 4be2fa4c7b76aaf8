"""Load failures: each names its cause, and none leaves a descriptor behind."""

from __future__ import annotations

import pytest

from conftest import compile_bpf, open_fds, requires_root
from pybpf.errors import BpfError, LoadError
from pybpf.object import BpfObject

pytestmark = [requires_root, pytest.mark.kernel]


def failing_load(obj: BpfObject) -> LoadError:
    """Load ``obj`` expecting a LoadError; check that no descriptor survives it."""
    before = open_fds()
    with pytest.raises(LoadError) as info:
        obj.load()
    assert open_fds() == before
    assert not obj.loaded
    return info.value


def test_verifier_refusal_names_the_program_and_carries_the_log() -> None:
    obj = BpfObject.open(compile_bpf("load_bad"))
    error = failing_load(obj)
    assert error.program == "bad_prog"
    assert "invalid access to map value" in error.log
    assert "bad_prog" in str(error) and "verifier log" in str(error)


def test_a_failed_load_can_be_retried_after_fixing_the_cause() -> None:
    obj = BpfObject.open(compile_bpf("load_bad"))
    failing_load(obj)
    obj.program("bad_prog").autoload = False
    before = open_fds()
    with obj:
        obj.load()
        assert obj.program("good_prog").fd is not None
    assert open_fds() == before


def test_missing_strong_kconfig_extern_is_named() -> None:
    obj = BpfObject.open(compile_bpf("load_kconfig_missing"))
    error = failing_load(obj)
    assert "CONFIG_PYBPF_NOT_SET_ANYWHERE" in str(error)
    assert "__weak" in str(error)


def test_refused_map_creation_names_the_map() -> None:
    obj = BpfObject.open(compile_bpf("load_globals"))
    obj.map("by_round").max_entries = 0  # a hash map of no entries: EINVAL
    error = failing_load(obj)
    assert "'by_round'" in str(error)
    assert "EINVAL" in str(error)


def test_unlinked_object_with_externs_is_refused_before_touching_the_kernel() -> None:
    obj = BpfObject.open(compile_bpf("load_link_app"))
    error = failing_load(obj)
    assert "link the object" in str(error)


def test_load_twice_is_refused() -> None:
    with BpfObject.open(compile_bpf("load_bad")) as obj:
        obj.program("bad_prog").autoload = False
        obj.load()
        with pytest.raises(BpfError):
            obj.load()


def test_attach_is_all_or_nothing() -> None:
    from pybpf.kernel.perf import pmu_type

    with BpfObject.open(compile_bpf("load_kprobe")) as obj:
        obj.load()
        try:
            pmu_type("kprobe")
        except BpfError:
            pass
        else:
            pytest.skip("this kernel has kprobes: the kprobe program would attach")
        before = open_fds()
        with pytest.raises(LoadError) as info:
            obj.attach()
        assert info.value.program == "on_nanosleep"
        assert open_fds() == before  # the tracepoint link made first was closed again
        assert all(len(p.links) == 0 for p in obj.programs)


def test_verifier_log_on_request() -> None:
    with BpfObject.open(compile_bpf("load_bad")) as obj:
        obj.program("bad_prog").autoload = False
        obj.load(log_level=2)
        assert "processed" in obj.program("good_prog").log


def test_a_program_without_type_needs_one_set_before_load() -> None:
    from pybpf.abi.bpf import ProgType

    with BpfObject.open(compile_bpf("load_untyped")) as obj:
        error = failing_load(obj)
        assert error.program == "untyped" and "prog_type" in str(error)
        obj.program("untyped").prog_type = ProgType.XDP
        obj.load()
        assert obj.program("untyped").test_run(bytes(64)).retval == 1  # XDP_DROP
