"""The pybpf error tree: every error class pybpf raises on purpose is defined here.

Every failure pybpf reports is a :class:`BpfError`, so ``except BpfError`` catches all of them
and nothing else.  Parsing errors carry *where* the problem is (file, section, offset) so that a
user holding a corrupt or unexpected object can find the bytes at fault without a debugger;
kernel errors carry the ``bpf()`` command and errno.  The modules that raise an error also
re-export it under its old path (``pybpf.events.EventError``, ``pybpf.skel.runtime.SkeletonError``,
``pybpf.kernel.verifier.ProgLoadError``...), so either import works.  Which class an errno
becomes is decided in one table, :func:`kernel_error`, per command family.

::

    BpfError
      FormatError(file, section, offset)   ElfError, BtfError, ObjectError
      LinkError                            static linking
      CodegenError                         C and Python skeleton generators
      CoreError(program, relo_index, insn_index)
      BuildError                           building a package's BPF objects
      SkeletonError                        DestroyedError
      VariableError (+AttributeError)      skeleton global variables
      LibraryError                         LibraryNotFoundError, LibraryVersionError
      EventError                           MapTypeError (+TypeError), ClosedError
      LoadError(program, log)
      KernelError (+OSError)(command, errno)
        PermissionDeniedError, NotSupportedError
        ProgLoadError (+LoadError)         ProgLoadPermissionError, ProgLoadNotSupportedError
        BtfLoadError (+LoadError)          BtfLoadPermissionError, BtfLoadNotSupportedError
"""

from __future__ import annotations

import errno as _errno
import os

TYPE_CHECKING = False
"""Every ``import pybpf`` loads this module: ``typing`` alone would triple its import time."""
if TYPE_CHECKING:
    from typing import Any, Final

ENOTSUPP = 524
"""The kernel-internal "not supported" errno that leaks out of bpf(); libc has no name for it."""


class BpfError(Exception):
    """Root of every error pybpf raises on purpose."""


class FormatError(BpfError):
    """Input bytes are not what their format promises.

    ``where`` is assembled from the optional file, section and offset so that every message
    reads the same way: ``file.o: section .BTF: offset 0x1c: string offset 99 out of range``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        section: str | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = message
        self.file = file
        self.section = section
        self.offset = offset
        parts: list[str] = []
        if file:
            parts.append(str(file))
        if section:
            parts.append(f"section {section}")
        if offset is not None:
            parts.append(f"offset {offset:#x}")
        parts.append(message)
        super().__init__(": ".join(parts))


class ElfError(FormatError):
    """Truncated, corrupt or non-BPF ELF."""


class BtfError(FormatError):
    """Corrupt or unsupported BTF or .BTF.ext data."""


class ObjectError(FormatError):
    """A BPF object whose sections parse but whose meaning does not (bad map definition...)."""


class LinkError(BpfError):
    """Static linking failed: conflicting or unresolved symbols, mismatched types."""


class CodegenError(BpfError):
    """Code generation refused an object (no BTF, invalid name...)."""


class CoreError(BpfError):
    """A CO-RE relocation could not be applied."""

    def __init__(
        self,
        message: str,
        *,
        program: str | None = None,
        relo_index: int | None = None,
        insn_index: int | None = None,
    ) -> None:
        self.program = program
        self.relo_index = relo_index
        self.insn_index = insn_index
        self.reason = message
        parts: list[str] = []
        if program is not None:
            parts.append(f"prog '{program}'")
        if relo_index is not None:
            parts.append(f"relo #{relo_index}")
        if insn_index is not None:
            parts.append(f"insn #{insn_index}")
        parts.append(message)
        super().__init__(": ".join(parts))


class BuildError(BpfError):
    """A package's BPF build failed; the message says what to change."""


class SkeletonError(BpfError):
    """A skeleton or subskeleton cannot be built for this object, or is no longer usable."""


class DestroyedError(SkeletonError):
    """An accessor of a skeleton or subskeleton used after ``destroy()``."""


class VariableError(BpfError, AttributeError):
    """A variable cannot be read or written the way it was asked to (read-only, bad value)."""


class MapValueError(BpfError, ValueError):
    """A map key or value that does not fit its type: an int out of range, an unknown field,
    an array of the wrong length, bytes of the wrong size.  Nothing is silently wrapped."""


class LibraryError(BpfError):
    """An installed BPF library cannot be used (bad manifest, missing object)."""


class LibraryNotFoundError(LibraryError):
    """No installed distribution provides the BPF library asked for."""


class LibraryVersionError(LibraryError):
    """The installed BPF library's version does not satisfy the requirement."""


class EventError(BpfError):
    """A ring buffer, perf buffer or user ring buffer was misused or met malformed data."""


class MapTypeError(EventError, TypeError):
    """The map given is not of the type the reader needs (e.g. a HASH given to RingBuffer)."""


class ClosedError(EventError):
    """The reader was used after ``close()``."""


class LoadError(BpfError):
    """Loading an object into the kernel failed.

    For verifier rejections ``program`` names the program and ``log`` holds the verifier log.
    Positional arguments go on along the MRO (a message for a plain LoadError; command, errno
    and detail for :class:`ProgLoadError` and :class:`BtfLoadError`, which are KernelErrors
    too), so this ``__init__`` composes with :class:`KernelError`'s instead of replacing it.
    """

    def __init__(self, *args: Any, program: str | None = None, log: str = "") -> None:
        self.program = program
        self.log = log
        super().__init__(*args)
        if log:
            self.args = (f"{self.args[0]}\n--- verifier log ---\n{log.rstrip()}",)


