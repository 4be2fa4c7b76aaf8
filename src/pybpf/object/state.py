"""What a map or program reads of the object it belongs to.

:class:`~.map.Map` and :class:`~.program.Program` consult their object's lifecycle (opened,
loaded, closed) before every setter and accessor.  They see it through this protocol rather
than :class:`~.bpf_object.BpfObject` itself, which builds them: that keeps the modules of the
live object free of import cycles, annotations included.
"""

from __future__ import annotations

from typing import Protocol

from pybpf.obj.object_spec import ObjectSpec


class ObjectState(Protocol):
    """The lifecycle of a :class:`~.bpf_object.BpfObject`, as its maps and programs see it."""

    loaded: bool
    """Kernel objects exist; settings are frozen from then on."""
    _closed: bool

    @property
    def name(self) -> str: ...

    @property
    def spec(self) -> ObjectSpec: ...

    def _check_not_loaded(self, what: str) -> None: ...
