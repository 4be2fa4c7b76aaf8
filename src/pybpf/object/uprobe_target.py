"""Where a uprobe goes: a binary's path and the file offset of a function in it.

The uprobe PMU takes a path and a *file offset*; users name a library (``libc.so.6``) and a
function (``getpid``).  This resolves both as libbpf does: bare library names are searched
in the usual library directories, bare program names in ``$PATH``; the function is looked up
in ``.symtab`` and ``.dynsym`` and its address converted to a file offset through the
section that contains it.  Only 64-bit little-endian ELF is handled (the machines BPF runs
uprobes on).
"""

from __future__ import annotations

import os
import platform
import struct
from pathlib import Path

from pybpf.errors import LoadError

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
SHT_SYMTAB, SHT_DYNSYM = 2, 11
STT_FUNC, STT_GNU_IFUNC = 2, 10


def _library_dirs() -> list[str]:
    multiarch = f"{platform.machine()}-linux-gnu"
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += [f"/lib/{multiarch}", f"/usr/lib/{multiarch}", "/lib64", "/usr/lib64", "/lib",
             "/usr/lib"]
    return dirs


def resolve_binary(name: str) -> str:
    """An absolute path for ``name`` (a path, a library name or a program name)."""
    if "/" in name:
        if not Path(name).exists():
            raise LoadError(f"uprobe target {name} does not exist")
        return name
    is_library = name.endswith(".so") or ".so." in name
    dirs = _library_dirs() if is_library else os.environ.get("PATH", "").split(":")
    for directory in dirs:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    raise LoadError(f"uprobe target '{name}' not found in {':'.join(dirs)}")


def function_offset(path: str, func: str) -> int:
    """File offset of function ``func`` in the ELF file ``path``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LoadError(f"uprobe target {path}: {exc.strerror}") from None
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise LoadError(f"uprobe target {path} is not a 64-bit little-endian ELF file")
    fields = _EHDR.unpack_from(data, 0)
    shoff, shentsize, shnum = fields[6], fields[11], fields[12]
    sections = [_SHDR.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    for sh_type in (SHT_SYMTAB, SHT_DYNSYM):
        for sec in sections:
            if sec[1] != sh_type:
                continue
            strtab = sections[sec[6]]
            found = _find_symbol(data, sec, strtab, func)
            if found is not None:
                value, shndx = found
                _name, _type, _flags, addr, offset = sections[shndx][:5]
                return int(value - addr + offset)
    raise LoadError(f"uprobe target {path}: no function '{func}'")


def _find_symbol(
    data: bytes, symtab: tuple[int, ...], strtab: tuple[int, ...], func: str
) -> tuple[int, int] | None:
    wanted = func.encode()
    sym_off, sym_size, entsize = symtab[4], symtab[5], symtab[9] or _SYM.size
    str_off = strtab[4]
    for at in range(sym_off, sym_off + sym_size, entsize):
        name_off, info, _other, shndx, value, _size = _SYM.unpack_from(data, at)
        if info & 0xF not in (STT_FUNC, STT_GNU_IFUNC) or shndx == 0 or shndx >= 0xFF00:
            continue
        start = str_off + name_off
        if data[start : start + len(wanted) + 1] == wanted + b"\0":
            return value, shndx
    return None


def parse_uprobe_target(target: str) -> tuple[str, str | None, int]:
    """``path:func+off`` / ``path:0x1234`` of a ``SEC("uprobe/...")`` into its parts.

    Returns ``(binary, function or None, offset)``.
    """
    binary, sep, where = target.rpartition(":")
    if not sep or not binary or not where:
        raise LoadError(f"uprobe section target '{target}' is not 'path:function[+offset]'")
    func, plus, extra = where.partition("+")
    offset = int(extra, 0) if plus else 0
    if func[:2].lower() == "0x" or func.isdigit():
        return binary, None, int(func, 0) + offset
    return binary, func, offset
