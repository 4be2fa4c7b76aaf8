"""``extern ... __ksym``: kernel symbols and kernel functions a program refers to.

Three kinds, resolved as libbpf resolves them:

* a *typeless* ksym (``extern const void sym __ksym``) is a plain address, read from
  ``/proc/kallsyms``;
* a *typed* ksym (a per-CPU kernel variable with its C type) is the BTF id of the VAR in
  the kernel's BTF; the verifier then knows what the pointer points to;
* an extern *function* is a kfunc: calls carry the BTF id of the FUNC in the kernel's BTF.

A ``__weak`` ksym the kernel lacks resolves to 0 (``bpf_ksym_exists()`` tests for that); a
strong one is a :class:`LoadError` naming it.  Only vmlinux is searched, not module BTF.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pybpf.abi.sections import KSYMS
from pybpf.btf import Btf
from pybpf.btf.types import BtfKind
from pybpf.errors import BpfError, LoadError
from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.specs import ExternKind, ExternSpec

KALLSYMS = Path("/proc/kallsyms")


class KsymKind(Enum):
    ADDRESS = "address"
    """Typeless ksym: ``value`` is the kernel address."""
    BTF_VAR = "btf_var"
    """Typed ksym: ``value`` is the BTF id of the kernel's VAR."""
    BTF_FUNC = "btf_func"
    """kfunc: ``value`` is the BTF id of the kernel's FUNC."""
    UNRESOLVED = "unresolved"
    """A ``__weak`` ksym the kernel does not have: reads as 0."""


@dataclass(frozen=True, slots=True)
class Ksym:
    kind: KsymKind
    value: int = 0


def is_kernel_extern(ext: ExternSpec) -> bool:
    """An extern the loader resolves against the kernel (rather than a linker's job)."""
    return ext.kind in (ExternKind.KSYM, ExternKind.FUNC) and ext.section_name == KSYMS


@functools.cache
def _vmlinux() -> Btf:
    try:
        return Btf.vmlinux()
    except BpfError as exc:
        raise LoadError(f"kernel BTF is needed to resolve __ksym externs: {exc}") from exc


def kallsyms(names: set[str]) -> dict[str, int]:
    """Addresses of ``names`` in ``/proc/kallsyms`` (first match, module symbols included)."""
    found: dict[str, int] = {}
    try:
        with KALLSYMS.open() as lines:
            for line in lines:
                fields = line.split()
                if len(fields) >= 3 and fields[2] in names and fields[2] not in found:
                    found[fields[2]] = int(fields[0], 16)
    except OSError as exc:
        raise LoadError(f"cannot read {KALLSYMS}: {exc.strerror}") from None
    return found


def resolve_ksyms(obj: ObjectSpec) -> dict[str, Ksym]:
    """Resolve every kernel extern of ``obj``; strong misses raise :class:`LoadError`."""
    wanted = [e for e in obj.externs if is_kernel_extern(e)]
    resolved: dict[str, Ksym] = {}
    typeless = {e.name for e in wanted if e.kind is ExternKind.KSYM and e.target_type_id == 0}
    addresses = kallsyms(typeless) if typeless else {}
    for ext in wanted:
        if ext.name in typeless:
            address = addresses.get(ext.name)
            found = Ksym(KsymKind.ADDRESS, address) if address else None
        else:
            kind = BtfKind.FUNC if ext.kind is ExternKind.FUNC else BtfKind.VAR
            ids = _vmlinux().find(ext.name, kind)
            ksym_kind = KsymKind.BTF_FUNC if kind is BtfKind.FUNC else KsymKind.BTF_VAR
            found = Ksym(ksym_kind, ids[0]) if ids else None
        if found is None:
            if not ext.is_weak:
                what = "function" if ext.kind is ExternKind.FUNC else "symbol"
                raise LoadError(f"extern (ksym) '{ext.name}': no such kernel {what} "
                                "(declare it __weak to make it optional)")
            found = Ksym(KsymKind.UNRESOLVED)
        resolved[ext.name] = found
    return resolved
