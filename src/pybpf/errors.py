"""The pybpf error tree: every error class pybpf raises on purpose is defined here.

Every failure pybpf reports is a :class:`BpfError`, so ``except BpfError`` catches all of them
and nothing else.  Parsing errors carry *where* the problem is (file, section, offset) so that a
user holding a corrupt or unexpected object can find the bytes at fault without a debugger;
kernel errors carry the ``bpf()`` command and errno.  The modules that raise an error also
re-export it under its old path (``pybpf.events.EventError``, ``pybpf.skel.runtime.SkeletonError``,
``pybpf.kernel.verifier.ProgLoadError``...), so either import works.

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
    """

    def __init__(self, message: str, *, program: str | None = None, log: str = "") -> None:
        self.program = program
        self.log = log
        text = message
        if log:
            text = f"{message}\n--- verifier log ---\n{log.rstrip()}"
        super().__init__(text)


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
        OSError.__init__(self, err, message)
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


class _KernelLoadError(LoadError, KernelError):
    """A load the kernel refused: errno and command like KernelError, log like LoadError."""

    def __init__(
        self, command: str, err: int, detail: str, *, program: str | None, log: str
    ) -> None:
        # Not cooperative on purpose: LoadError.__init__ would chain into KernelError's.
        KernelError.__init__(self, command, err, detail)
        self.program = program
        self.log = log
        text = str(self.args[0])
        if log:
            text = f"{text}\n--- verifier log ---\n{log.rstrip()}"
        self.args = (text,)

    def __str__(self) -> str:
        return str(self.args[0])


class ProgLoadError(_KernelLoadError):
    """``BPF_PROG_LOAD`` failed; ``log`` is the verifier log, ``program`` the program name."""


class ProgLoadPermissionError(ProgLoadError, PermissionDeniedError):
    """``BPF_PROG_LOAD`` refused with EPERM (no privilege, or e.g. trampolines here)."""


class ProgLoadNotSupportedError(ProgLoadError, NotSupportedError):
    """``BPF_PROG_LOAD`` refused with EOPNOTSUPP/ENOTSUPP."""


class BtfLoadError(_KernelLoadError):
    """``BPF_BTF_LOAD`` failed; ``log`` is the kernel's BTF verifier log."""


class BtfLoadPermissionError(BtfLoadError, PermissionDeniedError):
    """``BPF_BTF_LOAD`` refused with EPERM/EACCES."""


class BtfLoadNotSupportedError(BtfLoadError, NotSupportedError):
    """``BPF_BTF_LOAD`` refused with EOPNOTSUPP/ENOTSUPP."""


def kernel_error(command: str, err: int, detail: str = "") -> KernelError:
    """Build the most specific :class:`KernelError` subclass for ``err``."""
    if err in (_errno.EPERM, _errno.EACCES):
        return PermissionDeniedError(command, err, detail)
    if err in (_errno.EOPNOTSUPP, ENOTSUPP):
        return NotSupportedError(command, err, detail)
    return KernelError(command, err, detail)
