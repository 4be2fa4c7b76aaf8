"""BTF to C declarations: the output of ``bpftool btf dump file FILE format c``.

This re-implements libbpf's ``btf_dump`` (as built into bpftool 7.1) because a generated
``vmlinux.h`` or skeleton is only trustworthy if it is *exactly* what the reference tools would
produce: same declarations, same order, same spelling, same padding.  The work has two passes
per requested type:

1. **Order** (:meth:`CDumper._order`): a depth-first walk that queues every named definition the
   type needs before it.  An edge is *strong* (the target must be fully defined first) when the
   target is embedded by value or is anonymous, and *weak* (a forward declaration suffices)
   when it is reached through a pointer and is named.
2. **Emit** (:meth:`CDumper._emit`): prints each queued definition, adding forward declarations
   for types still being emitted further up (pointer cycles), inlining anonymous structs,
   unions and enums where they are used.

A :class:`CDumper` remembers what it has emitted and which names it has handed out, exactly
like one ``struct btf_dump``: asking for the same type twice prints it once, and a second type
named like an earlier one is renamed ``name___2``.  Code generators keep one dumper per output
file for that reason.

Hostile BTF ends in a :class:`BtfError` naming the type, where libbpf overflows its stack or
loops: a reference cycle with no named struct or union in it (a pointer to itself, an array
of itself), or a struct whose size or member offsets reach 2^31 bits.  Output can be streamed
(:func:`write_c`) so that a legitimately huge dump is never held in memory whole.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from pybpf.btf.btf import Btf
from pybpf.btf.c_dump_padding import guess_pointer_size, padding_fields
from pybpf.btf.layout import TypeLayout
from pybpf.btf.types import (
    VOID,
    BtfArray,
    BtfConst,
    BtfDatasec,
    BtfDeclTag,
    BtfEnum,
    BtfEnum64,
    BtfFloat,
    BtfFunc,
    BtfFuncProto,
    BtfFwd,
    BtfInt,
    BtfPtr,
    BtfRestrict,
    BtfStruct,
    BtfType,
    BtfTypedef,
    BtfTypeTag,
    BtfUnion,
    BtfVar,
    BtfVolatile,
    Modifier,
)
from pybpf.errors import BtfError

__all__ = ["FOOTER", "HEADER", "CDumper", "dump_c", "write_c"]

# Per-type ordering and emission states (libbpf's btf_dump_type_{order,emit}_state).
_NOT_DONE, _IN_PROGRESS, _DONE = 0, 1, 2

_MAX_INDENT = 13
"""libbpf indents with at most 13 tabs, however deep the nesting."""

_RECURSION_LIMIT = 20_000
"""Python frames allowed for the recursive walks (3.11 frames cost no C stack)."""

_MAX_NAME = 255
"""libbpf builds a renamed type's ``name___N`` in a 256-byte buffer."""

_MAX_LAYOUT_BITS = 1 << 31
"""Bit offsets a struct definition can mean: libbpf (so bpftool) keeps them in an ``int``.

A struct of 256 MiB or more, or a member placed past its struct's end, would print as
millions of padding lines computed from overflowed offsets; such a type is refused instead.
"""

_SPILL_PIECES = 4096
"""Text pieces a streaming dump buffers before handing them to its writer."""

_MISSING_BASE_TYPES = {
    "__Poly8_t": "unsigned char",
    "__Poly16_t": "unsigned short",
    "__Poly64_t": "unsigned long long",
    "__Poly128_t": "unsigned __int128",
}
"""GCC's internal Arm SIMD base types, which clang does not know: aliased to standard ones."""

_NOTHING_TO_ORDER = frozenset({BtfFunc, BtfVar, BtfDatasec, BtfDeclTag, BtfInt, BtfFloat})
_MODIFIERS = frozenset({BtfVolatile, BtfConst, BtfRestrict, BtfTypeTag})
_REFERENCE_KINDS = frozenset(
    {BtfPtr, BtfTypedef, BtfVolatile, BtfConst, BtfRestrict, BtfTypeTag}
    | {BtfFunc, BtfVar, BtfDeclTag}
)
"""Kinds whose only reference is ``.type``."""

