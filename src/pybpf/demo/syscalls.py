"""Names for the syscall numbers the demo shows (x86-64 numbering; others print numbers).

A short table rather than a parser of kernel headers: the demo must run on machines without
headers, and only needs the syscalls a Python process usually makes.
"""

from __future__ import annotations

import platform

_X86_64 = {
    0: "read", 1: "write", 2: "open", 3: "close", 4: "stat", 5: "fstat", 6: "lstat",
    7: "poll", 8: "lseek", 9: "mmap", 10: "mprotect", 11: "munmap", 12: "brk",
    13: "rt_sigaction", 14: "rt_sigprocmask", 16: "ioctl", 17: "pread64", 18: "pwrite64",
    20: "writev", 21: "access", 23: "select", 24: "sched_yield", 28: "madvise", 32: "dup",
    35: "nanosleep", 39: "getpid", 41: "socket", 44: "sendto", 45: "recvfrom", 56: "clone",
    57: "fork", 59: "execve", 60: "exit", 61: "wait4", 62: "kill", 63: "uname", 72: "fcntl",
    79: "getcwd", 89: "readlink", 96: "gettimeofday", 102: "getuid", 104: "getgid",
    107: "geteuid", 108: "getegid", 110: "getppid", 186: "gettid", 202: "futex",
    217: "getdents64", 228: "clock_gettime", 230: "clock_nanosleep", 231: "exit_group",
    232: "epoll_wait", 257: "openat", 262: "newfstatat", 270: "pselect6", 271: "ppoll",
    281: "epoll_pwait", 293: "pipe2", 302: "prlimit64", 318: "getrandom", 321: "bpf",
    332: "statx", 334: "rseq", 435: "clone3", 439: "faccessat2", 441: "epoll_pwait2",
}


def syscall_name(nr: int) -> str:
    """``getppid`` for 110 on x86-64; ``syscall 110`` where the number is not known."""
    if platform.machine() in ("x86_64", "amd64"):
        name = _X86_64.get(nr)
        if name is not None:
            return name
    return f"syscall {nr}"
