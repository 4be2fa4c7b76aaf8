"""Streaming events out of BPF programs: ring buffers, perf buffers, user ring buffers.

* :class:`RingBuffer` consumes ``BPF_MAP_TYPE_RINGBUF`` maps (``bpf_ringbuf_output`` /
  ``reserve``/``submit``), by callback, iteration, batches or asyncio;
* :class:`PerfBuffer` consumes ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` maps
  (``bpf_perf_event_output``), one perf ring per CPU, with lost-sample counts;
* :class:`UserRingBuffer` produces into ``BPF_MAP_TYPE_USER_RINGBUF`` maps, which programs
  drain with ``bpf_user_ringbuf_drain``.

Everything reads and writes the kernel's shared memory directly (``mmap``); the only system
calls in the steady state are the ``epoll_wait`` of ``poll()``.
"""

from pybpf.errors import ClosedError as ClosedError
from pybpf.errors import EventError as EventError
from pybpf.errors import MapTypeError as MapTypeError

from .batch import RecordBatch
from .perfbuf import PerfBuffer
from .ringbuf import RingBuffer
from .typed import record_bytes, record_size
from .user_ringbuf import Reservation, UserRingBuffer

__all__ = [
    "ClosedError",
    "EventError",
    "MapTypeError",
    "PerfBuffer",
    "RecordBatch",
    "Reservation",
    "RingBuffer",
    "UserRingBuffer",
    "record_bytes",
    "record_size",
]
