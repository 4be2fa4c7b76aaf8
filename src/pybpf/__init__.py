"""pybpf: a pure-Python toolkit for BPF objects.

Read BPF ELF objects and BTF, link them, load them into the kernel through ``bpf()``, and drive
them through skeletons and subskeletons, with no libbpf at run time.
"""

from pybpf.errors import (
    BpfError,
    BtfError,
    CodegenError,
    ElfError,
    FormatError,
    KernelError,
    LinkError,
    LoadError,
    ObjectError,
)

__version__ = "0.1.0"

__all__ = [
    "BpfError",
    "BtfError",
    "CodegenError",
    "ElfError",
    "FormatError",
    "KernelError",
    "LinkError",
    "LoadError",
    "ObjectError",
    "__version__",
]
