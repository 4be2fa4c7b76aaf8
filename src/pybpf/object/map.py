"""One map of a :class:`~pybpf.object.BpfObject`: settings before load, data and memory after.

A global-data map's image is the memory skeleton accessors read and write.  For mmapable
maps it is an anonymous ``mmap`` (not a ``bytearray``) so that its address is stable: once the
kernel map exists, :meth:`Map.bind_kernel_memory` maps it over those very pages (as libbpf
does), so accessors and ctypes views obtained before load see live kernel memory after it.  A
frozen map (``.rodata``, ``.kconfig``) can only be mapped read-only, and a write through a
writable Python buffer over read-only pages would crash the process, so its memory becomes a
separate read-only ``mmap`` object that refuses every write.  Closing the object releases the
memory: accessors raise, and pages that Python views still alias are swapped for zero pages
rather than left to the kernel map or unmapped.
"""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pybpf.abi.bpf import MapType
from pybpf.btf import Btf
from pybpf.btf.to_ctypes import CTypesBuilder
from pybpf.btf.value_codec import BytesCodec, ValueCodec, codec_for_btf, codec_for_ctype
from pybpf.errors import BpfError, MapValueError
from pybpf.obj import MapSpec
from pybpf.obj.specs import MapKind
from pybpf.object.map_view import Codecs, MapAccess, MapView
from pybpf.object.strict import StrictAttributes

if TYPE_CHECKING:
    # Annotation only: BpfObject builds its maps and programs, so a run-time import would
    # be a cycle; the public ``obj`` attribute keeps its exact type for users' mypy.
    from pybpf.kernel.fd import Fd
    from pybpf.load.maps import MapHandle
    from pybpf.object.bpf_object import BpfObject


Memory = bytearray | mmap.mmap | bytes
"""What holds a global-data map's bytes in the process: image, mapping, or a copy of the value."""


class Map(StrictAttributes, MapAccess[Any, Any]):
    """One map of a :class:`BpfObject`: its spec plus settings changeable before load.

    Once loaded it is a mapping from keys to values typed by the map's BTF (see
    :class:`~pybpf.object.map_view.MapAccess`); :attr:`raw` and :meth:`typed` view it otherwise.
    """

    _PUBLIC_FIELDS = frozenset({"obj", "spec"})

    def __init__(self, obj: BpfObject, spec: MapSpec) -> None:
        self.obj = obj
        self.spec = spec
        self._memory: Memory | None = _new_image(spec)
        self._before_load: Memory | None = None
        self._live = False
        self._max_entries = spec.max_entries
        self._fd: Fd | None = None
        self._handle: MapHandle | None = None
        self._codec_pair: Codecs | None = None
        self._raw_view: MapView[bytes, bytes] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def fd(self) -> int | None:
        """The map's file descriptor once loaded (``None`` before load and after close).

        The descriptor belongs to the object's kernel state, which closes it; the map only
        refers to it.
        """
        fd = self._fd
        return None if fd is None else fd.fileno()

    # ------------------------------------------------------------------ binding (load, close)

    def _bind(self, fd: Fd, spec: MapSpec) -> None:
        """Take the kernel map the load created for this map (``spec``: as it was loaded).

        Global data also gets its memory bound (:meth:`bind_kernel_memory`); the object
        settles it once every map is bound, or unbinds them all if one fails.
        """
        # The loader's element access; a load has imported it already.
        from pybpf.load.maps import MapHandle

        self._fd = fd
        self._handle = MapHandle(fd, spec)
        if self.is_internal:
            self.bind_kernel_memory(fd.fileno())

    def _unbind(self) -> None:
        """Forget the kernel map (a failed load, or close): accessors raise from now on."""
        self._fd, self._handle = None, None

    # ------------------------------------------------------------------ data (after load)

    @property
    def handle(self) -> MapHandle:
        """The loaded map's element operations; an error before load or after close."""
        if self._handle is None:
            state = "closed" if self.obj._closed else "not loaded"
            raise BpfError(f"map '{self.name}': object '{self.obj.name}' is {state}")
        return self._handle

    # Keys and values: the mapping protocol of MapAccess, typed by _codecs().

    def _codecs(self) -> Codecs:
        """Codecs from the map's BTF key and value types; bytes where it has none."""
        if self._codec_pair is None:
            spec, btf = self.spec, self.obj.spec.btf
            # A global-data map's one value is its section image; skeletons type its variables.
            builder = CTypesBuilder(btf) if btf is not None and not self.is_internal else None
            self._codec_pair = Codecs(
                self.name,
                _codec(btf, builder, spec.key_type_id, spec.key_size),
                _codec(btf, builder, spec.value_type_id, spec.value_size),
            )
        return self._codec_pair

    @property
    def raw(self) -> MapView[bytes, bytes]:
        """This map with bytes keys and values, whatever its BTF says."""
        if self._raw_view is None:
            key, value = BytesCodec(self.spec.key_size), BytesCodec(self.spec.value_size)
            self._raw_view = MapView(self, key, value)
        return self._raw_view

    def typed(self, key: Any = None, value: Any = None) -> MapView[Any, Any]:
        """This map seen through explicit ctypes types (``None``: keep the BTF's, or bytes).

        For maps without BTF types, or to decode into your own ``ctypes.Structure``.
        """
        btf = self._codecs()
        btf_key, btf_value, what = btf.key, btf.value, f"map '{self.name}'"
        return MapView(
            self,
            btf_key if key is None else _explicit(key, self.spec.key_size, f"{what} key"),
            btf_value if value is None else _explicit(value, self.spec.value_size, f"{what} value"),
        )

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
        # The readers (and their kernel helpers) are only needed by programs that stream events.
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
        """Make :attr:`memory` the kernel map's memory (:meth:`_bind` calls this after creation).

        Writable global data (``.data``, ``.bss``, custom ``.data.*``) is mapped over the image's
        own pages, so nothing that points into the image goes stale.  A frozen map can only be
        mapped read-only, and writable Python views of the image cannot be made read-only, so
        it gets a new, read-only mapping; the image is kept until :meth:`settle_kernel_memory`.
        """
        # mmap helpers: only a load needs them, so that importing pybpf.object stays light.
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
        # Only memory a load mapped needs retiring; see bind_kernel_memory.
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


def _codec(btf: Btf | None, builder: CTypesBuilder | None, type_id: int, size: int) -> ValueCodec:
    """The BTF type's codec when it describes exactly ``size`` bytes, else bytes."""
    if btf is None or builder is None or not type_id:
        return BytesCodec(size)
    codec = codec_for_btf(btf, type_id, builder)
    return codec if codec.size == size else BytesCodec(size)


def _explicit(ctype: Any, size: int, what: str) -> ValueCodec:
    codec = codec_for_ctype(ctype)
    if codec.size != size:
        raise MapValueError(f"{what}: {ctype.__name__} is {codec.size} bytes, the map's are {size}")
    return codec
