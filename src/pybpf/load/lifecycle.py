"""Moving a :class:`~pybpf.object.BpfObject` from opened to loaded to closed, in place.

The user-facing object keeps its identity across ``load()`` (skeletons and subskeletons
hold on to its maps and programs), so the loader does not build new objects: it reads the
settings the user changed while the object was opened (map images, ``max_entries``,
program types, ``autoload``), loads an effective spec, and then writes the kernel state
back onto the same :class:`Map`/:class:`Program` instances.  Global-data images become the
maps' live memory (:meth:`Map.bind_kernel_memory` maps the kernel map over the image's own
pages), so the same accessors, and views taken before load, read what programs write; frozen
maps (``.rodata``, ``.kconfig``) become read-only mappings of what the kernel holds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from pybpf.errors import BpfError
from pybpf.load import attach as _attach
from pybpf.load.links import Link
from pybpf.load.loader import KernelObject, load_object
from pybpf.load.maps import MapHandle
from pybpf.obj.object_spec import ObjectSpec

if TYPE_CHECKING:
    from pybpf.object import BpfObject, Program


def effective_spec(obj: BpfObject) -> ObjectSpec:
    """``obj.spec`` with what the user changed before load."""
    maps = tuple(
        m.spec if m.max_entries == m.spec.max_entries
        else dataclasses.replace(m.spec, max_entries=m.max_entries)
        for m in obj.maps
    )
    programs = tuple(
        dataclasses.replace(
            p.spec,
            prog_type=p.prog_type,
            expected_attach_type=p.expected_attach_type,
            autoload=p.autoload,
        )
        for p in obj.programs
    )
    return dataclasses.replace(obj.spec, maps=maps, programs=programs)


def load(
    obj: BpfObject, *, log_level: int = 0, btf_custom_path: str | Path | None = None
) -> KernelObject:
    """Load ``obj`` into the kernel and bind the kernel state to its maps and programs."""
    if obj.loaded:
        raise BpfError(f"object '{obj.name}' is already loaded")
    spec = effective_spec(obj)
    images = {m.name: bytes(m.image) for m in obj.maps if m.is_internal}
    state = load_object(
        spec,
        images=images,
        log_level=log_level,
        map_memory=False,
        btf_custom_path=btf_custom_path,
    )
    try:
        for m, map_spec in zip(obj.maps, spec.maps, strict=True):
            fd = state.maps[m.name]
            m.fd = fd.fileno()
            m._handle = MapHandle(fd, map_spec)
            if m.is_internal:
                m.bind_kernel_memory(fd.fileno())
    except BaseException:
        for m in obj.maps:
            m.settle_kernel_memory(loaded=False)
            m.fd, m._handle = None, None
        state.close()
        raise
    for m in obj.maps:
        m.settle_kernel_memory(loaded=True)
    for p in obj.programs:
        prog_fd = state.programs.get(p.name)
        p.fd = prog_fd.fileno() if prog_fd is not None else None
        p.log = state.logs.get(p.name, "")
    obj.loaded = True
    return state


def close(obj: BpfObject, state: KernelObject | None) -> None:
    """Detach every link, close every descriptor, unmap global data."""
    for p in obj.programs:
        p.links.close()
        p.fd = None
    for m in obj.maps:
        m.release_memory()
        m.fd = None
        m._handle = None
    if state is not None:
        state.close()


def auto_attach(p: Program) -> Link | None:
    """Attach ``p`` as its section name says (``None`` if it names no target)."""
    spec = dataclasses.replace(p.spec, expected_attach_type=p.expected_attach_type)
    link = _attach.auto_attach(p._loaded_fd(), spec)
    return p.links.add(link) if link is not None else None


def attach_all(obj: BpfObject) -> list[Link]:
    """Auto-attach every loaded program that names its target; all or nothing."""
    made: list[Link] = []
    try:
        for p in obj.programs:
            if p.fd is None:
                continue
            link = auto_attach(p)
            if link is not None:
                made.append(link)
    except BaseException:
        for link in made:
            link.close()
        raise
    return made
