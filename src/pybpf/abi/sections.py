"""ELF section names with a meaning to libbpf and the kernel.

The object parser, the linker, the loader and the skeleton generators all recognise these
sections; naming them once keeps the four from disagreeing about a spelling.
"""

from __future__ import annotations

MAPS = ".maps"
"""BTF-defined maps (``SEC(".maps")``)."""
LEGACY_MAPS = "maps"
"""``struct bpf_map_def`` maps, which libbpf 1.0 dropped."""
KCONFIG = ".kconfig"
"""``__kconfig`` externs, filled by the loader from the kernel configuration."""
KSYMS = ".ksyms"
"""``__ksym`` externs: kernel variables and kfuncs resolved against vmlinux BTF."""
LOADER_EXTERN_SECTIONS = (KCONFIG, KSYMS)
"""The DATASECs of externs the loader resolves; they never become real maps' contents."""
STRUCT_OPS = ".struct_ops"
BTF = ".BTF"
BTF_EXT = ".BTF.ext"
TEXT = ".text"
"""Code without a ``SEC()``: subprograms, never programs of their own."""
LICENSE = "license"
