"""Values of ``extern ... __kconfig`` variables: the ``.kconfig`` map's initial image.

A BPF program can branch on the running kernel's configuration (``CONFIG_HZ``,
``CONFIG_BPF_SYSCALL``...) and version (``LINUX_KERNEL_VERSION``) without CO-RE: the loader
reads the kernel config once, writes each value into a read-only array map at the slot the
object model laid out, and the verifier then treats the values as constants, pruning dead
branches.  The rules (what a ``y``/``m``/``n``/number/string may initialise, ranges, ``__weak``
defaulting to zero) are libbpf's, so programs behave the same under both loaders.
"""

from __future__ import annotations

import functools
import gzip
import os
import platform
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

from pybpf.errors import LoadError
from pybpf.kernel.system import kernel_version
from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.specs import ExternKind, ExternSpec, KcfgType

PROC_CONFIG = Path("/proc/config.gz")
TRI_NO, TRI_YES, TRI_MODULE = 0, 1, 2
"""``enum libbpf_tristate``."""

_SYSCALL_WRAPPER_ARCHES = {"x86_64", "aarch64", "arm64", "s390x", "riscv64", "loongarch64"}


def parse_kernel_config(lines: Iterable[str]) -> dict[str, str]:
    """``CONFIG_X=value`` lines into a dict; comments (``# CONFIG_X is not set``) skipped."""
    config: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line.startswith("CONFIG_"):
            continue
        name, sep, value = line.partition("=")
        if sep and value:
            config.setdefault(name, value)
    return config


@functools.cache
def system_kernel_config() -> dict[str, str]:
    """The running kernel's config: ``/boot/config-$(uname -r)``, else ``/proc/config.gz``.

    Raises :class:`LoadError` when neither exists (the caller decides whether any extern
    actually needed it).
    """
    boot = Path(f"/boot/config-{os.uname().release}")
    for path in (boot, PROC_CONFIG):
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return parse_kernel_config(raw.decode(errors="replace").splitlines())
    raise LoadError(f"cannot read the kernel config: neither {boot} nor {PROC_CONFIG} exists")


def _parse_u64(text: str) -> int:
    """``strtoull(text, 0)`` as libbpf uses it: 0x-hex, 0-octal, decimal; negative wraps."""
    body = text.lstrip("+-")
    if body[:2].lower() == "0x":
        value = int(body[2:], 16)
    elif len(body) > 1 and body.startswith("0"):
        value = int(body[1:], 8)
    else:
        value = int(body, 10)
    return (-value if text.startswith("-") else value) % (1 << 64)


def _encode_number(ext: ExternSpec, value: int) -> bytes:
    bits = ext.size * 8
    if ext.kcfg_type is KcfgType.BOOL and value > 1:
        raise _bad(ext, f"value {value} is not a boolean")
    if bits < 64:
        fits = (value + (1 << (bits - 1))) % (1 << 64) < (1 << bits) if ext.is_signed else (
            value >> bits == 0
        )
        if not fits:
            raise _bad(ext, f"value {value} does not fit in {ext.size} bytes")
    fmt = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}.get(ext.size)
    if fmt is None:
        raise _bad(ext, f"unsupported size {ext.size}")
    return struct.pack(fmt, value & ((1 << bits) - 1))


def _bad(ext: ExternSpec, why: str) -> LoadError:
    return LoadError(f"extern (kcfg) '{ext.name}': {why}")


def encode_kconfig_value(ext: ExternSpec, text: str) -> bytes:
    """Bytes of one ``.kconfig`` slot from its textual config value."""
    kind = ext.kcfg_type
    first = text[:1]
    if first in ("y", "n", "m"):
        if kind is KcfgType.BOOL:
            if first == "m":
                raise _bad(ext, "value 'm' needs a tristate or char type")
            return bytes([first == "y"])
        if kind is KcfgType.TRISTATE:
            tri = {"y": TRI_YES, "n": TRI_NO, "m": TRI_MODULE}[first]
            return struct.pack("<I", tri).ljust(ext.size, b"\0")[: ext.size]
        if kind is KcfgType.CHAR:
            return first.encode()
        raise _bad(ext, f"value '{first}' needs a bool, tristate or char type")
    if first == '"':
        if kind is not KcfgType.CHAR_ARR:
            raise _bad(ext, f"value {text} needs a char array type")
        if len(text) < 2 or not text.endswith('"'):
            raise _bad(ext, f"invalid string value {text}")
        raw = text[1:-1].encode()[: ext.size - 1]
        return raw.ljust(ext.size, b"\0")
    if kind not in (KcfgType.INT, KcfgType.CHAR, KcfgType.BOOL):
        raise _bad(ext, f"value {text} needs an integer type")
    try:
        number = _parse_u64(text)
    except ValueError:
        raise _bad(ext, f"value {text!r} is not a valid integer") from None
    return _encode_number(ext, number)


def _has_syscall_wrapper() -> bool:
    return platform.machine() in _SYSCALL_WRAPPER_ARCHES and kernel_version() >= (4 << 16) + (
        17 << 8
    )


def _special_value(ext: ExternSpec) -> bytes | None:
    """``LINUX_*`` externs libbpf computes itself rather than reading from the config."""
    if ext.name == "LINUX_KERNEL_VERSION":
        return _encode_number(ext, kernel_version())
    if ext.name == "LINUX_HAS_BPF_COOKIE":
        return _encode_number(ext, 1)
    if ext.name == "LINUX_HAS_SYSCALL_WRAPPER":
        return _encode_number(ext, int(_has_syscall_wrapper()))
    return None


def kconfig_externs(obj: ObjectSpec) -> list[ExternSpec]:
    return [e for e in obj.externs if e.kind is ExternKind.KCONFIG]


def kconfig_image(
    obj: ObjectSpec, size: int, config: Mapping[str, str] | None = None
) -> bytes:
    """The ``.kconfig`` map value: every extern at its slot, ``__weak`` misses left zero.

    ``config`` defaults to the running kernel's.  A missing strong extern raises
    :class:`LoadError` naming it.
    """
    image = bytearray(size)
    for ext in kconfig_externs(obj):
        value = _special_value(ext)
        if value is None and ext.name.startswith("LINUX_"):
            if not ext.is_weak:
                raise _bad(ext, "unknown LINUX_ extern")
            continue
        if value is None:
            if config is None:
                config = system_kernel_config()
            text = config.get(ext.name)
            if text is None:
                if ext.is_weak:
                    continue
                raise _bad(ext, "not set in the kernel config and not declared __weak")
            value = encode_kconfig_value(ext, text)
        if ext.offset + len(value) > size:
            raise _bad(ext, f"slot {ext.offset}+{len(value)} overflows the {size}-byte map")
        image[ext.offset : ext.offset + len(value)] = value
    return bytes(image)
