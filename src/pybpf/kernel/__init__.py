"""pybpf.kernel: the only package that talks to the kernel.

A thin, typed layer over ``bpf(2)``, ``perf_event_open(2)``, their ioctls and ``mmap``;
structures keep the kernel's names and the numbers come from :mod:`pybpf.abi`.  Every call
goes through one door (:mod:`.syscall`), which turns errno into a
:class:`~pybpf.errors.KernelError` naming the command; every created descriptor comes back as
an owned :class:`~.fd.Fd`.

Modules, one job each:

* :mod:`.attrs`, :mod:`.infos` - ``union bpf_attr`` variants and ``bpf_*_info`` layouts;
* :mod:`.syscall`, :mod:`.fd`, :mod:`.buffers` - the door, descriptor ownership, pointers;
* :mod:`.maps`, :mod:`.progs`, :mod:`.btf`, :mod:`.objs`, :mod:`.links` - the commands;
* :mod:`.verifier` - load-with-log policy and the load errors carrying the verifier log;
* :mod:`.perf`, :mod:`.fs`, :mod:`.mmap` - perf events, bpffs/tracefs, mapped arrays;
* :mod:`.system` - machine facts (the feature probes sit above, in :mod:`pybpf.probes`).
"""

from .fd import Fd, FdLike
from .verifier import BtfLoadError, Loaded, ProgLoadError

__all__ = ["BtfLoadError", "Fd", "FdLike", "Loaded", "ProgLoadError"]
