"""The user-facing BPF object: a spec plus the state a loader attaches to it.

:class:`BpfObject` follows libbpf's lifecycle: *opened* (parsed; map images and sizes can
still be changed) and then *loaded* (kernel objects exist).  The transition happens **in
place**, so that everything holding the object or one of its maps or programs (a skeleton,
or a subskeleton bound to someone else's object) stays valid across ``load()``.  This module
holds the opened half; the loader fills in ``fd`` fields and flips ``loaded``.

A global-data map's image is the memory skeleton accessors read and write.  For mmapable
maps it is an anonymous ``mmap`` (not a ``bytearray``) so that its address is stable: after the
loader has created the kernel map it calls :meth:`Map.bind_kernel_memory`, which maps the kernel
map over those very pages (as libbpf does), so accessors and ctypes views obtained before load
see live kernel memory after it.  A frozen map (``.rodata``, ``.kconfig``) can only be mapped
read-only, and a write through a writable Python buffer over read-only pages would crash the
process, so its memory becomes a separate read-only ``mmap`` object that refuses every write.
Closing the object releases the memory: accessors raise, and pages that Python views still
alias are swapped for zero pages rather than left to the kernel map or unmapped.
"""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pybpf.abi.bpf import AttachType, MapType, ProgType
from pybpf.closing import Closing
from pybpf.elf import ElfFile
from pybpf.errors import BpfError, ObjectError
from pybpf.load.links import Link, LinkSet
from pybpf.obj import MapSpec, ObjectSpec, ProgramSpec
from pybpf.obj.specs import MapKind

if TYPE_CHECKING:
    from pybpf.kernel.progs import TestRunResult
    from pybpf.load.loader import KernelObject
    from pybpf.load.maps import MapHandle


Memory = bytearray | mmap.mmap | bytes
"""What holds a global-data map's bytes in the process: image, mapping, or a copy of the value."""


