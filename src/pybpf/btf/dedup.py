"""BTF deduplication with libbpf's semantics (``btf__dedup`` of libbpf 1.1).

Why libbpf's semantics and not just any type merging: the linked object's BTF is compared,
loaded and dumped by libbpf-based tools, and CO-RE, skeletons and the verifier all look types
up by id and name.  Producing the same types (and, for the same input order, the same ids)
as ``bpftool gen object`` / libbpf's linker keeps our objects interchangeable with theirs.

The input is usually the concatenation of several compilation units' BTF, each internally
deduplicated by the compiler.  The stages, in libbpf's order:

1. *strings*: our model holds names as ``str``, so equal strings are already one value;
2. *primitive types* (INT, FLOAT, FWD, ENUM, ENUM64) are merged when identical; an enum
   forward declaration (an ENUM without values) merges into a full enum of the same name;
3. *structs and unions* are merged when their whole type graphs are equivalent: a
   side-by-side DFS from candidate and canonical struct, through pointers and all, records a
   "hypothetical map" from canonical to candidate ids and fails on a contradiction.  A FWD
   met opposite a struct/union of the same name and kind is equivalent to it, and the
   successful map resolves that FWD to the struct;
4. *unambiguous FWDs* left over resolve to the only canonical struct/union of their name;
5. *reference types* (PTR, TYPEDEF, CONST, VOLATILE, RESTRICT, TYPE_TAG, DECL_TAG, ARRAY,
   FUNC, FUNC_PROTO) are merged bottom-up once what they refer to is canonical;
6. VAR and DATASEC are never merged;
7. canonical types are *compacted* into consecutive ids, in their original order, and every
   reference is rewritten.

Each type is reduced to a *shape* (everything but the type ids it refers to, as a hashable
tuple) and its *refs*; "identical except for referenced ids" is then shape equality, which is
what libbpf's per-kind ``btf_equal_*``/``btf_compat_*``/``btf_shallow_equal_struct`` checks.
Deterministic, and faithful to libbpf where it matters: when a type is equivalent to
several candidates, the one libbpf's hash table would yield first wins.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from pybpf.btf.btf import Btf
from pybpf.btf.builder import BtfBuilder, map_type_ids, referenced_ids
from pybpf.btf.types import (
    BtfArray,
    BtfDatasec,
    BtfDeclTag,
    BtfEnum,
    BtfEnum64,
    BtfFloat,
    BtfFunc,
    BtfFuncProto,
    BtfFwd,
    BtfInt,
    BtfKind,
    BtfStruct,
    BtfType,
    BtfTypeTag,
    BtfUnion,
    BtfVar,
)
from pybpf.errors import BtfError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

UNPROCESSED = -1
IN_PROGRESS = -2

_STRUCT = BtfKind.STRUCT.value
_UNION = BtfKind.UNION.value
_FWD = BtfKind.FWD.value
_ARRAY = BtfKind.ARRAY.value
_ENUM = BtfKind.ENUM.value
_ENUM64 = BtfKind.ENUM64.value
_FUNC_PROTO = BtfKind.FUNC_PROTO.value

_PRIMITIVE = frozenset({BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.FWD, BtfKind.FLOAT})
_COMPOSITE = frozenset({_STRUCT, _UNION})
_ONE_REF = frozenset(
    {
        BtfKind.PTR,
        BtfKind.TYPEDEF,
        BtfKind.VOLATILE,
        BtfKind.CONST,
        BtfKind.RESTRICT,
        BtfKind.FUNC,
        BtfKind.TYPE_TAG,
    }
)
_REFERENCE = _ONE_REF | {BtfKind.DECL_TAG, BtfKind.ARRAY, BtfKind.FUNC_PROTO}
_NEVER_MERGED = frozenset({BtfKind.VAR, BtfKind.DATASEC})
_ENUM_KEY = -1
"""First element of an enum's table key, which is its name alone."""
_KIND_CLASS = list(range(32))
_KIND_CLASS[_ENUM64] = _ENUM
"""Kinds that the equivalence check may pair with each other count as one (FWDs too)."""


