"""The names a generated skeleton module may import from :mod:`pybpf.skel.generated`.

One list, so the generator (which must not emit an import the runtime lacks, nor let a class
name shadow one) and the runtime module (which exports them) cannot drift apart.  Pure data:
the code generators import it without pulling in the live object or the kernel.
"""

from __future__ import annotations

RUNTIME_NAMES: tuple[str, ...] = (
    "Bitfield",
    "BpfObject",
    "Link",
    "LinksBase",
    "Map",
    "MapDescription",
    "ObjectDescription",
    "Program",
    "ReadOnlySection",
    "SectionDescription",
    "SkeletonBase",
    "SubskeletonBase",
    "TypedSection",
    "VarDescription",
)
"""What generated modules may import from :mod:`pybpf.skel.generated`."""
