"""pybpf: a pure-Python toolkit for BPF objects.

Read BPF ELF objects and BTF, link them, load them into the kernel through ``bpf()``, and drive
them through skeletons and subskeletons, with no libbpf at run time.

The main entry points are importable from here; they are loaded on first use so that
``import pybpf`` (and the command line) stays cheap.
"""

from __future__ import annotations

import importlib

from pybpf.errors import (
    BpfError,
    BtfError,
    CodegenError,
    ElfError,
    FormatError,
    KernelError,
    LinkError,
    LoadError,
    ObjectError,
)

TYPE_CHECKING = False
"""``typing`` costs milliseconds to import; mypy honours any constant of this name."""
if TYPE_CHECKING:
    from typing import Any

    from pybpf.btf import Btf
    from pybpf.events import EventError, PerfBuffer, RecordBatch, RingBuffer, UserRingBuffer
    from pybpf.obj import ObjectSpec
    from pybpf.object import BpfObject, Map, Program
    from pybpf.registry import find_library, libraries
    from pybpf.skel.runtime import Skeleton, SkeletonError, Subskeleton

__version__ = "0.1.0"

_LAZY = {
    "Btf": "pybpf.btf",
    "BpfObject": "pybpf.object",
    "Map": "pybpf.object",
    "Program": "pybpf.object",
    "ObjectSpec": "pybpf.obj",
    "Skeleton": "pybpf.skel.runtime",
    "Subskeleton": "pybpf.skel.runtime",
    "SkeletonError": "pybpf.skel.runtime",
    "RingBuffer": "pybpf.events",
    "PerfBuffer": "pybpf.events",
    "UserRingBuffer": "pybpf.events",
    "RecordBatch": "pybpf.events",
    "EventError": "pybpf.events",
    "find_library": "pybpf.registry",
    "libraries": "pybpf.registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pybpf' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BpfError",
    "BpfObject",
    "Btf",
    "BtfError",
    "CodegenError",
    "ElfError",
    "EventError",
    "FormatError",
    "KernelError",
    "LinkError",
    "LoadError",
    "Map",
    "ObjectError",
    "ObjectSpec",
    "PerfBuffer",
    "Program",
    "RecordBatch",
    "RingBuffer",
    "Skeleton",
    "SkeletonError",
    "Subskeleton",
    "UserRingBuffer",
    "__version__",
    "find_library",
    "libraries",
]