def _struct_shape(t: BtfStruct | BtfUnion) -> tuple[Hashable, ...]:
    members = t.members
    kflag = t.kind_flag or any([m.bitfield_size for m in members])
    layout = [(m.name, m.offset, m.bitfield_size) for m in members]
    kind = _STRUCT if t.__class__ is BtfStruct else _UNION
    return (kind, t.name, t.size, kflag, *layout)


# One function per class, found by ``type(t)`` (every input type of a link goes through here).
_SHAPES: dict[type, Callable[[Any], tuple[Hashable, ...]]] = {
    BtfStruct: _struct_shape,
    BtfUnion: _struct_shape,
    BtfFuncProto: lambda t: (_FUNC_PROTO, t.name, *[p.name for p in t.params]),
    BtfArray: lambda t: (_ARRAY, t.name, t.nelems),
    BtfInt: lambda t: (
        BtfKind.INT.value, t.name, t.size, int(t.encoding), t.bits_offset, t.nr_bits
    ),
    BtfEnum: lambda t: (_ENUM, t.name, t.size, t.signed, t.values),
    BtfEnum64: lambda t: (_ENUM64, t.name, t.size, t.signed, t.values),
    BtfFwd: lambda t: (_FWD, t.name, t.is_union),
    BtfFunc: lambda t: (BtfKind.FUNC.value, t.name, int(t.linkage)),
    BtfFloat: lambda t: (BtfKind.FLOAT.value, t.name, t.size),
    BtfDeclTag: lambda t: (BtfKind.DECL_TAG.value, t.name, t.kind_flag, t.component_idx),
    BtfTypeTag: lambda t: (BtfKind.TYPE_TAG.value, t.name, t.kind_flag),
    BtfVar: lambda t: (BtfKind.VAR.value, t.name, int(t.linkage)),
    BtfDatasec: lambda t: (
        BtfKind.DATASEC.value, t.name, t.size, *[(v.offset, v.size) for v in t.vars]
    ),
}


def shape_of(t: BtfType) -> tuple[Hashable, ...]:
    """Everything about ``t`` except the type ids it refers to, as a hashable tuple.

    Two types of the same kind are "structurally equal" in libbpf's sense exactly when their
    shapes are equal.  The struct kind_flag is the one the encoder writes (set by any
    bitfield), so that the comparison matches the bytes libbpf would compare.
    """
    shape = _SHAPES.get(t.__class__)
    if shape is None:
        return (t.kind.value, t.name)  # PTR, TYPEDEF, CONST, VOLATILE, RESTRICT
    return shape(t)


def dfs_refs(t: BtfType) -> tuple[int, ...]:
    """Referenced ids in the order libbpf's equivalence DFS visits them.

    That is the on-disk order except for ARRAY, whose index type is checked before its
    element type.
    """
    if t.__class__ is BtfArray:
        return (t.index_type, t.type)
    return referenced_ids(t)


class _CandidateTable:
    """libbpf's dedup hash table, down to the order in which it yields candidates.

    Which of several candidates a type merges into depends on the order they are tried,
    whenever equivalence is not transitive (FWDs make it so).  libbpf's hashmap puts a new
    entry at the head of its bucket, and every time the table grows (before the insertion
    that would fill it over 3/4, from 4 buckets, doubling) it moves entries bucket by
    bucket, which reverses the order of entries that share a key.  Keys here are exact
    where libbpf's are hashes, but the relative order of the entries under one key is what
    libbpf's would be, so the same candidate wins.
    """

    __slots__ = ("_cap", "_cap_bits", "_epoch", "_epochs", "_lists", "_size")

    _MIN_CAP_BITS = 2

    def __init__(self) -> None:
        self._lists: dict[Hashable, list[int]] = {}
        self._epochs: dict[Hashable, int] = {}
        self._size = 0
        self._cap_bits = 0
        self._cap = 0
        self._epoch = 0  # number of grows so far; each reverses every same-key run

    def get(self, key: Hashable) -> list[int]:
        """Candidates under ``key``, in libbpf's iteration order (do not modify)."""
        entries = self._lists.get(key)
        if entries is None:
            return []
        if (self._epoch - self._epochs[key]) & 1:
            entries.reverse()
        self._epochs[key] = self._epoch
        return entries

    def add(self, key: Hashable, type_id: int) -> None:
        if self._cap == 0 or (self._size + 1) * 4 // 3 > self._cap:
            self._cap_bits = max(self._cap_bits + 1, self._MIN_CAP_BITS)
            self._cap = 1 << self._cap_bits
            self._epoch += 1
        entries = self.get(key)
        if not entries:
            self._lists[key] = entries = []
            self._epochs[key] = self._epoch
        entries.insert(0, type_id)
        self._size += 1


