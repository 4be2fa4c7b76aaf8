"""The static linker: ``pybpf gen object OUT IN...``, libbpf's ``bpf_linker`` in Python.

:func:`link_objects` returns the linked object's bytes; :func:`link_files` is the command
line's entry point; :class:`Linker` collects inputs one by one.
"""

from pybpf.linker.linker import Linker, link_files, link_objects

__all__ = ["Linker", "link_files", "link_objects"]
