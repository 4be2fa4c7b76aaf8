"""The static linker's driver: inputs in, one relocatable BPF object out.

Stages, each in its own module and each a pure function of the previous stages' results:
``inputs`` (parse and check) -> ``layout`` (concatenate sections) -> ``symbols`` (resolve
globals across all inputs) -> ``relocs`` (rewrite relocations) -> ``btf_merge`` and
``ext_merge`` (merge and deduplicate type information) -> ``emit`` (write ELF).  Resolution
looks at every input before anything is emitted, which is what makes the result independent
of input order in behaviour: whichever order the files come in, each symbol resolves to the
same definition and every DATASEC entry describes the bytes that symbol really names.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pybpf.errors import LinkError
from pybpf.linker.btf_merge import merge_btf
from pybpf.linker.emit import emit
from pybpf.linker.ext_merge import merge_btf_ext
from pybpf.linker.inputs import InputObject, load_file, load_input
from pybpf.linker.relocs import relocate
from pybpf.linker.section_layout import SectionLayout
from pybpf.linker.symbols import resolve_symbols


class Linker:
    """Collects input objects (:meth:`add_file`, :meth:`add_bytes`); :meth:`link` links them.

    ``allow_unresolved`` keeps externs nothing defines (other than ``.kconfig``/``.ksyms``
    ones, always kept for the loader) instead of failing: for linking a library whose user
    supplies the rest.
    """

    def __init__(self, *, allow_unresolved: bool = False) -> None:
        self.allow_unresolved = allow_unresolved
        self._inputs: list[InputObject] = []

    def add_file(self, path: str | os.PathLike[str]) -> None:
        self._inputs.append(load_file(len(self._inputs), Path(path)))

    def add_bytes(self, data: bytes, name: str = "<bytes>") -> None:
        self._inputs.append(load_input(len(self._inputs), name, data))

    def link(self) -> bytes:
        """The linked object's bytes."""
        if not self._inputs:
            raise LinkError("nothing to link: no input objects")
        inputs = self._inputs
        layout = SectionLayout()
        layout.place_all(inputs)
        table = resolve_symbols(inputs, layout, allow_unresolved=self.allow_unresolved)
        relocations = relocate(inputs, layout, table)
        btf = merge_btf(inputs, layout, table)
        ext = None if btf is None else merge_btf_ext(inputs, layout, btf)
        return emit(layout, table, relocations, btf, ext)


def link_objects(
    inputs: Sequence[str | os.PathLike[str] | tuple[str, bytes]],
    *,
    allow_unresolved: bool = False,
) -> bytes:
    """Link files (paths) or in-memory objects (``(name, bytes)`` pairs); return the output."""
    linker = Linker(allow_unresolved=allow_unresolved)
    for item in inputs:
        if isinstance(item, tuple):
            linker.add_bytes(item[1], item[0])
        else:
            linker.add_file(item)
    return linker.link()


def link_files(output: str, inputs: list[str], libraries: list[str]) -> None:
    """``pybpf gen object OUTPUT INPUT...``: link ``inputs`` and write ``output``.

    The output is written to a temporary name and renamed, so a failed link never leaves a
    half-written object behind (and linking in place, ``out.o`` among the inputs, is safe).
    """
    if libraries:
        # Installed BPF libraries (pip packages registering pybpf.libraries) add their objects.
        from pybpf.registry import library_objects

        inputs = [*inputs, *(str(p) for p in library_objects(libraries))]
    write_atomically(output, link_objects(inputs))


def write_atomically(output: str, data: bytes) -> None:
    """Replace ``output`` with ``data``: readers see the old file or the whole new one.

    The temporary file is created exclusively (``mkstemp``: a fresh name, ``O_EXCL``, no
    symlink followed) in the output's directory, so a file or symlink planted at a name we
    would have chosen is never written through, even when we run as root in a shared
    directory.  ``mkstemp`` creates it 0600; it gets the mode a plain ``open()`` would have
    given (0666 less the umask) before it takes the output's name.
    """
    path = Path(output)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise LinkError(f"{output}: cannot write: {exc.strerror}") from None
    replaced = False
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            f.write(data)
        os.replace(tmp, output)
        replaced = True
    except OSError as exc:
        raise LinkError(f"{output}: cannot write: {exc.strerror}") from None
    finally:
        if not replaced:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` can only
    be read by setting it, which races with other threads creating files)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("Umask:"))[6:], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
