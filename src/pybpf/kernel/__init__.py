"""pybpf.kernel: the only package that talks to the kernel.

A thin, typed layer over ``bpf(2)``, ``perf_event_open(2)``, their ioctls and ``mmap``;
structures and constants keep the kernel's names.  Every call goes through one door
(:mod:`.syscall`), which turns errno into a :class:`~pybpf.errors.KernelError` naming the
command; every created descriptor comes back as an owned :class:`~.fd.Fd`.

Modules, one job each:

* :mod:`.constants` - uapi enums and flags (pure data);
* :mod:`.attrs`, :mod:`.infos` - ``union bpf_attr`` variants and ``bpf_*_info`` layouts;
* :mod:`.syscall`, :mod:`.fd`, :mod:`.buffers` - the door, descriptor ownership, pointers;
* :mod:`.maps`, :mod:`.progs`, :mod:`.btf`, :mod:`.objs`, :mod:`.links` - the commands;
* :mod:`.verifier` - load-with-log policy and the load errors carrying the verifier log;
* :mod:`.perf`, :mod:`.fs`, :mod:`.mmap` - perf events, bpffs/tracefs, mapped arrays;
* :mod:`.system`, :mod:`.features` - machine facts and cached kernel feature probes;
* :mod:`.insn` - a tiny instruction encoder for probes and tests.
"""

from .fd import Fd, FdLike
from .verifier import BtfLoadError, Loaded, ProgLoadError

__all__ = ["BtfLoadError", "Fd", "FdLike", "Loaded", "ProgLoadError"]
