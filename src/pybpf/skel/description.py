"""What a skeleton or subskeleton needs to know about an object, as plain values.

A subskeleton is made from the *library's* object but bound to *another* object at run time.
Everything it takes from the library is here: the maps (a user map by its name, a global-data
map by its ELF section name), the programs by name, and for each exposed global variable its
section, name and a digest of its type's structure.  Offsets are deliberately absent: they
belong to the final object, and :func:`pybpf.skel.runtime.bind` reads them there.

Because a description is plain data, generated Python modules carry one as a literal and need
no library object at run time; the live runtime builds the same description from an
:class:`~pybpf.obj.ObjectSpec` with :func:`describe`.  Generated modules also attach their own
ctypes classes to the variables shown as views, so that accessors return typed instances.

This module is pure (the code generators use it): it never imports the kernel layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pybpf.btf.types import VarLinkage
from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.specs import MapKind, MapSpec, VarSpec, section_ident
from pybpf.skel.type_signature import signature_digest
from pybpf.skel.values import type_name


@dataclass(frozen=True, slots=True)
class MapDescription:
    """A map to find in the target: by ``name`` (user maps) or ``section`` (global data)."""

    ident: str
    name: str
    section: str
    internal: bool
    type: int = 0
    key_size: int = 0
    value_size: int = 0

    @property
    def key(self) -> str:
        """What the target's map is looked up by: its name, or its ELF section name."""
        return self.section if self.internal else self.name


@dataclass(frozen=True, slots=True)
class VarDescription:
    """A global variable to find by name in the target's section of the same name.

    ``signature`` is :func:`~pybpf.skel.type_signature.signature_digest` of the variable's
    type; ``ctype`` is the class views of it are made of (``None``: build one from the
    target's BTF).
    """

    name: str
    signature: str
    type_name: str
    ctype: Any = None


@dataclass(frozen=True, slots=True)
class SectionDescription:
    """The exposed variables of one memory-mappable global-data section."""

    section: str
    variables: tuple[VarDescription, ...]
    readonly: bool = False
    """``.kconfig``: filled by the loader from the kernel configuration, never written."""

    @property
    def ident(self) -> str:
        return section_ident(self.section)


@dataclass(frozen=True, slots=True)
class ObjectDescription:
    """Everything an object offers a skeleton, without offsets."""

    name: str
    maps: tuple[MapDescription, ...]
    programs: tuple[str, ...]
    sections: tuple[SectionDescription, ...]


def is_exposed(var: VarSpec) -> bool:
    """Skeletons show every variable but statics (``__hidden`` globals count as static)."""
    return var.linkage != VarLinkage.STATIC


def data_maps(spec: ObjectSpec) -> list[MapSpec]:
    """The maps whose variables skeletons expose: memory-mappable global data and kconfig."""
    return [m for m in spec.maps if (m.is_internal and m.mmapable) or m.kind is MapKind.KCONFIG]


def describe_map(m: MapSpec) -> MapDescription:
    return MapDescription(
        ident=m.ident,
        name=m.name,
        section=m.section_name,
        internal=m.is_internal,
        type=int(m.type),
        key_size=m.key_size,
        value_size=m.value_size,
    )


def describe(spec: ObjectSpec) -> ObjectDescription:
    """The description of ``spec`` (sections with no exposed variable are left out)."""
    btf = spec.btf
    sections: list[SectionDescription] = []
    if btf is not None:
        for m in data_maps(spec):
            variables = tuple(
                VarDescription(
                    name=v.name,
                    signature=signature_digest(btf, v.type_id),
                    type_name=type_name(btf, v.type_id),
                )
                for v in spec.variables_of(m.section_name)
                if is_exposed(v)
            )
            if variables:
                readonly = m.kind is MapKind.KCONFIG
                sections.append(SectionDescription(m.section_name, variables, readonly))
    return ObjectDescription(
        name=spec.name,
        maps=tuple(describe_map(m) for m in spec.maps),
        programs=tuple(p.name for p in spec.programs),
        sections=tuple(sections),
    )
