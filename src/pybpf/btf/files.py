"""Open BTF from whatever file a user names: a raw BTF blob or an ELF object with ``.BTF``.

bpftool's ``btf dump file`` accepts both, telling them apart by the BTF magic, and so do we.
"""

from __future__ import annotations

from pathlib import Path

from pybpf.abi.btf import BTF_MAGIC, BTF_MAGIC_SWAPPED
from pybpf.abi.sections import BTF
from pybpf.btf.btf import Btf
from pybpf.elf.constants import ELF_MAGIC
from pybpf.elf.reader import ElfFile
from pybpf.errors import BtfError


def btf_from_elf(elf: ElfFile, *, base: Btf | None = None) -> Btf | None:
    """The ``.BTF`` section of ``elf`` parsed, or ``None`` if the object has none."""
    section = elf.section(BTF)
    if section is None:
        return None
    btf = Btf.from_bytes(section.data, base=base, file=elf.path, section=BTF)
    btf.validate()
    return btf


def btf_from_file(path: str | Path, *, base: Btf | None = None) -> Btf:
    """Parse ``path`` as raw BTF or as an ELF object carrying a ``.BTF`` section."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BtfError(f"cannot read: {exc.strerror}", file=str(path)) from None
    if data[:4] == ELF_MAGIC:
        elf = ElfFile(data, path=str(path), require_bpf=False)
        btf = btf_from_elf(elf, base=base)
        if btf is None:
            raise BtfError("object has no .BTF section", file=str(path))
        return btf
    magic = int.from_bytes(data[:2], "little") if len(data) >= 2 else 0
    if magic not in (BTF_MAGIC, BTF_MAGIC_SWAPPED):
        raise BtfError("neither an ELF object nor raw BTF (bad magic)", file=str(path), offset=0)
    return Btf.from_bytes(data, base=base, file=str(path), section=None)