_CV_SPELLING: dict[type, str] = {
    BtfVolatile: "volatile ",
    BtfConst: "const ",
    BtfRestrict: "restrict ",
}

HEADER = (
    "#ifndef __VMLINUX_H__\n"
    "#define __VMLINUX_H__\n"
    "\n"
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n"
    "#endif\n"
    "\n"
)
"""bpftool's preamble: the include guard and CO-RE field access for every record type."""

FOOTER = (
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute pop\n"
    "#endif\n"
    "\n"
    "#endif /* __VMLINUX_H__ */\n"
)


def _indent(level: int) -> str:
    return "\t" * min(level, _MAX_INDENT)


class CDumper:
    """Converts BTF types to C, remembering what was already emitted (one ``btf_dump``)."""

    def __init__(self, btf: Btf, *, ptr_size: int | None = None) -> None:
        """``ptr_size`` defaults to libbpf's guess from the size of ``long`` in ``btf``."""
        self.btf = btf
        self._types = btf.types_by_id
        self.layout = TypeLayout(btf, guess_pointer_size(btf) if ptr_size is None else ptr_size)
        count = btf.end_id
        self._order_state = bytearray(count)
        self._emit_state = bytearray(count)
        self._fwd_emitted = bytearray(count)
        self._order_state[VOID] = _DONE
        self._emit_state[VOID] = _DONE
        self._referenced: bytearray | None = None
        self._names: dict[int, str] = {}
        self._type_names: dict[str, int] = {}
        self._ident_names: dict[str, int] = {}
        self._strip_mods = False
        self._out: list[str] = []
        self._sink: Callable[[str], object] | None = None
        self._order_path = bytearray(count)
        """Which reference types the ordering walk is inside, one bit per ``through_ptr``."""
        self._decl_path: set[int] = set()
        """Anonymous structs and prototypes whose declarations are being written out."""
        self.warnings: list[str] = []
        """What libbpf would have logged with pr_warn (malformed BTF it carries on past)."""

    # ------------------------------------------------------------------------------ public API

    def emit_type(self, type_id: int) -> str:
        """The C for ``type_id`` and every definition it needs that was not emitted before.

        Mirrors ``btf_dump__dump_type``: for a VAR, FUNC or DATASEC (which have no C type
        declaration) or an already-emitted type, the result is empty.
        """
        return self.emit_types((type_id,))

    def emit_types(self, type_ids: Iterable[int]) -> str:
        """:meth:`emit_type` over several ids, concatenated."""
        parts: list[str] = []
        self.write_types(type_ids, parts.append)
        return "".join(parts)

    def write_types(self, type_ids: Iterable[int], write: Callable[[str], object]) -> None:
        """:meth:`emit_types`, handing the text to ``write`` piece by piece as it is made.

        Memory stays bounded by the size of a piece, not of the output: a struct with a huge
        hole prints millions of padding lines, which a CLI should stream, not collect.  The
        text is that of :meth:`emit_types`; after an error, ``write`` has had what came
        before the faulty type.
        """
        order_state = self._order_state
        end_id = self.btf.end_id
        out = self._out
        self._sink = write
        try:
            with self._deep_recursion():
                for type_id in type_ids:
                    # A root already ordered queues nothing: most of vmlinux's roots were
                    # reached from an earlier one, so skipping them here saves a call each.
                    if 0 <= type_id < end_id and order_state[type_id] == _DONE:
                        continue
                    self._dump_type(type_id)
                    if len(out) >= _SPILL_PIECES:
                        self._spill()
            self._spill()
        finally:
            self._sink = None

    def type_declaration(
        self, type_id: int, name: str = "", indent_level: int = 0, strip_mods: bool = False
    ) -> str:
        """A declarator such as ``int (*fp)(int)`` or ``struct foo arr[4]``.

        Mirrors ``btf_dump__emit_type_decl``: anonymous structs, unions and enums are spelled
        out inline (at ``indent_level``); ``strip_mods`` drops const/volatile/restrict and type
        tags, as skeletons do for their writable views of ``.rodata``.
        """
        self._check_id(type_id)
        self._strip_mods = strip_mods
        try:
            with self._deep_recursion():
                self._emit_type_decl(type_id, name, indent_level)
        finally:
            self._strip_mods = False
        return self._take()

    def type_name(self, type_id: int) -> str:
        """The name this dumper gives a struct, union or enum, ``___N``-renamed on a clash.

        Like the first mention in emitted C, this reserves the name: a later type with the same
        name is the one that gets renamed.
        """
        self._check_id(type_id)
        return self._type_name(type_id)

    # ------------------------------------------------------------------------------ plumbing

    def _take(self) -> str:
        text = "".join(self._out)
        self._out.clear()
        return text

    def _spill(self) -> None:
        """Hand the text written so far to the streaming writer, if there is one."""
        if self._sink is not None and self._out:
            self._sink(self._take())

    def _error(self, message: str) -> BtfError:
        return BtfError(message, file=self.btf.file, section=self.btf.section)

    def _cycle(self, type_id: int, what: str) -> BtfError:
        """A reference cycle C cannot spell: no named struct or union breaks it."""
        described = self.btf.describe(type_id)
        return self._error(f"unsatisfiable type cycle, id:[{type_id}]: {described} {what}")

    def _check_id(self, type_id: int) -> None:
        if type_id < 0 or type_id >= self.btf.end_id:
            raise self._error(f"type id {type_id} out of range [0, {self.btf.end_id - 1}]")

    @contextmanager
    def _deep_recursion(self) -> Iterator[None]:
        """Room for the recursive walks, and a BtfError instead of a crash past it.

        Real BTF nests shallowly (vmlinux needs under 100 frames), but a crafted chain of
        thousands of pointers or embedded anonymous structs must not escape as RecursionError.
        """
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, _RECURSION_LIMIT))
        try:
            yield
        except RecursionError:
            self._out.clear()
            raise self._error("type graph nested too deeply to print as C") from None
        finally:
            sys.setrecursionlimit(limit)

    def _dump_type(self, type_id: int) -> None:
        self._check_id(type_id)
        queue: list[int] = []
        self._order(type_id, False, queue)
        for queued in queue:
            self._emit(queued, 0)

    def _referenced_types(self) -> bytearray:
        """Which types are used by another type (only anonymous enums care; built on demand).

        An anonymous enum nobody refers to is a top-level block of constants and gets its own
        declaration; a referenced one is written inline where it is used.
        """
        refs = self._referenced
        if refs is not None:
            return refs
        refs = bytearray(self.btf.end_id)
        types = self._types
        for type_id in range(1, self.btf.end_id):
            t = types[type_id]
            cls = type(t)
            if cls in _REFERENCE_KINDS:
                refs[t.type] = 1  # type: ignore[union-attr]
            elif isinstance(t, BtfStruct | BtfUnion):
                for member in t.members:
                    refs[member.type] = 1
            elif isinstance(t, BtfFuncProto):
                for param in t.params:
                    refs[param.type] = 1
            elif isinstance(t, BtfArray):
                refs[t.type] = 1
                refs[t.index_type] = 1
            elif isinstance(t, BtfDatasec):
                for var in t.vars:
                    refs[var.type] = 1
        self._referenced = refs
        return refs

    # ------------------------------------------------------------------------------ names

    def _resolve_name(self, type_id: int, seen: dict[str, int]) -> str:
        cached = self._names.get(type_id)
        if cached is not None:
            return cached
        name = self.btf.name_of(type_id)
        if not name:
            return ""
        t = self._types[type_id]
        if not (isinstance(t, BtfFwd) or (isinstance(t, BtfEnum) and not t.values)):
            dups = self._count_name(seen, name)
            if dups > 1:
                name = f"{name}___{dups}"[:_MAX_NAME]
        self._names[type_id] = name
        return name

    @staticmethod
    def _count_name(seen: dict[str, int], name: str) -> int:
        count = seen.get(name, 0) + 1
        seen[name] = count
        return count

    def _type_name(self, type_id: int) -> str:
        """Struct/union/enum tags share one namespace (C's tag namespace)."""
        return self._resolve_name(type_id, self._type_names)

    def _ident_name(self, type_id: int) -> str:
        """Typedefs share the ordinary identifier namespace with enumerators."""
        return self._resolve_name(type_id, self._ident_names)

    # ------------------------------------------------------------------------------ ordering

    def _order(self, type_id: int, through_ptr: bool, queue: list[int]) -> int:
        """Queue the named definitions ``type_id`` needs; 1 for a strong link, 0 for weak.

        Only defining kinds (struct, union, enum, fwd, typedef) get a state; pointers, arrays,
        prototypes and modifiers are paths whose strength depends on how they were reached.
        Kinds are told apart by ``type(t) is ...``: this runs ~350,000 times for vmlinux,
        and a ``match`` on class patterns tried up to 20 ``isinstance``.
        """
        state = self._order_state
        if state[type_id] == _DONE:
            return 1
        t = self._types[type_id]
        if state[type_id] == _IN_PROGRESS:
            if isinstance(t, BtfStruct | BtfUnion) and through_ptr and t.name:
                return 0  # a cycle through a pointer: a forward declaration breaks it
            raise self._error(f"unsatisfiable type cycle, id:[{type_id}]")
        cls = type(t)
        if cls in _NOTHING_TO_ORDER:
            # Nothing to declare in C (FUNCs are half of vmlinux's types), or a base type.
            state[type_id] = _DONE
            return 0
        if type(t) is BtfStruct or type(t) is BtfUnion:
            if through_ptr and t.name:
                return 0
            state[type_id] = _IN_PROGRESS
            for member in t.members:
                if state[member.type] != _DONE:
                    self._order(member.type, False, queue)
            if t.name:  # anonymous ones are written inline, not queued
                queue.append(type_id)
            state[type_id] = _DONE
            return 1
        if type(t) is BtfEnum or type(t) is BtfEnum64 or type(t) is BtfFwd:
            if t.name or not self._referenced_types()[type_id]:
                queue.append(type_id)
            state[type_id] = _DONE
            return 1
        # What is left (pointers, prototypes, typedefs, qualifiers, arrays) leads on to other
        # types.  Where the walk goes depends only on the type and ``through_ptr``: meeting
        # the same pair again inside its own walk means a cycle that no struct or union
        # breaks, which C cannot spell and libbpf would follow until its stack overflows.
        path = self._order_path
        bit = 2 if through_ptr else 1
        if path[type_id] & bit:
            raise self._cycle(type_id, "leads back to itself with no struct or union between")
        path[type_id] |= bit
        try:
            if type(t) is BtfPtr:
                strong = self._order(t.type, True, queue)
                state[type_id] = _DONE
                return strong
            if type(t) is BtfFuncProto:
                strong = self._order(t.return_type, through_ptr, queue) > 0
                for param in t.params:
                    if (
                        state[param.type] == _DONE
                        or self._order(param.type, through_ptr, queue) > 0
                    ):
                        strong = True
                return int(strong)
            if type(t) is BtfTypedef:
                strong = self._order(t.type, through_ptr, queue)
                if through_ptr and not strong:
                    return 0  # like a named struct behind a pointer: usable undefined
                queue.append(type_id)
                state[type_id] = _DONE
                return 1
            if cls in _MODIFIERS:
                return self._order(t.type, through_ptr, queue)  # type: ignore[union-attr]
            if type(t) is BtfArray:
                return self._order(t.type, False, queue)
        finally:
            path[type_id] &= ~bit
        state[type_id] = _DONE  # pragma: no cover - every kind is handled above
        return 0

    # ------------------------------------------------------------------------------ emission

    def _emit(self, type_id: int, cont_id: int) -> None:
        """Emit ``type_id`` if needed; ``cont_id`` is the struct being defined around it."""
        emit_state = self._emit_state
        if emit_state[type_id] == _DONE:
            return
        t = self._types[type_id]
        if emit_state[type_id] == _IN_PROGRESS:
            self._emit_in_progress(type_id, t, cont_id)
            return
        write = self._out.append
        match t:
            case BtfInt():
                alias = _MISSING_BASE_TYPES.get(self._type_name(type_id))
                if alias is not None:
                    write(f"typedef {alias} {self._type_name(type_id)};\n\n")
                emit_state[type_id] = _DONE
            case BtfEnum() | BtfEnum64():
                if cont_id == 0:
                    self._emit_enum_def(type_id, t, 0)
                    write(";\n\n")
                emit_state[type_id] = _DONE
            case BtfPtr() | BtfVolatile() | BtfConst() | BtfRestrict() | BtfTypeTag():
                self._emit(t.type, cont_id)
            case BtfArray():
                self._emit(t.type, cont_id)
            case BtfFwd():
                self._emit_fwd_def(type_id, t)
                write(";\n\n")
                emit_state[type_id] = _DONE
            case BtfTypedef():
                emit_state[type_id] = _IN_PROGRESS
                self._emit(t.type, type_id)
                # A pointer cycle may already have printed this typedef as its own forward decl.
                if not self._fwd_emitted[type_id] and t.name != "__builtin_va_list":
                    self._emit_typedef_def(type_id, t, 0)
                    write(";\n\n")
                emit_state[type_id] = _DONE
            case BtfStruct() | BtfUnion():
                self._emit_composite(type_id, t, cont_id)
            case BtfFuncProto():
                self._emit(t.return_type, cont_id)
                for param in t.params:
                    self._emit(param.type, cont_id)
            case _:
                pass

    def _emit_in_progress(self, type_id: int, t: BtfType, cont_id: int) -> None:
        """A type met again while its own definition is being emitted: forward-declare it."""
        if self._fwd_emitted[type_id]:
            return
        write = self._out.append
        if isinstance(t, BtfStruct | BtfUnion):
            if type_id == cont_id:
                return  # a struct referring to itself needs no forward declaration
            if not t.name:
                self.warnings.append(f"anonymous struct/union loop, id:[{type_id}]")
                return
            self._emit_struct_fwd(type_id, t)
            write(";\n\n")
            self._fwd_emitted[type_id] = 1
        elif isinstance(t, BtfTypedef):
            # A typedef can stand in for a forward declaration when only pointed to.
            if t.name != "__builtin_va_list":
                self._emit_typedef_def(type_id, t, 0)
                write(";\n\n")
            self._fwd_emitted[type_id] = 1

    def _emit_composite(self, type_id: int, t: BtfStruct | BtfUnion, cont_id: int) -> None:
        self._emit_state[type_id] = _IN_PROGRESS
        top_level = cont_id == 0
        if top_level or not t.name:
            # Members are written out here, so their types must be declared first.
            inner_cont = type_id if t.name else cont_id
            emit_state = self._emit_state
            for member in t.members:
                if emit_state[member.type] != _DONE:
                    self._emit(member.type, inner_cont)
        elif not self._fwd_emitted[type_id] and type_id != cont_id:
            self._emit_struct_fwd(type_id, t)
            self._out.append(";\n\n")
            self._fwd_emitted[type_id] = 1
        if top_level:
            self._emit_struct_def(type_id, t, 0)
            self._out.append(";\n\n")
            self._emit_state[type_id] = _DONE
        else:
            self._emit_state[type_id] = _NOT_DONE

    # ------------------------------------------------------------------------------ definitions

    def _emit_struct_fwd(self, type_id: int, t: BtfStruct | BtfUnion) -> None:
        keyword = "struct" if isinstance(t, BtfStruct) else "union"
        sep = " " if t.name else ""
        self._out.append(f"{keyword}{sep}{self._type_name(type_id)}")

    def _emit_struct_def(self, type_id: int, t: BtfStruct | BtfUnion, level: int) -> None:
        self._check_extent(type_id, t)
        write = self._out.append
        layout = self.layout
        is_struct = isinstance(t, BtfStruct)
        align = layout.align_of(type_id)
        packed = isinstance(t, BtfStruct) and layout.is_packed(t)
        keyword = "struct" if is_struct else "union"
        sep = " " if t.name else ""
        write(f"{keyword}{sep}{self._type_name(type_id)} {{")
        inner = _indent(level + 1)
        off = 0
        prev_bitfield = False
        for member in t.members:
            bits = member.bitfield_size
            m_off = member.offset
            if off < m_off:
                m_align = 1 if packed else layout.align_of(member.type)
                self._emit_padding(off, m_off, m_align, prev_bitfield and bits != 0, inner)
            write("\n" + inner)
            self._emit_type_decl(member.type, member.name, level + 1)
            if bits:
                write(f": {bits};")
                off = m_off + bits
                prev_bitfield = True
            else:
                off = m_off + max(0, layout.resolve_size(member.type)) * 8
                prev_bitfield = False
                write(";")
        if is_struct:
            self._emit_padding(off, t.size * 8, align, False, inner)
        if t.members or t.size:
            write("\n" + _indent(level) + "}")
        else:
            write("}")
        if packed:
            write(" __attribute__((packed))")

    def _check_extent(self, type_id: int, t: BtfStruct | BtfUnion) -> None:
        """Refuse a layout no C compiler (nor bpftool's ``int`` arithmetic) can mean."""
        keyword = "struct" if isinstance(t, BtfStruct) else "union"
        named = f"{keyword} '{t.name}'" if t.name else f"anonymous {keyword}"
        what = f"type #{type_id}: {named}"
        bits = t.size * 8
        if bits >= _MAX_LAYOUT_BITS:
            raise self._error(
                f"{what} of {t.size} bytes is too big to print as C (its bit offsets reach 2^31)"
            )
        for i, member in enumerate(t.members):
            if member.offset > bits:
                raise self._error(
                    f"{what}: member {i} '{member.name}' at bit {member.offset} starts past "
                    f"the end of the {t.size}-byte {keyword}"
                )

    def _emit_padding(
        self, cur_off: int, next_off: int, next_align: int, in_bitfield: bool, indent: str
    ) -> None:
        if cur_off >= next_off:
            return
        fields = padding_fields(self.layout.ptr_size, cur_off, next_off, next_align, in_bitfield)
        out = self._out
        for type_name, bits, repeat in fields:
            line = f"\n{indent}{type_name}: {bits};"
            while repeat > 0:
                # A hole of up to 2^31 bits is ~33 million lines: written in blocks, and
                # spilled to a streaming writer as they come.
                block = min(repeat, _SPILL_PIECES)
                out.append(line * block)
                repeat -= block
                if len(out) >= _SPILL_PIECES or block == _SPILL_PIECES:
                    self._spill()

    def _emit_enum_def(self, type_id: int, t: BtfEnum | BtfEnum64, level: int) -> None:
        write = self._out.append
        sep = " " if t.name else ""
        write(f"enum{sep}{self._type_name(type_id)}")
        if not t.values:
            return
        write(" {")
        inner = _indent(level + 1)
        suffix = "" if isinstance(t, BtfEnum) else ("LL" if t.signed else "ULL")
        seen = self._ident_names
        for value in t.values:
            # Enumerators live in the same namespace as typedefs; clashes get ___N too.
            dups = self._count_name(seen, value.name)
            name = f"{value.name}___{dups}" if dups > 1 else value.name
            write(f"\n{inner}{name} = {value.value}{suffix},")
        write("\n" + _indent(level) + "}")

    def _emit_fwd_def(self, type_id: int, t: BtfFwd) -> None:
        keyword = "union" if t.is_union else "struct"
        self._out.append(f"{keyword} {self._type_name(type_id)}")

    def _emit_typedef_def(self, type_id: int, t: BtfTypedef, level: int) -> None:
        name = self._ident_name(type_id)
        if t.type == VOID and name == "__gnuc_va_list":
            # Old GCC emits this typedef to void; spell it the way compilers accept.
            self._out.append("typedef __builtin_va_list __gnuc_va_list")
            return
        self._out.append("typedef ")
        self._emit_type_decl(t.type, name, level)

    # ------------------------------------------------------------------------------ declarators

    def _emit_type_decl(self, type_id: int, field_name: str, level: int) -> None:
        """Declare ``field_name`` of type ``type_id`` in C syntax.

        BTF writes a declaration outside-in (``typedef -> array -> ptr -> const -> int``) while
        C spells it inside-out with modifiers around the name, so the chain is collected on a
        stack down to its terminal type and then unwound by :meth:`_emit_type_chain`.
        """
        btf = self._types
        if type_id != VOID:
            # Fast path for the most common declarations, a member or parameter of a named
            # type (`int x`, `u64 x`, `struct foo x`): no declarator stack to unwind.
            t = btf[type_id]
            cls = type(t)
            if cls is BtfTypedef:
                text = self._ident_name(type_id)
            elif cls is BtfInt or cls is BtfFloat:
                text = t.name
            elif cls is BtfStruct and t.name:
                text = "struct " + self._type_name(type_id)
            elif cls is BtfUnion and t.name:
                text = "union " + self._type_name(type_id)
            else:
                text = ""
            if text:
                self._out.append(f"{text} {field_name}" if field_name else text)
                return
        strip = self._strip_mods
        chain: list[int] = []
        # A chain longer than there are types goes round a cycle of pointers, qualifiers,
        # arrays and return types, which has no end to print (libbpf loops forever on it).
        steps_left = self.btf.end_id
        while True:
            if type_id == VOID:
                chain.append(VOID)
                break
            steps_left -= 1
            if steps_left < 0:
                raise self._cycle(type_id, "is part of a declarator that never ends")
            t = btf[type_id]
            if not (strip and isinstance(t, Modifier)):
                chain.append(type_id)
            match t:
                case BtfPtr() | BtfVolatile() | BtfConst() | BtfRestrict() | BtfTypeTag():
                    type_id = t.type
                case BtfArray():
                    type_id = t.type
                case BtfFuncProto():
                    type_id = t.return_type
                case (
                    BtfStruct() | BtfUnion() | BtfTypedef() | BtfInt() | BtfEnum() | BtfEnum64()
                    | BtfFwd() | BtfFloat()
                ):
                    break
                case _:
                    self.warnings.append(
                        f"unexpected type in decl chain, kind:{int(t.kind)}, id:[{type_id}]"
                    )
                    break
        self._emit_type_chain(chain, field_name, level)

    @contextmanager
    def _inside_decl(self, type_id: int) -> Iterator[None]:
        """Mark an anonymous struct or a prototype as being spelled out inline.

        Its members or parameters are declared from inside it; meeting it again there is a
        cycle no name breaks (``emit_types`` has ruled those out, but ``type_declaration``
        is asked for arbitrary types), so this is the error instead of endless recursion.
        """
        path = self._decl_path
        if type_id in path:
            raise self._cycle(type_id, "is declared inside its own declaration")
        path.add(type_id)
        try:
            yield
        finally:
            path.discard(type_id)

    def _emit_mods(self, chain: list[int]) -> None:
        """Print const/volatile/restrict that qualify the terminal type, left of it."""
        btf = self._types
        while chain and chain[-1] != VOID:
            spelling = _CV_SPELLING.get(type(btf[chain[-1]]))
            if spelling is None:
                return
            self._out.append(spelling)
            chain.pop()

    def _drop_mods(self, chain: list[int]) -> None:
        """Discard qualifiers C cannot express here (GCC's extra ones on arrays and funcs)."""
        btf = self._types
        while chain and chain[-1] != VOID and isinstance(btf[chain[-1]], Modifier):
            chain.pop()

    def _emit_name(self, name: str, last_was_ptr: bool) -> None:
        if name and not last_was_ptr:
            self._out.append(" " + name)
        elif name:
            self._out.append(name)

    def _emit_type_chain(self, chain: list[int], field_name: str, level: int) -> None:
        """Unwind a declarator stack: terminal type first, then pointers and qualifiers.

        Arrays and prototypes wrap the rest of the chain in parentheses and recurse, which is
        how ``int (*fp[3])(char)`` and ``int (* (*f)(int))[4]`` come out.
        """
        btf = self._types
        write = self._out.append
        # Whether the previous token was `*`: decides between `int *x` and `int **x`.
        last_was_ptr = True
        while chain:
            type_id = chain.pop()
            if type_id == VOID:
                self._emit_mods(chain)
                write("void")
                last_was_ptr = False
                continue
            t = btf[type_id]
            match t:
                case BtfInt() | BtfFloat():
                    self._emit_mods(chain)
                    write(t.name)
                case BtfStruct() | BtfUnion():
                    self._emit_mods(chain)
                    if t.name:
                        self._emit_struct_fwd(type_id, t)
                    else:
                        with self._inside_decl(type_id):
                            self._emit_struct_def(type_id, t, level)
                case BtfEnum() | BtfEnum64():
                    self._emit_mods(chain)
                    if t.name:
                        write("enum " + self._type_name(type_id))
                    else:
                        self._emit_enum_def(type_id, t, level)
                case BtfFwd():
                    self._emit_mods(chain)
                    self._emit_fwd_def(type_id, t)
                case BtfTypedef():
                    self._emit_mods(chain)
                    write(self._ident_name(type_id))
                case BtfPtr():
                    write("*" if last_was_ptr else " *")
                case BtfVolatile():
                    write(" volatile")
                case BtfConst():
                    write(" const")
                case BtfRestrict():
                    write(" restrict")
                case BtfTypeTag():
                    self._emit_mods(chain)
                    write(f' __attribute__((btf_type_tag("{t.name}")))')
                case BtfArray():
                    self._emit_array(t, chain, field_name, level, last_was_ptr)
                    return
                case BtfFuncProto():
                    with self._inside_decl(type_id):
                        self._emit_func_proto(t, chain, field_name, level, last_was_ptr)
                    return
                case _:
                    self.warnings.append(
                        f"unexpected type in decl chain, kind:{int(t.kind)}, id:[{type_id}]"
                    )
                    return
            last_was_ptr = isinstance(t, BtfPtr)
        self._emit_name(field_name, last_was_ptr)

    def _emit_array(
        self, t: BtfArray, chain: list[int], field_name: str, level: int, last_was_ptr: bool
    ) -> None:
        write = self._out.append
        self._drop_mods(chain)
        if not chain:
            self._emit_name(field_name, last_was_ptr)
            write(f"[{t.nelems}]")
            return
        next_id = chain[-1]
        multidim = next_id != VOID and isinstance(self._types[next_id], BtfArray)
        if field_name and not last_was_ptr:
            write(" ")
        # `(*p)[4]` needs parentheses; `a[2][3]` must not have them.
        if not multidim:
            write("(")
        self._emit_type_chain(chain, field_name, level)
        if not multidim:
            write(")")
        write(f"[{t.nelems}]")

    def _emit_func_proto(
        self, t: BtfFuncProto, chain: list[int], field_name: str, level: int, last_was_ptr: bool
    ) -> None:
        write = self._out.append
        self._drop_mods(chain)
        if chain:
            write(" (")
            self._emit_type_chain(chain, field_name, level)
            write(")")
        else:
            self._emit_name(field_name, last_was_ptr)
        write("(")
        params = t.params
        # No parameters, or clang's single void parameter: both are `(void)` in C.
        if not params or (len(params) == 1 and params[0].type == VOID):
            write("void)")
            return
        last = len(params) - 1
        for i, param in enumerate(params):
            if i:
                write(", ")
            if i == last and param.type == VOID:
                write("...")  # a trailing void parameter marks varargs
                break
            self._emit_type_decl(param.type, param.name, level)
        write(")")


def dump_c(btf: Btf, type_ids: Iterable[int] | None = None) -> str:
    """The whole ``bpftool btf dump file ... format c`` output, guard and pragmas included.

    ``type_ids`` restricts the dump to those roots (bpftool's ``map ... key|value`` form);
    by default every type, from id 1 (the base's types too, for split BTF), is a root.
    """
    parts: list[str] = []
    write_c(btf, parts.append, type_ids)
    return "".join(parts)


def write_c(
    btf: Btf, write: Callable[[str], object], type_ids: Iterable[int] | None = None
) -> None:
    """:func:`dump_c`, handing the text to ``write`` as it is produced (for the CLI).

    A vmlinux.h, or a struct whose holes take millions of padding lines, is then never held
    in memory whole.  If the BTF turns out to be unprintable part way, ``write`` has had
    the declarations before the faulty type, as bpftool prints them before its error.
    """
    dumper = CDumper(btf)
    write(HEADER)
    dumper.write_types(range(1, btf.end_id) if type_ids is None else type_ids, write)
    write(FOOTER)
