"""The public path of the static linker, kept for ``from pybpf.link import link_objects``.

The linker itself lives in :mod:`pybpf.linker`; this module only re-exports its entry points.
"""

from pybpf.linker import Linker as Linker
from pybpf.linker import link_files as link_files
from pybpf.linker import link_objects as link_objects

__all__ = ["Linker", "link_files", "link_objects"]