class Map:
    """One map of a :class:`BpfObject`: its spec plus settings changeable before load."""

    def __init__(self, obj: BpfObject, spec: MapSpec) -> None:
        self.obj = obj
        self.spec = spec
        self._memory: Memory | None = _new_image(spec)
        self._before_load: Memory | None = None
        self._live = False
        self._max_entries = spec.max_entries
        self.fd: int | None = None
        """The map's file descriptor once loaded (set by the loader)."""
        self._handle: MapHandle | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    # ------------------------------------------------------------------ data (after load)

    @property
    def handle(self) -> MapHandle:
        """The loaded map's element operations; an error before load or after close."""
        if self._handle is None:
            state = "closed" if self.obj._closed else "not loaded"
            raise BpfError(f"map '{self.name}': object '{self.obj.name}' is {state}")
        return self._handle

    def lookup(self, key: object) -> bytes | list[bytes] | None:
        """The value at ``key`` (bytes, int or ctypes value); per-CPU maps give one per CPU."""
        return self.handle.lookup(key)

    def update(self, key: object, value: object, flags: int = 0) -> None:
        """Store ``value`` at ``key`` (``flags``: BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK)."""
        self.handle.update(key, value, flags)

    def delete(self, key: object) -> bool:
        """Remove ``key``; False if it was not there."""
        return self.handle.delete(key)

    def keys(self) -> Iterator[bytes]:
        return self.handle.keys()

    def items(self) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        return self.handle.items()

    def lookup_batch(self, count: int = 256) -> list[tuple[bytes, bytes | list[bytes]]]:
        """Every entry, fetched ``count`` at a time with BPF_MAP_LOOKUP_BATCH."""
        return self.handle.lookup_batch(count)

    def update_batch(
        self, keys: Sequence[object], values: Sequence[object], flags: int = 0
    ) -> int:
        """Write ``keys[i] -> values[i]`` with one BPF_MAP_UPDATE_BATCH; returns the count."""
        return self.handle.update_batch(keys, values, flags)

    def freeze(self) -> None:
        """Make the map read-only for user space (BPF_MAP_FREEZE)."""
        self.handle.freeze()

    def reader(self, callback: Callable[..., object] | None = None, **options: Any) -> Any:
        """This map's event reader in one call, chosen by map type.

        A ring buffer gives a :class:`~pybpf.events.RingBuffer`, a perf event array a
        :class:`~pybpf.events.PerfBuffer` and a user ring buffer a
        :class:`~pybpf.events.UserRingBuffer` (which takes no callback).  ``options`` go to
        the reader (``event_type="struct event"``, ``pages=`` ...).
        """
        from pybpf import events

        self.handle  # noqa: B018 - a clear error before load
        if self.type == MapType.RINGBUF:
            return events.RingBuffer(self, callback, **options)
        if self.type == MapType.PERF_EVENT_ARRAY:
            if callback is None:
                raise BpfError(f"map '{self.name}': a perf buffer needs a callback")
            return events.PerfBuffer(self, callback, **options)
        if self.type == MapType.USER_RINGBUF:
            if callback is not None:
                raise BpfError(f"map '{self.name}': a user ring buffer is written, not read")
            return events.UserRingBuffer(self, **options)
        raise BpfError(f"map '{self.name}' is a {self.type.name} map, not an event stream")

    @property
    def section_name(self) -> str:
        return self.spec.section_name

    @property
    def type(self) -> MapType:
        return self.spec.type

    @property
    def key_size(self) -> int:
        return self.spec.key_size

    @property
    def value_size(self) -> int:
        return self.spec.value_size

    @property
    def max_entries(self) -> int:
        return self._max_entries

    @max_entries.setter
    def max_entries(self, value: int) -> None:
        """Like ``bpf_map__set_max_entries``: only before load."""
        self.obj._check_not_loaded(f"set max_entries of map '{self.name}'")
        if not 0 <= value <= 0xFFFFFFFF:
            raise BpfError(f"map '{self.name}': max_entries {value} out of range")
        self._max_entries = value

    @property
    def is_internal(self) -> bool:
        return self.spec.is_internal

    @property
    def initial_value(self) -> bytes:
        return bytes(self.memory)

    @initial_value.setter
    def initial_value(self, value: bytes) -> None:
        """Like ``bpf_map__set_initial_value``: same size, before load, global data only."""
        self.obj._check_not_loaded(f"set the initial value of map '{self.name}'")
        if not self.spec.is_internal:
            raise BpfError(f"map '{self.name}' is not a global-data map")
        image = self.memory
        if isinstance(image, bytes) or len(value) != len(image):
            raise BpfError(
                f"map '{self.name}': initial value is {len(value)} bytes, expected {len(image)}"
            )
        image[:] = value

    @property
    def image(self) -> Memory:
        """The same bytes as :attr:`memory`; before load, the initial value being written."""
        return self.memory

    @property
    def memory(self) -> Memory:
        """The section's bytes: the initial image before load, live map memory after.

        Writable global data keeps the same object across load (only what backs its pages
        changes).  A frozen map (``.rodata``, ``.kconfig``) becomes a read-only mapping of the
        kernel map, and a map that cannot be mapped reads as a fresh copy of its value.  Once
        the object is closed this raises instead of handing out memory that is gone.
        """
        memory = self._memory
        if memory is None:
            return self._memory_elsewhere()
        return memory

    def _memory_elsewhere(self) -> bytes:
        if self._handle is not None and self.obj.loaded:
            return self._kernel_value()
        raise BpfError(f"map '{self.name}': object '{self.obj.name}' is closed, its memory "
                       "released")  # fmt: skip

    def _kernel_value(self) -> bytes:
        """The value at key 0, looked up (global data the process does not map)."""
        value = self.handle.lookup(0) if self.value_size else b""
        if not isinstance(value, bytes):
            raise BpfError(f"map '{self.name}': no value at key 0")
        return value

    @property
    def memory_is_live(self) -> bool:
        """Whether views may alias :attr:`memory` and see every later change.

        True before load and for writable global data mapped from the kernel.  False for
        frozen maps (their memory is read-only, so views are copies: a write through a view
        would otherwise fault), for maps not mapped into the process, and once closed.
        """
        if self._memory is None:
            return False
        return not self.obj.loaded or self._live

    @property
    def _frozen(self) -> bool:
        return self.spec.kind in (MapKind.RODATA, MapKind.KCONFIG)

    def write_refusal(self) -> str | None:
        """Why the section cannot be written now (``None`` when it can)."""
        if self.obj._closed:
            return f"object '{self.obj.name}' is closed"
        if self.spec.kind is MapKind.KCONFIG:
            return ".kconfig values come from the running kernel's configuration (read-only)"
        if self.obj.loaded and self.spec.kind is MapKind.RODATA:
            return f"{self.section_name} is frozen once the object is loaded"
        if self.obj.loaded and not self._live:
            return "this map's memory is not mapped into the process"
        return None

    def bind_kernel_memory(self, fd: int) -> None:
        """Make :attr:`memory` the kernel map's memory (the loader calls this after creation).

        Writable global data (``.data``, ``.bss``, custom ``.data.*``) is mapped over the image's
        own pages, so nothing that points into the image goes stale.  A frozen map can only be
        mapped read-only, and writable Python views of the image cannot be made read-only, so
        it gets a new, read-only mapping; the image is kept until :meth:`settle_kernel_memory`.
        """
        from pybpf.kernel.mmap import map_read_only
        from pybpf.kernel.remap import remap_over

        image = self._memory
        if self._frozen:
            if isinstance(image, mmap.mmap):
                loaded: Memory = map_read_only(fd, len(image))
            else:
                loaded = self._kernel_value()
            self._before_load, self._memory = image, loaded
        elif isinstance(image, mmap.mmap):
            remap_over(image, fd, writable=True)
            self._live = True
        else:
            self._before_load, self._memory = image, None

    def settle_kernel_memory(self, loaded: bool) -> None:
        """Finish :meth:`bind_kernel_memory` once the whole load succeeded or failed.

        On failure the pre-load image comes back.  On success it is released; if views taken
        before load still hold it, it is left to them with the loaded content, so that what
        they read is what the kernel holds.
        """
        before, self._before_load = self._before_load, None
        if not loaded:
            self._live = False
            if before is not None:
                if isinstance(self._memory, mmap.mmap):
                    self._memory.close()
                self._memory = before
            return
        if before is None:
            return
        current = self._memory
        if current is not None and isinstance(before, mmap.mmap | bytearray):
            content = bytes(current)
            before[: len(content)] = content
        if isinstance(before, mmap.mmap):
            with contextlib.suppress(BufferError):  # views still alias it: theirs now
                before.close()

    def release_memory(self) -> None:
        """Drop the memory (on close); every accessor raises from now on.

        A mapping still aliased by Python views cannot be unmapped yet, so its pages are
        replaced by zero pages: the kernel map is released all the same and the views read
        harmless memory instead of the map's or unmapped memory.
        """
        from pybpf.kernel.remap import retire_pages

        memory, self._memory = self._memory, None
        self._before_load = None
        self._live = False
        if isinstance(memory, mmap.mmap):
            try:
                memory.close()
            except BufferError:
                retire_pages(memory)

    def __repr__(self) -> str:
        return f"<Map {self.name} {self.type.name} section={self.section_name}>"


