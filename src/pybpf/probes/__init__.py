"""What the running kernel supports, found by trying (and cached for the process).

Version numbers lie (distributions backport, configs differ), so like libbpf we probe: load a
tiny BTF blob using the kind in question (:mod:`.btf_kinds`), create the map, load the
program calling the helper (:mod:`.programs`).  Each probe returns a bool, never raises for
'unsupported', closes everything it opened, and runs at most once per process.

:data:`FEATURES` lists every feature :class:`KernelFeatures` reports with the upstream
release that introduced it.  The version is never used to decide anything; it is what lets a
test tell a kernel that predates a feature (a true "no") from a probe that broke (a "no" on
a kernel at or past ``since``).

This package sits above :mod:`pybpf.kernel` (the door to ``bpf()``) and :mod:`pybpf.btf`
(the probe blobs are built with the BTF builder).  System facts (CPUs, page size, kernel
version) live in :mod:`pybpf.kernel.system` and are re-exported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from pybpf.kernel.system import kernel_version, kernel_version_code, page_size, possible_cpus

from .btf_kinds import BTF_KINDS, btf_kind_supported, has_btf, probe_blob
from .programs import (
    has_bpf_cookie,
    has_bpf_syscall,
    has_global_data,
    has_mmapable_arrays,
    has_perf_link,
    has_ringbuf,
    map_type_supported,
    prog_type_supported,
)

__all__ = [
    "BTF_KINDS",
    "FEATURES",
    "Feature",
    "KernelFeatures",
    "btf_kind_supported",
    "has_bpf_cookie",
    "has_bpf_syscall",
    "has_btf",
    "has_global_data",
    "has_mmapable_arrays",
    "has_perf_link",
    "has_ringbuf",
    "kernel_features",
    "kernel_version",
    "map_type_supported",
    "page_size",
    "possible_cpus",
    "probe_blob",
    "prog_type_supported",
]


@dataclass(frozen=True, slots=True)
class Feature:
    """One reported feature: its :class:`KernelFeatures` field, first release, and probe."""

    name: str
    since: tuple[int, int]
    """(major, minor) of the upstream release that introduced it."""
    probe: Callable[[], bool]

    @property
    def since_code(self) -> int:
        """``since`` in :func:`~pybpf.kernel.system.kernel_version` form."""
        return kernel_version_code(*self.since, 0)


def _btf_kind(kind: str) -> Callable[[], bool]:
    return functools.partial(btf_kind_supported, kind)


FEATURES: tuple[Feature, ...] = (
    Feature("btf", (4, 18), has_btf),
    Feature("btf_func", (5, 0), _btf_kind("func")),
    Feature("btf_func_global", (5, 6), _btf_kind("func_global")),
    Feature("btf_datasec", (5, 2), _btf_kind("datasec")),
    # '?' as the first character of a DATASEC name: bd70a8fb7ca4 "bpf: Allow all printable
    # characters in BTF DATASEC names" (bpf-next pull of 2024-03-11, the 6.9 merge window,
    # with libbpf's FEAT_BTF_QMARK_DATASEC); not 6.0, whatever ENUM64 says.
    Feature("btf_qmark_datasec", (6, 9), _btf_kind("qmark_datasec")),
    Feature("btf_float", (5, 13), _btf_kind("float")),
    Feature("btf_decl_tag", (5, 16), _btf_kind("decl_tag")),
    Feature("btf_type_tag", (5, 17), _btf_kind("type_tag")),
    Feature("btf_enum64", (6, 0), _btf_kind("enum64")),
    Feature("global_data", (5, 2), has_global_data),
    Feature("mmapable_arrays", (5, 5), has_mmapable_arrays),
    Feature("ringbuf", (5, 8), has_ringbuf),
    Feature("bpf_cookie", (5, 15), has_bpf_cookie),
    Feature("perf_link", (5, 15), has_perf_link),
)
"""Every feature of :class:`KernelFeatures`, in field order."""


@dataclass(frozen=True, slots=True)
class KernelFeatures:
    """A snapshot of every probe, for loaders deciding how to sanitize an object."""

    kernel_version: int
    btf: bool
    btf_func: bool
    btf_func_global: bool
    btf_datasec: bool
    btf_qmark_datasec: bool
    btf_float: bool
    btf_decl_tag: bool
    btf_type_tag: bool
    btf_enum64: bool
    global_data: bool
    mmapable_arrays: bool
    ringbuf: bool
    bpf_cookie: bool
    perf_link: bool


@functools.cache
def kernel_features() -> KernelFeatures:
    """Run (once) every probe of :data:`FEATURES`."""
    return KernelFeatures(kernel_version(), *(f.probe() for f in FEATURES))
