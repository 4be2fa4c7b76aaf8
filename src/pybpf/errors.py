"""The pybpf error tree.

Every failure pybpf reports is a :class:`BpfError`.  Parsing errors carry *where* the problem
is (file, section, offset) so that a user holding a corrupt or unexpected object can find the
bytes at fault without a debugger; kernel errors carry the ``bpf()`` command and errno.
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


def kernel_error(command: str, err: int, detail: str = "") -> KernelError:
    """Build the most specific :class:`KernelError` subclass for ``err``."""
    if err in (_errno.EPERM, _errno.EACCES):
        return PermissionDeniedError(command, err, detail)
    if err in (_errno.EOPNOTSUPP, ENOTSUPP):
        return NotSupportedError(command, err, detail)
    return KernelError(command, err, detail)
