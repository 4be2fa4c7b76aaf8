"""The load sequence of one object: BTF, maps, global data, relocations, programs.

The order is libbpf's ``bpf_object_load``: BTF first (maps and programs refer to its type
ids), then every map (programs embed map descriptors), then global data written and frozen,
then each program relocated and verified, and last the ``.values = {...}`` slots of
prog arrays (which need program descriptors).  Everything the kernel hands out is recorded
in one :class:`KernelObject` as soon as it exists, so that any failure part way closes what
was created and leaks no descriptor.
"""

from __future__ import annotations

import contextlib
import mmap as _mmap
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pybpf.abi.bpf import LibbpfPinType, MapType, ProgType
from pybpf.core import TargetBtf, relocate_object
from pybpf.errors import KernelError, LoadError
from pybpf.kernel.btf import btf_load
from pybpf.kernel.fd import Fd
from pybpf.kernel.fs import BPFFS, ensure_bpffs
from pybpf.kernel.maps import map_get_info_by_fd, map_update_elem
from pybpf.kernel.mmap import map_mmap
from pybpf.kernel.objs import obj_get, obj_pin
from pybpf.load.btf_sanitize import BtfFeatures, KernelBtf, kernel_btf
from pybpf.load.kconfig import kconfig_image
from pybpf.load.ksyms import is_kernel_extern, resolve_ksyms
from pybpf.load.maps import create_map, effective_max_entries, populate_global_data
from pybpf.load.program_image import Resolved, relocate_program
from pybpf.load.programs import load_program
from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.specs import ExternKind, MapKind, MapSpec
from pybpf.probes import kernel_features


def running_kernel_btf_features() -> BtfFeatures:
    """:class:`BtfFeatures` from :mod:`pybpf.probes`, one field per probe (run once per process)."""
    f = kernel_features()
    return BtfFeatures(
        func=f.btf_func,
        func_global=f.btf_func_global,
        datasec=f.btf_datasec,
        qmark_datasec=f.btf_qmark_datasec,
        float=f.btf_float,
        decl_tag=f.btf_decl_tag,
        type_tag=f.btf_type_tag,
        enum64=f.btf_enum64,
    )


@dataclass
class KernelObject:
    """Kernel-side state of a loaded object; :meth:`close` releases all of it.

    Maps and programs are keyed by their spec's ``name``.  ``mmaps`` holds the mappings of
    mmapable global-data maps; ``logs`` the verifier logs (non-empty with ``log_level``).
    """

    btf_fd: Fd | None = None
    btf: KernelBtf | None = None
    maps: dict[str, Fd] = field(default_factory=dict)
    mmaps: dict[str, _mmap.mmap] = field(default_factory=dict)
    programs: dict[str, Fd] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)
    """Maps found pinned (``LIBBPF_PIN_BY_NAME``) and reused rather than created."""
    pinned: list[Path] = field(default_factory=list)
    """Pins this load created (removed again if the load fails, as libbpf does)."""
    images: dict[str, bytes] = field(default_factory=dict)
    """Global-data images as loaded (``.kconfig``'s computed from the kernel config)."""

    def close(self) -> None:
        """Unmap and close everything; safe to call more than once."""
        for mapping in self.mmaps.values():
            # A live memoryview may still export it; the descriptors go regardless.
            with contextlib.suppress(BufferError):
                mapping.close()
        self.mmaps.clear()
        for fd in (*self.programs.values(), *self.maps.values()):
            fd.close()
        self.programs.clear()
        self.maps.clear()
        if self.btf_fd is not None:
            self.btf_fd.close()
            self.btf_fd = None


def check_externs(spec: ObjectSpec) -> None:
    """Refuse objects with externs a static link should have resolved."""
    for ext in spec.externs:
        if ext.kind in (ExternKind.VAR, ExternKind.MAP, ExternKind.FUNC) and not (
            is_kernel_extern(ext)
        ):
            raise LoadError(
                f"object '{spec.name}': extern {ext.kind.value} '{ext.name}' is unresolved; "
                "link the object with its definition first"
            )


