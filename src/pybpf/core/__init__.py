"""CO-RE: BPF Compile Once - Run Everywhere relocations, pure Python.

Reads the ``.BTF.ext`` CO-RE records of an object, finds each referenced type in the target
kernel's BTF by name and structure, and patches instructions with the kernel's offsets, sizes,
ids and enum values (libbpf's ``relo_core.c`` semantics).  Never talks to the kernel: the
target BTF is a file (``/sys/kernel/btf/*`` or a user's).
"""

from pybpf.core.relocate import CoreRelocator, Resolution, relocate_core, relocate_object
from pybpf.core.target import Candidate, TargetBtf
from pybpf.errors import CoreError as CoreError

__all__ = [
    "Candidate",
    "CoreError",
    "CoreRelocator",
    "Resolution",
    "TargetBtf",
    "relocate_core",
    "relocate_object",
]