class _Dedup:
    """State of one deduplication run, over ids ``0 .. end_id - 1`` (base ids included).

    Types are seen only as kind, shape and DFS-ordered refs (see :func:`dedup_graph`).
    """

    def __init__(
        self,
        kinds: list[int],
        shapes: list[tuple[Hashable, ...]],
        refs: list[tuple[int, ...]],
        start_id: int,
    ) -> None:
        self.start_id = start_id
        n = len(kinds)
        self.n = n
        self.kinds = kinds
        self.shapes = shapes
        self.refs = refs
        # map[id]: the id's canonical representative (possibly via a chain), or a marker.
        self.map = [UNPROCESSED] * n
        self.map[0] = 0
        self.table = _CandidateTable()
        # Enums are candidates by name (a forward declaration has no values to compare);
        # these two only make the common case (no forward declaration) quick.
        self.enum_exact: dict[Hashable, int] = {}
        self.enum_fwd_names: set[str] = set()
        self.hypot: dict[int, int] = {}
        self.hypot_adjust_canon = False
        for i in range(1, n):
            if self.kinds[i] in _NEVER_MERGED:
                self.map[i] = i
        for i in range(1, start_id):
            self.map[i] = i
            if self.kinds[i] not in _NEVER_MERGED:
                self._add_canonical(i)

    def _error(self, message: str) -> BtfError:
        return BtfError(f"BTF dedup: {message}")

    def _key(self, type_id: int) -> Hashable:
        """The dedup table key of a type (for reference types: once its refs are final)."""
        kind = self.kinds[type_id]
        if kind in (_ENUM, _ENUM64):
            return (_ENUM_KEY, self.shapes[type_id][1])
        if kind in _REFERENCE:
            return (self.shapes[type_id], self.refs[type_id])
        if kind in _COMPOSITE:
            return self._composite_key(type_id)
        return self.shapes[type_id]

    def _composite_key(self, type_id: int) -> Hashable:
        """A struct's shape plus the name and kind class of each member's type.

        Only a filter, to keep the candidate lists short (vmlinux has 1,601 anonymous unions
        of one shape): two types that the equivalence DFS accepts as a pair always have the
        same name and the same kind once a FWD counts as its struct/union and an ENUM64 as an
        ENUM, so no candidate libbpf could accept is filtered out, and order is kept.
        """
        shapes, kinds = self.shapes, self.kinds
        classes = _KIND_CLASS
        fwd_class = self._fwd_kind
        member_sig = tuple(
            (shapes[r][1], fwd_class(r) if kinds[r] == _FWD else classes[kinds[r]])
            for r in self.refs[type_id]
        )
        return (self.shapes[type_id], member_sig)

    def _add_canonical(self, type_id: int, key: Hashable = None) -> None:
        """Make ``type_id`` a candidate for the types that come after it."""
        self.table.add(self._key(type_id) if key is None else key, type_id)
        if self.kinds[type_id] in (_ENUM, _ENUM64):
            if self._is_enum_fwd(type_id):
                self.enum_fwd_names.add(str(self.shapes[type_id][1]))
            elif self.enum_exact.setdefault(self.shapes[type_id], type_id) != type_id:
                self.enum_exact[self.shapes[type_id]] = -1  # not unique: walk the list

    # ----------------------------------------------------------------------------- helpers

    def resolve(self, type_id: int) -> int:
        """Follow the canonical map to the end of its chain."""
        m = self.map
        while m[type_id] >= 0 and m[type_id] != type_id:
            type_id = m[type_id]
        return type_id

    def resolve_fwd(self, type_id: int) -> int:
        """A FWD's struct/union if it has been resolved to one, else the id itself."""
        if self.kinds[type_id] != _FWD:
            return type_id
        target = self.resolve(type_id)
        return type_id if self.kinds[target] == _FWD else target

    def _fwd_kind(self, type_id: int) -> int:
        return _UNION if self.shapes[type_id][2] else _STRUCT  # a FWD's shape ends in is_union

    def _is_enum_fwd(self, type_id: int) -> bool:
        """An ENUM/ENUM64 without values: how ``enum e;`` reaches BTF."""
        return self.kinds[type_id] in (_ENUM, _ENUM64) and not self.shapes[type_id][4]

    def _compat_enum(self, a: int, b: int) -> bool:
        """libbpf's enum compatibility: equal, or one is a forward declaration of the other."""
        if not self._is_enum_fwd(a) and not self._is_enum_fwd(b):
            return self.shapes[a] == self.shapes[b]
        return self.shapes[a][1] == self.shapes[b][1]

    def _identical_arrays(self, a: int, b: int) -> bool:
        return (
            self.kinds[a] == _ARRAY
            and self.kinds[b] == _ARRAY
            and self.shapes[a] == self.shapes[b]
            and self.refs[a] == self.refs[b]
        )

    def _identical_structs(self, a: int, b: int) -> bool:
        """Same struct down to the referenced ids (identical arrays/structs allowed inside).

        The compiler sometimes emits two copies of one struct or array in a single unit;
        without this the DFS would see a contradiction where there is none.
        """
        if self.kinds[a] not in _COMPOSITE or self.shapes[a] != self.shapes[b]:
            return False
        for ma, mb in zip(self.refs[a], self.refs[b], strict=True):
            if ma == mb or self._identical_arrays(ma, mb) or self._identical_structs(ma, mb):
                continue
            return False
        return True

    # ----------------------------------------------------------------------------- stages

    def primitive(self, type_id: int) -> None:
        new_id = type_id
        shape = self.shapes[type_id]
        if self.kinds[type_id] in (_ENUM, _ENUM64):
            name = str(shape[1])
            exact = self.enum_exact.get(shape)
            if self._is_enum_fwd(type_id):
                # A forward declaration merges into the first candidate, full or not.
                candidates = self.table.get((_ENUM_KEY, name))
                if candidates:
                    new_id = candidates[0]
            elif name not in self.enum_fwd_names and exact != -1:
                if exact is not None:
                    new_id = exact
            else:
                # Walk the candidates: stop at an identical enum; each forward declaration
                # met before it now stands for this enum.
                for cand in self.table.get((_ENUM_KEY, name)):
                    if self.shapes[cand] == shape:
                        new_id = cand
                        break
                    if self._is_enum_fwd(cand):
                        self.map[cand] = type_id
        else:
            candidates = self.table.get(shape)
            if candidates:
                new_id = candidates[0]
        self.map[type_id] = new_id
        if new_id == type_id:
            self._add_canonical(type_id)

    def composite(self, type_id: int) -> None:
        if self.map[type_id] >= 0:
            return  # mapped already, as a side effect of an earlier struct's equivalence
        new_id = type_id
        for cand in self.table.get(self._composite_key(type_id)):
            self.hypot = {}
            self.hypot_adjust_canon = False
            if not self.is_equiv(type_id, cand):
                continue
            self.merge_hypot()
            if self.hypot_adjust_canon:
                continue  # equivalence would need a base FWD changed: not equivalent
            new_id = cand
            break
        self.map[type_id] = new_id
        if new_id == type_id:
            self._add_canonical(type_id)

    def is_equiv(self, cand_id: int, canon_id: int) -> bool:
        """Whether the type graphs from ``cand_id`` and ``canon_id`` are equivalent.

        Iterative pre-order DFS (vmlinux graphs are far deeper than Python's recursion
        limit); pairs are visited in exactly the order of libbpf's recursion, which matters
        because the hypothetical map is filled in visiting order.
        """
        kinds, shapes, refs, hypot = self.kinds, self.shapes, self.refs, self.hypot
        m = self.map
        stack = [(cand_id, canon_id)]
        while stack:
            cand, canon = stack.pop()
            # resolve(cand) == resolve(canon), inlined: this loop visits every pair.
            a, b = cand, canon
            nxt = m[a]
            while nxt >= 0 and nxt != a:
                a, nxt = nxt, m[nxt]
            nxt = m[b]
            while nxt >= 0 and nxt != b:
                b, nxt = nxt, m[nxt]
            if a == b:
                continue
            if kinds[canon] == _FWD:
                canon = self.resolve_fwd(canon)
            seen = hypot.get(canon)
            if seen is not None:
                if seen == cand:
                    continue
                if self._identical_arrays(seen, cand) or self._identical_structs(seen, cand):
                    continue
                return False
            hypot[canon] = cand
            cand_kind, canon_kind = kinds[cand], kinds[canon]
            if shapes[cand][1] != shapes[canon][1]:  # names differ
                return False
            if (cand_kind == _FWD or canon_kind == _FWD) and cand_kind != canon_kind:
                if cand_kind == _FWD:
                    real_kind, fwd_kind = canon_kind, self._fwd_kind(cand)
                else:
                    real_kind, fwd_kind = cand_kind, self._fwd_kind(canon)
                    if fwd_kind == real_kind and canon < self.start_id:
                        self.hypot_adjust_canon = True  # a base FWD would need resolving
                if fwd_kind != real_kind:
                    return False
                continue
            if cand_kind != canon_kind:
                return False
            if cand_kind in (_ENUM, _ENUM64):
                if not self._compat_enum(cand, canon):
                    return False
                continue
            if cand_kind in _NEVER_MERGED or cand_kind == BtfKind.DECL_TAG:
                raise self._error(f"type #{cand} of kind {BtfKind(cand_kind).name} is referenced")
            if shapes[cand] != shapes[canon]:
                return False
            # Children go on the stack reversed so the first is checked first.
            stack.extend(zip(reversed(refs[cand]), reversed(refs[canon]), strict=True))
        return True

    def merge_hypot(self) -> None:
        """Record what a successful equivalence proved: FWD resolutions, struct mappings.

        Struct-to-struct mappings are only a shortcut (each struct would be found equivalent
        on its own turn anyway), so they are only taken towards structs that are canonical
        already.
        """
        m, kinds, resolve = self.map, self.kinds, self.resolve
        for canon, targ in self.hypot.items():
            t_id = resolve(targ)
            c_id = resolve(canon)
            t_kind, c_kind = kinds[t_id], kinds[c_id]
            if t_kind != _FWD and c_kind == _FWD:
                m[c_id] = t_id
            if self.hypot_adjust_canon:
                continue
            if t_kind == _FWD and c_kind != _FWD:
                m[t_id] = c_id
            if t_kind in _COMPOSITE and c_kind != _FWD and m[c_id] >= 0 and m[t_id] < 0:
                m[t_id] = c_id

    def resolve_fwds(self) -> None:
        """Point each remaining FWD at the only canonical struct/union of its name, if any."""
        by_name: dict[str, int] = {}
        for type_id in range(1, self.n):
            if self.kinds[type_id] in _COMPOSITE and self.map[type_id] == type_id:
                name = str(self.shapes[type_id][1])
                by_name[name] = 0 if name in by_name else type_id
        for type_id in range(self.start_id, self.n):
            if self.kinds[type_id] != _FWD or self.map[type_id] != type_id:
                continue
            cand = by_name.get(str(self.shapes[type_id][1]))
            if cand and self.kinds[cand] == self._fwd_kind(type_id):
                self.map[type_id] = cand

    def reference(self, root: int) -> None:
        """Deduplicate ``root`` after everything it refers to (iterative post-order)."""
        m, kinds, refs, shapes, table = self.map, self.kinds, self.refs, self.shapes, self.table
        resolve = self.resolve
        stack = [root]
        while stack:
            type_id = stack[-1]
            state = m[type_id]
            if state >= 0:
                stack.pop()
                continue
            if state == UNPROCESSED:
                if kinds[type_id] not in _REFERENCE:
                    raise self._error(f"type #{type_id} was left unprocessed")
                m[type_id] = IN_PROGRESS
                pending = []
                for ref in refs[type_id]:
                    if m[ref] == IN_PROGRESS:
                        raise self._error(
                            f"type #{type_id} ({BtfKind(kinds[type_id]).name}) is part of a "
                            "reference loop that goes through no struct or union"
                        )
                    if m[ref] == UNPROCESSED:
                        pending.append(ref)
                if pending:
                    stack.extend(reversed(pending))
                    continue
            stack.pop()
            key = (shapes[type_id], tuple([resolve(r) for r in refs[type_id]]))
            candidates = table.get(key)
            if candidates:
                m[type_id] = candidates[0]
            else:
                m[type_id] = type_id
                self._add_canonical(type_id, key)

    def run(self) -> list[int]:
        """Run every stage; return the final id of each input id."""
        end = self.n
        own = range(self.start_id, end)
        kinds = self.kinds
        for type_id in own:
            if kinds[type_id] in _PRIMITIVE:
                self.primitive(type_id)
        for type_id in own:
            if kinds[type_id] in _COMPOSITE:
                self.composite(type_id)
        self.resolve_fwds()
        for type_id in own:
            self.reference(type_id)
        # Compact: canonical types keep their relative order.
        final = list(range(end))
        next_id = self.start_id
        for type_id in own:
            if self.map[type_id] == type_id:
                final[type_id] = next_id
                next_id += 1
        resolve = self.resolve
        return [final[resolve(type_id)] for type_id in range(end)]