def _load_btf(spec: ObjectSpec, state: KernelObject, features: BtfFeatures | None) -> None:
    btf = kernel_btf(spec, features if features is not None else running_kernel_btf_features())
    if btf is None:
        return
    try:
        state.btf_fd = btf_load(btf.data).fd
    except KernelError as exc:
        # As libbpf: BTF is optional for maps and programs; carry on without it.
        warnings.warn(f"object '{spec.name}': kernel refused its BTF, loading without: "
                      f"{exc}", RuntimeWarning, stacklevel=4)
        return
    state.btf = btf


def _global_image(spec: MapSpec, obj: ObjectSpec, images: Mapping[str, bytes]) -> bytes:
    if spec.kind is MapKind.KCONFIG:
        return kconfig_image(obj, spec.value_size)
    return bytes(images.get(spec.name, spec.initial_value)).ljust(spec.value_size, b"\0")


def _reuse_pinned(spec: MapSpec, path: Path) -> Fd | None:
    """libbpf's ``bpf_object__reuse_map``: the map pinned at ``path`` if it is compatible.

    Nothing pinned there: ``None`` (the map is created and pinned).  Something pinned but
    different (type, sizes, flags): a LoadError, never a silent second map.
    """
    if not path.exists():
        return None
    try:
        fd = obj_get(path)
    except KernelError as exc:
        raise LoadError(f"map '{spec.name}': cannot open pinned {path}: {exc}") from exc
    info = map_get_info_by_fd(fd)
    wanted = (int(spec.type), spec.key_size, spec.value_size, effective_max_entries(spec),
              int(spec.flags), spec.map_extra)  # fmt: skip
    found = (info.type, info.key_size, info.value_size, info.max_entries, info.map_flags,
             info.map_extra)  # fmt: skip
    if wanted != found:
        fd.close()
        raise LoadError(f"map '{spec.name}': pinned {path} is incompatible "
                        f"(type, key, value, max_entries, flags, extra): {found} != {wanted}")
    return fd


def _create_maps(
    obj: ObjectSpec,
    state: KernelObject,
    images: Mapping[str, bytes],
    pin_root: Path,
    map_memory: bool,
) -> None:
    # kconfig values are computed first: a missing strong CONFIG_ fails before any map exists
    global_images = {m.name: _global_image(m, obj, images) for m in obj.maps if m.is_internal}
    state.images = global_images
    for spec in obj.maps:
        pin_path = None
        if spec.pinning == LibbpfPinType.LIBBPF_PIN_BY_NAME:
            pin_path = ensure_bpffs(pin_root) / spec.name
            reused = _reuse_pinned(spec, pin_path)
            if reused is not None:
                state.maps[spec.name] = reused
                state.reused.add(spec.name)
                if map_memory and spec.is_internal and spec.mmapable:
                    frozen = spec.kind in (MapKind.RODATA, MapKind.KCONFIG)
                    state.mmaps[spec.name] = map_mmap(reused, spec.value_size, 1,
                                                      writable=not frozen)  # fmt: skip
                continue
        fd = create_map(spec, state.btf_fd, name=spec.kernel_name or spec.name)
        state.maps[spec.name] = fd
        if spec.is_internal:
            mapping = populate_global_data(spec, fd, global_images[spec.name], map_memory)
            if mapping is not None:
                state.mmaps[spec.name] = mapping
        if pin_path is not None:
            try:
                obj_pin(fd, pin_path)
            except KernelError as exc:
                raise LoadError(f"map '{spec.name}': pinning at {pin_path}: {exc}") from exc
            state.pinned.append(pin_path)


