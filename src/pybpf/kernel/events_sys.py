"""Kernel side of event streaming: mapping ring buffers and perf rings, eventfds, online CPUs.

:mod:`pybpf.events` reads records straight out of shared memory, so the only system calls it
needs are the ``mmap`` of a map (or perf event) and the wake-up descriptors around epoll.  They
live here, beside the rest of :mod:`pybpf.kernel`, so that errors come back as the same
:class:`~pybpf.errors.KernelError` naming the operation, and so that ``events`` never needs to
know the kernel's page-offset conventions.

Layouts (``kernel/bpf/ringbuf.c`` and ``include/uapi/linux/perf_event.h``):

* ``BPF_MAP_TYPE_RINGBUF``: page 0 holds ``consumer_pos`` and is the only writable page; page 1
  holds ``producer_pos``; the data area follows and is mapped **twice in a row** by the kernel,
  so a record that wraps past the end of the ring is still contiguous in memory.
* ``BPF_MAP_TYPE_USER_RINGBUF``: the same pages with the roles swapped: user space writes the
  producer page and the data, the kernel writes ``consumer_pos``.
* perf ring: one metadata page (``struct perf_event_mmap_page``) then ``2^n`` data pages,
  mapped writable so that ``data_tail`` can be published (and the kernel stops overwriting
  unread data, counting lost samples instead).
"""

from __future__ import annotations

import contextlib
import errno
import mmap as _mmap
import os
from pathlib import Path

from pybpf.errors import kernel_error

from .fd import Fd, FdLike, raw_fd
from .system import page_size, parse_cpu_list

ONLINE_CPUS = Path("/sys/devices/system/cpu/online")

# struct perf_event_mmap_page: data_head/data_tail are u64 at fixed offsets (after 1 KiB of
# self-monitoring fields and padding that the uapi reserves).
PERF_MMAP_DATA_HEAD = 1024
PERF_MMAP_DATA_TAIL = 1032


def _map(fd: FdLike, size: int, offset: int, prot: int, what: str) -> _mmap.mmap:
    try:
        return _mmap.mmap(raw_fd(fd), size, flags=_mmap.MAP_SHARED, prot=prot, offset=offset)
    except OSError as exc:
        raise kernel_error("mmap", exc.errno or errno.EINVAL, f"{what}: {size} bytes") from None


def ringbuf_mmap(fd: FdLike, max_entries: int, what: str) -> tuple[_mmap.mmap, _mmap.mmap]:
    """Map a RINGBUF for consuming: (consumer page RW, producer page + 2x data RO)."""
    page = page_size()
    rw = _mmap.PROT_READ | _mmap.PROT_WRITE
    consumer = _map(fd, page, 0, rw, f"{what} consumer page")
    try:
        producer = _map(fd, page + 2 * max_entries, page, _mmap.PROT_READ, f"{what} data")
    except BaseException:
        consumer.close()
        raise
    return consumer, producer


def user_ringbuf_mmap(
    fd: FdLike, max_entries: int, what: str
) -> tuple[_mmap.mmap, _mmap.mmap]:
    """Map a USER_RINGBUF for producing: (consumer page RO, producer page + 2x data RW)."""
    page = page_size()
    rw = _mmap.PROT_READ | _mmap.PROT_WRITE
    consumer = _map(fd, page, 0, _mmap.PROT_READ, f"{what} consumer page")
    try:
        producer = _map(fd, page + 2 * max_entries, page, rw, f"{what} data")
    except BaseException:
        consumer.close()
        raise
    return consumer, producer


def perf_ring_mmap(perf_fd: FdLike, data_pages: int, what: str) -> _mmap.mmap:
    """Map one perf event's ring: the metadata page plus ``data_pages`` (a power of two)."""
    if data_pages <= 0 or data_pages & (data_pages - 1):
        raise ValueError(f"perf ring size must be a power-of-two page count, not {data_pages}")
    rw = _mmap.PROT_READ | _mmap.PROT_WRITE
    return _map(perf_fd, (1 + data_pages) * page_size(), 0, rw, what)


def eventfd() -> Fd:
    """A non-blocking, close-on-exec eventfd: how ``close()`` wakes a thread blocked in epoll."""
    try:
        fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    except OSError as exc:
        raise kernel_error("eventfd", exc.errno or errno.EINVAL) from None
    return Fd.adopt(fd, "eventfd")


def eventfd_signal(fd: FdLike) -> None:
    """Make ``fd`` readable (adds 1; saturation cannot happen for a wake-up flag)."""
    with contextlib.suppress(BlockingIOError):  # counter full: it is readable already
        os.eventfd_write(raw_fd(fd), 1)


def online_cpus() -> tuple[int, ...]:
    """CPUs online now (not cached: CPUs come and go); an offline CPU has no perf ring."""
    try:
        return tuple(parse_cpu_list(ONLINE_CPUS.read_text()))
    except OSError:
        return tuple(range(os.cpu_count() or 1))