def dedup(source: BtfBuilder | Btf) -> tuple[BtfBuilder, list[int]]:
    """Deduplicate ``source``'s types; return the result and the id remapping.

    ``remap[old_id]`` is the id in the result of what ``old_id`` named in ``source``, for
    every id from 0 to ``source.end_id - 1``, so that callers can rewrite type ids held
    elsewhere (.BTF.ext records, symbol tables).  Void maps to 0 and a base id to itself,
    except, as in libbpf, a base FWD or enum declaration that a split type completed.
    The result has the same base as ``source``; strings asked for with
    :meth:`BtfBuilder.add_string` are asked for again, in the same order, so their offsets
    stay valid.
    """
    types = source.types() if isinstance(source, BtfBuilder) else list(source)
    start_id = source.start_id
    described: list[BtfType] = []
    if source.base is not None:
        described.extend(source.base[i] for i in range(1, start_id))
    described.extend(types)
    kinds: list[int] = [0]
    shapes: list[tuple[Hashable, ...]] = [(0, "")]  # void: kind UNKN, no name
    refs: list[tuple[int, ...]] = [()]
    for t in described:
        kinds.append(t.kind)
        shapes.append(shape_of(t))
        refs.append(dfs_refs(t))
    remap, canonical = dedup_graph(kinds, shapes, refs, start_id)
    out = BtfBuilder(source.base)
    if isinstance(source, BtfBuilder):
        for text in source.extra_strings:
            out.add_string(text)
    for type_id in canonical:
        out.add(map_type_ids(types[type_id - start_id], remap.__getitem__))
    return out, remap


def dedup_graph(
    kinds: list[int],
    shapes: list[tuple[Hashable, ...]],
    refs: list[tuple[int, ...]],
    start_id: int = 1,
) -> tuple[list[int], list[int]]:
    """:func:`dedup` on types given as ``kinds``, ``shapes`` (:func:`shape_of`) and
    ``refs`` (:func:`dfs_refs`), indexed by type id (index 0 is void: ``0``, ``(0, "")``,
    ``()``; ids below ``start_id`` are the base's).

    Returns ``remap`` (as :func:`dedup`'s) and the ids of the canonical types, in order:
    the result's types are those, with their ids rewritten through ``remap``.  This is the
    algorithm without any type object, so that a caller holding types under other ids (the
    linker, with one id map per input) need not build renumbered copies of them first.
    The lists are used in place and must not change during the call.
    """
    state = _Dedup(kinds, shapes, refs, start_id)
    remap = state.run()
    m = state.map
    return remap, [i for i in range(start_id, len(kinds)) if m[i] == i]