def _new_image(spec: MapSpec) -> bytearray | mmap.mmap:
    """A stable-address image for mmapable global data, a plain bytearray otherwise."""
    data = spec.initial_value
    if not spec.mmapable or not data:
        return bytearray(data)
    image = mmap.mmap(-1, len(data), flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    image[:] = data
    return image


_CONTEXT_ONLY_TEST_RUN = frozenset(
    {ProgType.RAW_TRACEPOINT, ProgType.RAW_TRACEPOINT_WRITABLE, ProgType.SYSCALL}
)
"""Program types whose BPF_PROG_TEST_RUN takes a context and nothing else."""


class Program:
    """One entry-point program of a :class:`BpfObject`."""

    def __init__(self, obj: BpfObject, spec: ProgramSpec) -> None:
        self.obj = obj
        self.spec = spec
        self.autoload = spec.autoload
        self._prog_type = spec.prog_type
        self._expected_attach_type = spec.expected_attach_type
        self.fd: int | None = None
        """The program's file descriptor once loaded (set by the loader)."""
        self.log = ""
        """The verifier log of the load (empty unless a log level was asked for)."""
        self.links = LinkSet()
        """Links made through this program; closed with the object."""

    @property
    def name(self) -> str:
        return self.spec.name

    def _loaded_fd(self) -> int:
        if self.fd is None:
            state = "closed" if self.obj._closed else "not loaded"
            if self.obj.loaded and not self.autoload:
                state = "not loaded (autoload is off)"
            raise BpfError(f"program '{self.name}' is {state}")
        return self.fd

    def auto_attach(self) -> Link | None:
        """Attach as the section name says (``tp/cat/name``, ``raw_tp/name``, ``uprobe/...``);
        ``None`` when the section names no target (xdp, tc, cgroup, perf_event...)."""
        from pybpf.load.lifecycle import auto_attach

        return auto_attach(self)

    def attach(self) -> Link:
        """Attach by section name like ``bpf_program__attach``; an error if it names no target."""
        link = self.auto_attach()
        if link is None:
            raise BpfError(
                f"program '{self.name}': section '{self.section_name}' names no attach target; "
                "use attach_xdp(), attach_cgroup(), attach_perf_event() or another explicit form"
            )
        return link

    def test_run(
        self,
        data_in: bytes | None = None,
        *,
        ctx_in: bytes | None = None,
        repeat: int = 1,
        flags: int = 0,
        cpu: int = 0,
    ) -> TestRunResult:
        """Run the program in the kernel on ``data_in``/``ctx_in`` (BPF_PROG_TEST_RUN).

        Raw tracepoint and ``syscall`` programs run once on ``ctx_in`` alone (their arguments)
        with no output buffers and no repeat count, which is all the kernel accepts for them.
        """
        from pybpf.kernel.progs import prog_test_run

        if self.prog_type in _CONTEXT_ONLY_TEST_RUN:
            if data_in is not None:
                raise BpfError(
                    f"program '{self.name}' ({self.prog_type.name}) runs on ctx_in only"
                )
            return prog_test_run(
                self._loaded_fd(),
                None,
                ctx_in=ctx_in,
                data_size_out=0,
                ctx_size_out=0,
                repeat=0,
                flags=flags,
                cpu=cpu,
            )
        return prog_test_run(
            self._loaded_fd(), data_in, ctx_in=ctx_in, repeat=repeat, flags=flags, cpu=cpu
        )

    def attach_tracepoint(self, category: str, name: str, cookie: int = 0) -> Link:
        from pybpf.load import attach

        return self.links.add(attach.attach_tracepoint(self._loaded_fd(), category, name, cookie))

    def attach_raw_tracepoint(self, name: str) -> Link:
        from pybpf.load import attach

        return self.links.add(attach.attach_raw_tracepoint(self._loaded_fd(), name))

    def attach_uprobe(
        self,
        binary: str,
        offset_or_func: int | str,
        *,
        retprobe: bool = False,
        pid: int = -1,
        cookie: int = 0,
    ) -> Link:
        """A u(ret)probe on a function name (``func`` or ``func+0x10``) or file offset."""
        from pybpf.load import attach

        link = attach.attach_uprobe(
            self._loaded_fd(), binary, offset_or_func, retprobe=retprobe, pid=pid, cookie=cookie
        )
        return self.links.add(link)

    def attach_kprobe(
        self, func: str, offset: int = 0, *, retprobe: bool = False, cookie: int = 0
    ) -> Link:
        from pybpf.load import attach

        link = attach.attach_kprobe(
            self._loaded_fd(), func, offset, retprobe=retprobe, cookie=cookie
        )
        return self.links.add(link)

    def attach_perf_event(self, perf_event_fd: int, cookie: int = 0) -> Link:
        from pybpf.load import attach

        return self.links.add(attach.attach_perf_event(self._loaded_fd(), perf_event_fd, cookie))

    def attach_xdp(self, ifindex: int, flags: int = 0) -> Link:
        from pybpf.load import attach

        return self.links.add(attach.attach_xdp(self._loaded_fd(), ifindex, flags))

    def attach_cgroup(self, cgroup_fd: int, attach_type: AttachType | int | None = None) -> Link:
        """Attach to the cgroup open as ``cgroup_fd``; the type defaults to the section's."""
        from pybpf.load import attach

        kind = attach_type if attach_type is not None else self.expected_attach_type
        if kind is None:
            raise BpfError(f"program '{self.name}': no cgroup attach type known; pass one")
        return self.links.add(attach.attach_cgroup(self._loaded_fd(), cgroup_fd, kind))

    @property
    def section_name(self) -> str:
        return self.spec.section_name

    @property
    def prog_type(self) -> ProgType:
        return self._prog_type

    @prog_type.setter
    def prog_type(self, value: ProgType) -> None:
        """Like ``bpf_program__set_type``, for sections libbpf cannot type."""
        self.obj._check_not_loaded(f"set the type of program '{self.name}'")
        self._prog_type = value

    @property
    def expected_attach_type(self) -> AttachType | None:
        return self._expected_attach_type

    @expected_attach_type.setter
    def expected_attach_type(self, value: AttachType | None) -> None:
        self.obj._check_not_loaded(f"set the attach type of program '{self.name}'")
        self._expected_attach_type = value

    def __repr__(self) -> str:
        return f"<Program {self.name} {self.prog_type.name} section={self.section_name}>"


class BpfObject(Closing):
    """An opened (and, once the loader has run, loaded) BPF object."""

    def __init__(self, spec: ObjectSpec) -> None:
        self.spec = spec
        self.maps: list[Map] = [Map(self, m) for m in spec.maps]
        self.programs: list[Program] = [Program(self, p) for p in spec.programs]
        self.loaded = False
        """Set by the loader once kernel objects exist; settings are frozen from then on."""
        self._closed = False
        self._kernel: KernelObject | None = None

    @classmethod
    def open(cls, source: str | Path | bytes, name: str | None = None) -> BpfObject:
        """Open an object file (a path) or image (bytes), like ``bpf_object__open``."""
        if isinstance(source, bytes | bytearray | memoryview):
            spec = ObjectSpec.from_elf(ElfFile.from_bytes(bytes(source)), name)
        else:
            spec = ObjectSpec.from_path(source, name)
        return cls(spec)

    @property
    def name(self) -> str:
        return self.spec.name

    def _check_not_loaded(self, what: str) -> None:
        if self.loaded:
            raise BpfError(f"object '{self.name}': cannot {what} after load")

    def load(
        self, *, log_level: int = 0, btf_custom_path: str | Path | None = None
    ) -> BpfObject:
        """Create the maps and load the programs (``bpf_object__load``), in place.

        CO-RE relocations are resolved against the running kernel's BTF, or against
        ``btf_custom_path`` (a BTF file, e.g. from ``pybpf gen min_core_btf``) when given.
        On failure nothing is left behind (no descriptor, no map) and the object stays
        opened.  A verifier rejection raises :class:`~pybpf.LoadError` with the program name
        and the verifier log.
        """
        from pybpf.load.lifecycle import load

        if self._closed:
            raise BpfError(f"object '{self.name}' is closed")
        self._kernel = load(self, log_level=log_level, btf_custom_path=btf_custom_path)
        return self

    def attach(self) -> list[Link]:
        """Auto-attach every loaded program whose section names its target; all or nothing."""
        from pybpf.load.lifecycle import attach_all

        if not self.loaded:
            raise BpfError(f"object '{self.name}' is not loaded")
        return attach_all(self)

    def close(self) -> None:
        """Detach every link, close every descriptor, unmap global data; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.loaded or self._kernel is not None:
            from pybpf.load.lifecycle import close

            close(self, self._kernel)
        else:
            for m in self.maps:
                m.release_memory()
        self._kernel = None

    def map(self, name: str) -> Map:
        """The map called ``name``, else the global-data map of ELF section ``name``."""
        for m in self.maps:
            if m.name == name:
                return m
        for m in self.maps:
            if m.is_internal and m.section_name == name:
                return m
        raise ObjectError(f"no map named '{name}'", file=self.spec.path or self.name)

    def program(self, name: str) -> Program:
        for p in self.programs:
            if p.name == name:
                return p
        raise ObjectError(f"no program named '{name}'", file=self.spec.path or self.name)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "loaded" if self.loaded else "opened"
        return (
            f"<BpfObject {self.name} ({state}): {len(self.maps)} maps, "
            f"{len(self.programs)} programs>"
        )
