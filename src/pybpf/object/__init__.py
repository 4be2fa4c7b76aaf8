"""The live BPF object: :class:`BpfObject` with its :class:`Map`\\ s, :class:`Program`\\ s and
the :class:`Link`\\ s that keep programs attached.

One module per object (:mod:`.bpf_object`, :mod:`.map`, :mod:`.program`, :mod:`.link`), plus
:mod:`.attach` (the attach calls, libbpf's auto-attach by section name) and
:mod:`.uprobe_target` (where a uprobe goes).  The loader below (:mod:`pybpf.load`) never sees
these objects: it takes a spec and returns kernel state, which :meth:`BpfObject.load` binds.
"""

from pybpf.object.bpf_object import BpfObject
from pybpf.object.link import Link, LinkSet
from pybpf.object.map import Map
from pybpf.object.program import Program

__all__ = ["BpfObject", "Link", "LinkSet", "Map", "Program"]