class KernelError(BpfError, OSError):
    """A system call failed.  ``command`` names the bpf() command (or syscall) that failed."""

    def __init__(self, command: str, err: int, detail: str = "") -> None:
        self.command = command
        self.errno = err
        if err == ENOTSUPP:
            name, text = "ENOTSUPP", "Operation not supported"
        else:
            name, text = _errno.errorcode.get(err, str(err)), os.strerror(err)
        message = f"{command} failed: {name} ({text})"
        if detail:
            message += f": {detail}"
        super().__init__(err, message)  # OSError's: sets errno and strerror
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


class PermissionDeniedError(KernelError):
    """EPERM/EACCES from the kernel: not root, or the kernel refuses this program type."""


class NotSupportedError(KernelError):
    """EOPNOTSUPP/ENOTSUPP: the running kernel lacks the feature.

    EINVAL is not mapped here: the kernel also returns it for plain bad arguments, so only a
    caller that knows its arguments are valid may read EINVAL as "unsupported".
    """


class ProgLoadError(LoadError, KernelError):
    """``BPF_PROG_LOAD`` failed; ``log`` is the verifier log, ``program`` the program name."""


class ProgLoadPermissionError(ProgLoadError, PermissionDeniedError):
    """``BPF_PROG_LOAD`` refused with EPERM (no privilege, or e.g. trampolines here)."""


class ProgLoadNotSupportedError(ProgLoadError, NotSupportedError):
    """``BPF_PROG_LOAD`` refused with EOPNOTSUPP/ENOTSUPP."""


class BtfLoadError(LoadError, KernelError):
    """``BPF_BTF_LOAD`` failed; ``log`` is the kernel's BTF verifier log."""


class BtfLoadPermissionError(BtfLoadError, PermissionDeniedError):
    """``BPF_BTF_LOAD`` refused with EPERM/EACCES."""


class BtfLoadNotSupportedError(BtfLoadError, NotSupportedError):
    """``BPF_BTF_LOAD`` refused with EOPNOTSUPP/ENOTSUPP."""


class ErrorFamily:
    """The classes one command's failures come in, and which errnos mean 'not allowed'."""

    __slots__ = ("error", "permission", "permission_errnos", "unsupported")

    def __init__(
        self,
        error: type[KernelError],
        permission: type[KernelError],
        unsupported: type[KernelError],
        permission_errnos: frozenset[int] = frozenset({_errno.EPERM, _errno.EACCES}),
    ) -> None:
        self.error = error
        self.permission = permission
        self.unsupported = unsupported
        self.permission_errnos = permission_errnos


UNSUPPORTED_ERRNOS: Final = frozenset({_errno.EOPNOTSUPP, ENOTSUPP})
"""What "the running kernel lacks this" looks like; EINVAL is not in it (see
:class:`NotSupportedError`)."""

KERNEL_ERRORS: Final = ErrorFamily(KernelError, PermissionDeniedError, NotSupportedError)
"""Any command but the loads."""
PROG_LOAD_ERRORS: Final = ErrorFamily(
    ProgLoadError,
    ProgLoadPermissionError,
    ProgLoadNotSupportedError,
    # EACCES from BPF_PROG_LOAD is the verifier's verdict 'unsafe program', not a permission
    # problem; only EPERM (no privilege, or a program type refused here) is.
    frozenset({_errno.EPERM}),
)
BTF_LOAD_ERRORS: Final = ErrorFamily(BtfLoadError, BtfLoadPermissionError, BtfLoadNotSupportedError)


def kernel_error(
    command: str,
    err: int,
    detail: str = "",
    *,
    family: ErrorFamily = KERNEL_ERRORS,
    program: str | None = None,
    log: str = "",
) -> KernelError:
    """Build the most specific error of ``family`` for ``err``: the one errno table.

    ``program`` and ``log`` are for the load families (:data:`PROG_LOAD_ERRORS`,
    :data:`BTF_LOAD_ERRORS`), whose classes are also :class:`LoadError`.
    """
    if err in family.permission_errnos:
        cls = family.permission
        detail = f"{detail}; {permission_hint()}" if detail else permission_hint()
    elif err in UNSUPPORTED_ERRNOS:
        cls = family.unsupported
    else:
        cls = family.error
    if issubclass(cls, LoadError):
        load: dict[str, Any] = {"program": program, "log": log}
        return cls(command, err, detail, **load)
    return cls(command, err, detail)


_CAP_SYS_ADMIN, _CAP_PERFMON, _CAP_BPF = 21, 38, 39


def permission_hint() -> str:
    """What an EPERM from bpf() most likely means for this process, said once for every
    command: missing privileges (and which), or, with them, a kernel policy."""
    caps = _effective_capabilities()
    if caps is not None and not caps & (1 << _CAP_BPF | 1 << _CAP_SYS_ADMIN):
        return (
            "this process lacks the privileges: run as root, or grant CAP_BPF (with "
            "CAP_PERFMON for tracing programs, CAP_NET_ADMIN for networking ones); "
            f"unprivileged BPF is governed by kernel.unprivileged_bpf_disabled "
            f"(now {_read_sysctl('kernel/unprivileged_bpf_disabled')})"
        )
    return (
        "the process has CAP_BPF/CAP_SYS_ADMIN, so the kernel refused by policy: lockdown "
        "or an LSM (SELinux, AppArmor, BPF LSM) forbids it, or, for fentry/fexit/fmod_ret/"
        "lsm/struct_ops programs, this kernel cannot build a BPF trampoline"
    )


def _effective_capabilities() -> int | None:
    # Bytes, not text: decoding may need a codec module the process can no longer read
    # (this runs on the error path, possibly after privileges were dropped).
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return None


def _read_sysctl(name: str) -> str:
    try:
        with open(f"/proc/sys/{name}", "rb") as f:
            return f.read().strip().decode("latin-1")
    except OSError:
        return "unknown"