def _fill_slots(obj: ObjectSpec, state: KernelObject, kind: str) -> None:
    """Write ``.values = {...}`` initialisers: map fds into map-in-maps, prog fds into
    prog arrays."""
    for spec in obj.maps:
        if not spec.init_slots or spec.name in state.reused:
            continue
        is_prog_array = spec.type == MapType.PROG_ARRAY
        if (kind == "progs") != is_prog_array:
            continue
        table = state.programs if is_prog_array else state.maps
        for index, name in spec.init_slots:
            target = table.get(name)
            if target is None:
                if is_prog_array:
                    continue  # a program not loaded (autoload off) leaves its slot empty
                raise LoadError(f"map '{spec.name}': slot {index} names unknown map '{name}'")
            try:
                map_update_elem(
                    state.maps[spec.name],
                    index.to_bytes(4, "little"),
                    target.fileno().to_bytes(4, "little"),
                )
            except KernelError as exc:
                raise LoadError(f"map '{spec.name}': slot {index} <- '{name}': {exc}") from exc


def _relocate_core(
    obj: ObjectSpec, autoload: Mapping[str, bool] | None, btf_custom_path: str | Path | None
) -> ObjectSpec:
    """Apply CO-RE relocations in user space, against the running kernel's BTF (vmlinux and
    modules) or ``btf_custom_path`` (libbpf's option of that name, for kernels without BTF).

    Done here rather than left to the kernel: the kernel's own CO-RE (5.17+) matches
    candidates more strictly than libbpf (no 32-bit local enum for a 64-bit kernel enum), and
    kernels older than that have none.  Programs that will not load are skipped, as in libbpf.
    """
    if not any(p.core_relos for p in (*obj.programs, *obj.subprograms)):
        return obj
    overrides = autoload or {}
    skip = {p.name for p in obj.programs if not overrides.get(p.name, p.autoload)}
    target = (
        TargetBtf.from_path(btf_custom_path)
        if btf_custom_path is not None
        else TargetBtf.running_kernel()
    )
    return relocate_object(obj, target, skip=skip)


def load_object(
    obj: ObjectSpec,
    *,
    images: Mapping[str, bytes] | None = None,
    autoload: Mapping[str, bool] | None = None,
    log_level: int = 0,
    features: BtfFeatures | None = None,
    pin_root: Path = BPFFS,
    map_memory: bool = True,
    btf_custom_path: str | Path | None = None,
) -> KernelObject:
    """Create ``obj``'s maps and load its programs; all or nothing.

    ``images`` overrides global-data images by map name (the user's writes before load);
    ``autoload`` overrides which programs load (default: those whose section lacks ``?``).
    Maps declared ``LIBBPF_PIN_BY_NAME`` are reused from ``pin_root/<name>`` when pinned
    there (and compatible), else created and pinned there; pins outlive the object.
    ``map_memory`` mmaps mmapable global data into ``KernelObject.mmaps`` (callers that map
    the memory themselves, such as :class:`~pybpf.object.BpfObject`, turn it off).
    """
    check_externs(obj)
    obj = _relocate_core(obj, autoload, btf_custom_path)
    ksyms = resolve_ksyms(obj)  # before any kernel object exists: misses fail cheaply
    state = KernelObject()
    try:
        _load_btf(obj, state, features)
        _create_maps(obj, state, images or {}, pin_root, map_memory)
        _fill_slots(obj, state, "maps")
        kconfig = next((m.name for m in obj.maps if m.kind is MapKind.KCONFIG), None)
        resolved = Resolved(
            map_fds={name: fd.fileno() for name, fd in state.maps.items()},
            kconfig_map=kconfig,
            string_offset=state.btf.string_offset if state.btf is not None else None,
            ksyms=ksyms,
        )
        wanted = autoload or {}
        for prog in obj.programs:
            if not wanted.get(prog.name, prog.autoload):
                continue
            if prog.prog_type == ProgType.UNSPEC:
                raise LoadError(f"program '{prog.name}': section '{prog.section_name}' names "
                                "no program type; set its prog_type before load",
                                program=prog.name)  # fmt: skip
            code = relocate_program(obj, prog, resolved)
            fd, log = load_program(
                prog, code, license=obj.license, btf_fd=state.btf_fd, log_level=log_level
            )
            state.programs[prog.name] = fd
            state.logs[prog.name] = log
        _fill_slots(obj, state, "progs")
    except BaseException:
        for path in state.pinned:
            with contextlib.suppress(OSError):
                path.unlink()
        state.close()
        raise
    return state
