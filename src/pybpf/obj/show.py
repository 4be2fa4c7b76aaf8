"""``pybpf object show FILE [--json]``: what an object contains, for people and for scripts.

The text form is a set of aligned tables (maps, programs, variables per section, externs);
the JSON form carries the same facts with enum values spelled as in ``linux/bpf.h``, so that
a script can match them against kernel documentation without a lookup table.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from pybpf.abi.bpf import flag_names, uapi_name
from pybpf.btf import Btf
from pybpf.btf.naming import c_spelling
from pybpf.btf.types import VarLinkage
from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.specs import MapSpec, ProgramSpec


class HasSpec(Protocol):
    """Anything carrying an :class:`ObjectSpec` (a :class:`~pybpf.object.BpfObject`).

    A protocol rather than an import: the object model sits below the live object, so naming
    ``BpfObject`` here would point an import (even a type-only one) up the layers.
    """

    @property
    def spec(self) -> ObjectSpec: ...


def type_name(btf: Btf | None, type_id: int) -> str:
    """A C-ish spelling of a BTF type (``struct pair``, ``const int``, ``char[16]``)."""
    return c_spelling(btf, type_id, qualifiers=True)


def _linkage(linkage: VarLinkage) -> str:
    return {VarLinkage.STATIC: "static", VarLinkage.GLOBAL_ALLOCATED: "global",
            VarLinkage.GLOBAL_EXTERN: "extern"}[linkage]


def _map_dict(m: MapSpec) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": m.name,
        "section": m.section_name,
        "kind": m.kind.value,
        "type": uapi_name(m.type),
        "key_size": m.key_size,
        "value_size": m.value_size,
        "max_entries": m.max_entries,
        "flags": flag_names(int(m.flags)),
        "pinning": m.pinning.name,
        "numa_node": m.numa_node,
        "map_extra": m.map_extra,
    }
    if m.inner is not None:
        d["inner"] = _map_dict(m.inner)
    if m.init_slots:
        d["init_slots"] = {str(i): name for i, name in m.init_slots}
    return d


def _prog_dict(p: ProgramSpec) -> dict[str, Any]:
    return {
        "name": p.name,
        "section": p.section_name,
        "type": uapi_name(p.prog_type),
        "attach_type": uapi_name(p.expected_attach_type) if p.expected_attach_type is not None
        else None,
        "attach_target": p.attach_target,
        "autoload": p.autoload,
        "insns": p.insn_count,
    }


def object_dict(spec: ObjectSpec) -> dict[str, Any]:
    """Everything ``object show`` prints, as plain JSON-able data."""
    sections: dict[str, list[dict[str, Any]]] = {}
    for v in spec.variables:
        sections.setdefault(v.section_name, []).append(
            {"name": v.name, "offset": v.offset, "size": v.size,
             "type": type_name(spec.btf, v.type_id), "linkage": _linkage(v.linkage),
             "weak": v.is_weak}
        )
    return {
        "name": spec.name,
        "path": spec.path,
        "license": spec.license,
        "kern_version": spec.kern_version,
        "maps": [_map_dict(m) for m in spec.maps],
        "programs": [_prog_dict(p) for p in spec.programs],
        "subprograms": [{"name": p.name, "section": p.section_name, "insns": p.insn_count}
                        for p in spec.subprograms],
        "variables": sections,
        "externs": [
            {"name": e.name, "kind": e.kind.value, "section": e.section_name,
             "type": type_name(spec.btf, e.target_type_id), "weak": e.is_weak}
            for e in spec.externs
        ],
    }


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        (indent + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True))).rstrip()
        for r in rows
    ]


def _short(name: str, prefix: str) -> str:
    return name.removeprefix(prefix)


def format_text(spec: ObjectSpec) -> str:
    d = object_dict(spec)
    out = [f"object {spec.name}: license \"{spec.license}\""
           + (f", kernel version {spec.kern_version:#x}" if spec.kern_version is not None else "")]
    out.append(f"maps ({len(d['maps'])}):")
    if d["maps"]:
        rows = [["NAME", "SECTION", "TYPE", "KEY", "VALUE", "MAX_ENTRIES", "FLAGS"]]
        for m in d["maps"]:
            flags = "|".join(_short(f, "BPF_F_") for f in m["flags"]) or "-"
            if m["pinning"] != "LIBBPF_PIN_NONE":
                flags += " pinned"
            rows.append([m["name"], m["section"], _short(m["type"], "BPF_MAP_TYPE_"),
                         str(m["key_size"]), str(m["value_size"]), str(m["max_entries"]), flags])
        out += _table(rows)
    out.append(f"programs ({len(d['programs'])}):")
    if d["programs"]:
        rows = [["NAME", "SECTION", "TYPE", "ATTACH_TYPE"]]
        for p in d["programs"]:
            attach = _short(p["attach_type"], "BPF_") if p["attach_type"] else "-"
            rows.append([p["name"], p["section"], _short(p["type"], "BPF_PROG_TYPE_"), attach])
        out += _table(rows)
    if d["subprograms"]:
        out.append("subprograms: " + ", ".join(p["name"] for p in d["subprograms"]))
    out.append("variables:")
    for section, variables in d["variables"].items():
        out.append(f"  {section}:")
        rows = [["OFFSET", "SIZE", "TYPE", "NAME", "LINKAGE"]]
        rows += [[str(v["offset"]), str(v["size"]), v["type"], v["name"],
                  v["linkage"] + (" weak" if v["weak"] else "")] for v in variables]
        out += _table(rows, "    ")
    out.append(f"externs ({len(d['externs'])}):")
    if d["externs"]:
        rows = [["NAME", "KIND", "TYPE", "WEAK"]]
        rows += [[e["name"], e["kind"], e["type"], "weak" if e["weak"] else "-"]
                 for e in d["externs"]]
        out += _table(rows)
    return "\n".join(out) + "\n"


def format_object(spec_or_obj: ObjectSpec | HasSpec, as_json: bool = False) -> str:
    """The text (or JSON) of ``pybpf object show`` for an object or its spec."""
    spec = spec_or_obj if isinstance(spec_or_obj, ObjectSpec) else spec_or_obj.spec
    if as_json:
        return json.dumps(object_dict(spec), indent=2) + "\n"
    return format_text(spec)
