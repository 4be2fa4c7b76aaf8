"""Make an object's BTF acceptable to the running kernel.

Compilers and linkers write BTF for tools, not for the kernel: clang leaves DATASEC sizes
and offsets zero, ``extern`` VARs have a linkage the kernel refuses, the ``.kconfig`` and
``.ksyms`` sections describe values that only exist once the loader lays them out, and an
older kernel rejects kinds newer than itself (FLOAT, DECL_TAG, ENUM64...).  libbpf fixes all
this on a copy of the raw blob (``btf_fixup_datasec``, ``bpf_object__collect_externs``,
``bpf_object__sanitize_btf``); so does this module.

Why patch bytes instead of re-encoding with :class:`~pybpf.btf.builder.BtfBuilder`: every
replacement is same-size, so type ids *and string offsets* survive unchanged.  func_info
and line_info records from ``.BTF.ext`` point into this very string table and stay valid;
a re-encoded table would have to be re-indexed.  Anything new (strings) is appended.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from pybpf.abi.btf import TYPE, VAR_SECINFO, pack_header, unpack_header
from pybpf.abi.sections import BTF, KCONFIG, KSYMS
from pybpf.btf.btf import RECORD_TAIL_SIZE, Btf
from pybpf.btf.types import VOID, BtfKind, FuncLinkage, VarLinkage
from pybpf.errors import BtfError, LoadError
from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.specs import ExternKind, ExternSpec

_U32 = struct.Struct("<I")
_U32_MAX = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class BtfFeatures:
    """Which BTF kinds the running kernel accepts (libbpf's ``FEAT_BTF_*`` probes)."""

    func: bool = True
    func_global: bool = True
    datasec: bool = True
    qmark_datasec: bool = True
    float: bool = True
    decl_tag: bool = True
    type_tag: bool = True
    enum64: bool = True

    @classmethod
    def none(cls) -> BtfFeatures:
        """A kernel from before BTF kinds beyond the basic C types (for tests and probes)."""
        return cls(False, False, False, False, False, False, False, False)


def _info(kind: int, vlen: int, kind_flag: bool = False) -> int:
    return (int(kind_flag) << 31) | (kind << 24) | (vlen & 0xFFFF)


@dataclass
class KernelBtf:
    """A BTF blob for ``BPF_BTF_LOAD`` and the string offsets func/line info need."""

    data: bytes
    strings: dict[str, int] = field(repr=False)

    def string_offset(self, text: str) -> int:
        """Offset of ``text`` in this blob's string section."""
        try:
            return self.strings[text]
        except KeyError:
            raise LoadError(f"BTF string {text!r} is missing from .BTF") from None


class _Head(NamedTuple):
    """The common part of a BTF type; ``size`` is also ``type`` for reference kinds."""

    name_off: int
    kind: int
    vlen: int
    size: int
    kind_flag: bool


class _RawBtf:
    """A mutable copy of a BTF blob with the byte position of every type.

    ``checked`` is the object model's :class:`~pybpf.btf.btf.Btf` of the same bytes, decoded
    in full before anything is patched, so every record, type id and name offset below is
    known to be in range; the only failures left are values that do not fit where the kernel
    wants them, reported by the setters with the type id.  ``file`` names the object in those
    errors.
    """

    def __init__(self, data: bytes, checked: Btf, file: str | None) -> None:
        self.file = file
        self.checked = checked
        checked.validate()  # decodes what the parse left undecoded; a no-op the second time
        if checked.big_endian:
            raise self.error("only little-endian BTF can be loaded on this host", offset=0)
        fields = unpack_header(data)
        _magic, _version, flags, hdr_len, type_off, type_len, str_off, str_len = fields
        self.types = bytearray(data[hdr_len + type_off : hdr_len + type_off + type_len])
        self.strings = bytearray(data[hdr_len + str_off : hdr_len + str_off + str_len])
        self.flags = flags
        self.pos: list[int] = [0]  # type id -> byte offset in self.types; id 0 is void
        at = 0
        while at < len(self.types):
            self.pos.append(at)
            _name, info, _size = TYPE.unpack_from(self.types, at)
            fixed, per = RECORD_TAIL_SIZE[(info >> 24) & 0x1F]
            at += TYPE.size + fixed + per * (info & 0xFFFF)

    def error(self, message: str, *, offset: int | None = None) -> BtfError:
        return BtfError(message, file=self.file, section=BTF, offset=offset)

    # ------------------------------------------------------------------------ accessors

    def count(self) -> int:
        return len(self.pos)

    def header(self, type_id: int) -> _Head:
        """The common part of ``type_id``; ``void`` (0) reads as a nameless kind-0 type."""
        if type_id == VOID:
            return _Head(0, BtfKind.UNKN, 0, 0, False)
        name_off, info, size = TYPE.unpack_from(self.types, self.pos[type_id])
        return _Head(name_off, (info >> 24) & 0x1F, info & 0xFFFF, size, bool(info >> 31))

    def set_header(self, type_id: int, name_off: int, info: int, size: int) -> None:
        self.check_u32(type_id, "size", size)
        TYPE.pack_into(self.types, self.pos[type_id], name_off, info, size)

    def check_u32(self, type_id: int, what: str, value: int) -> None:
        """Values from the ELF side (section sizes, symbol values) must fit BTF's fields."""
        if not 0 <= value <= _U32_MAX:
            raise self.error(
                f"type #{type_id} ({self.checked.describe(type_id)}): {what} {value} does not "
                "fit in 32 bits"
            )

    def set_u32(self, type_id: int, extra_offset: int, value: int) -> None:
        _U32.pack_into(self.types, self.pos[type_id] + TYPE.size + extra_offset, value)

    def string(self, offset: int) -> str:
        """The name at ``offset``, decoded the way the ELF and BTF readers decode names."""
        end = self.strings.index(0, offset)  # validated: every name offset has its NUL
        return self.strings[offset:end].decode("utf-8", "surrogateescape")

    def rename_chars(self, offset: int, mapping: dict[int, int]) -> None:
        """Replace characters of the NUL-terminated string at ``offset`` in place."""
        while self.strings[offset]:
            self.strings[offset] = mapping.get(self.strings[offset], self.strings[offset])
            offset += 1

    def vsis(self, type_id: int) -> list[tuple[int, int, int]]:
        base = self.pos[type_id] + TYPE.size
        vlen = self.header(type_id).vlen
        step = VAR_SECINFO.size
        return [VAR_SECINFO.unpack_from(self.types, base + i * step) for i in range(vlen)]

    def pairs(self, type_id: int, record: int) -> list[tuple[int, int]]:
        """The first two u32 of each ``record``-byte vlen entry (params, enumerators)."""
        base = self.pos[type_id] + TYPE.size
        return [
            (int(_U32.unpack_from(self.types, base + i * record)[0]),
             int(_U32.unpack_from(self.types, base + i * record + 4)[0]))
            for i in range(self.header(type_id).vlen)
        ]  # fmt: skip

    def set_vsis(self, type_id: int, vsis: list[tuple[int, int, int]]) -> None:
        base = self.pos[type_id] + TYPE.size
        for i, (var_id, offset, size) in enumerate(vsis):
            self.check_u32(type_id, f"entry {i} offset", offset)
            self.check_u32(type_id, f"entry {i} size", size)
            VAR_SECINFO.pack_into(self.types, base + i * VAR_SECINFO.size, var_id, offset, size)

    def find_int32(self) -> int:
        for type_id in range(1, self.count()):
            head = self.header(type_id)
            if head.kind == BtfKind.INT and head.size == 4:
                return type_id
        raise self.error("no 32-bit integer type to describe .ksyms externs with")

    def encode(self) -> bytes:
        header = pack_header(len(self.types), len(self.strings), self.flags)
        return header + bytes(self.types) + bytes(self.strings)

    def add_var(self, name: str, type_id: int) -> int:
        """Append a global allocated VAR; returns its type id."""
        self.pos.append(len(self.types))
        self.types += TYPE.pack(self.add_string(name), _info(BtfKind.VAR, 0), type_id)
        self.types += _U32.pack(VarLinkage.GLOBAL_ALLOCATED)
        return len(self.pos) - 1

    def add_string(self, text: str) -> int:
        """Append ``text`` to the string section (existing offsets stay valid)."""
        offset = len(self.strings)
        self.strings += text.encode() + b"\0"
        return offset

    def string_index(self) -> dict[str, int]:
        index: dict[str, int] = {}
        start = 0
        raw = bytes(self.strings)
        while start < len(raw):
            end = raw.index(0, start)
            index.setdefault(raw[start:end].decode(errors="replace"), start)
            start = end + 1
        return index


def kernel_btf(obj: ObjectSpec, features: BtfFeatures | None = None) -> KernelBtf | None:
    """The object's BTF, fixed up and sanitized for a kernel with ``features``.

    ``None`` when the object has no ``.BTF``.  The original BTF is left untouched.
    """
    if obj.btf is None:
        return None
    raw = _RawBtf(obj.btf.data, obj.btf, obj.path)
    _fixup_datasecs(raw, obj)
    _sanitize(raw, features or BtfFeatures())
    return KernelBtf(raw.encode(), raw.string_index())


# ---------------------------------------------------------------------------- DATASECs


def _fixup_datasecs(raw: _RawBtf, obj: ObjectSpec) -> None:
    """Sizes and offsets as the object model placed them (:attr:`ObjectSpec.datasec_entries`:
    ELF symbols over zero or stale DATASEC offsets), ``.kconfig`` and ``.ksyms`` laid out."""
    kconfig = {e.name: e for e in obj.externs if e.kind is ExternKind.KCONFIG}
    kconfig_size = next((m.value_size for m in obj.maps if m.section_name == KCONFIG), 0)
    for type_id in range(1, raw.count()):
        name_off, kind, vlen, size, kind_flag = raw.header(type_id)
        if kind != BtfKind.DATASEC:
            continue
        name = raw.string(name_off)
        vsis = raw.vsis(type_id)
        if name == KCONFIG:
            vsis = _fixup_kconfig(raw, vsis, kconfig)
            size = kconfig_size
        elif name == KSYMS:
            vsis, size = _fixup_ksyms(raw, vsis)
        else:
            if size == 0:
                elf_section = obj.elf.section(name)
                size = elf_section.size if elf_section is not None else 0
            placed = {info.type: info.offset for info in obj.datasec_entries.get(type_id, ())}
            vsis = [(var_id, placed.get(var_id, offset), var_size)
                    for var_id, offset, var_size in vsis]  # fmt: skip
        vsis.sort(key=lambda vsi: vsi[1])
        raw.set_vsis(type_id, vsis)
        raw.set_header(type_id, name_off, _info(BtfKind.DATASEC, vlen, kind_flag), size)


def _fixup_kconfig(
    raw: _RawBtf, vsis: list[tuple[int, int, int]], kconfig: dict[str, ExternSpec]
) -> list[tuple[int, int, int]]:
    out = []
    for var_id, offset, size in vsis:
        head = raw.header(var_id)
        ext = kconfig.get(raw.string(head.name_off))
        if head.kind == BtfKind.VAR and ext is not None:
            raw.set_u32(var_id, 0, VarLinkage.GLOBAL_ALLOCATED)
            offset, size = ext.offset, ext.size
        out.append((var_id, offset, size))
    return out


def _fixup_ksyms(
    raw: _RawBtf, vsis: list[tuple[int, int, int]]
) -> tuple[list[tuple[int, int, int]], int]:
    """Pretend every ksym is a 4-byte allocated variable, as libbpf does.

    Only the DATASEC's shape matters to the kernel; the values are never read through it.
    """
    int32 = raw.find_int32()
    dummy = 0
    out = []
    for i, (var_id, _offset, _size) in enumerate(vsis):
        head = raw.header(var_id)
        entry = var_id
        if head.kind == BtfKind.VAR:
            raw.set_header(var_id, head.name_off, _info(BtfKind.VAR, 0), int32)
            raw.set_u32(var_id, 0, VarLinkage.GLOBAL_ALLOCATED)
        elif head.kind == BtfKind.FUNC:
            # A kfunc declaration: the kernel wants a global FUNC with named parameters,
            # and only VARs in a DATASEC; a dummy VAR takes the FUNC's place there.
            if dummy == 0:
                dummy = raw.add_var("dummy_ksym", int32)
            raw.set_header(
                var_id, head.name_off, _info(BtfKind.FUNC, FuncLinkage.GLOBAL), head.size
            )
            _name_params(raw, head.size, raw.header(dummy).name_off)
            entry = dummy
        out.append((entry, i * 4, 4))
    return out, 4 * len(vsis)


def _name_params(raw: _RawBtf, proto_id: int, name_off: int) -> None:
    if raw.header(proto_id).kind != BtfKind.FUNC_PROTO:
        return
    for i, (param_name, param_type) in enumerate(raw.pairs(proto_id, 8)):
        if param_name == 0 and param_type != 0:
            raw.set_u32(proto_id, i * 8, name_off)


# ---------------------------------------------------------------------------- kinds


def _sanitize(raw: _RawBtf, f: BtfFeatures) -> None:
    """libbpf's ``bpf_object__sanitize_btf``: same-size stand-ins for unsupported kinds."""
    dot_to_underscore = {ord("."): ord("_"), ord("?"): ord("_")}
    anon_param = 0
    for type_id in range(1, raw.count()):
        name_off, kind, vlen, size, _ = raw.header(type_id)
        if (not f.datasec and kind == BtfKind.VAR) or (not f.decl_tag and kind == BtfKind.DECL_TAG):
            # 1-byte INT: never bigger than what it stands for, which the kernel checks.
            raw.set_header(type_id, name_off, _info(BtfKind.INT, 0), 1)
            raw.set_u32(type_id, 0, 8)
        elif not f.datasec and kind == BtfKind.DATASEC:
            raw.rename_chars(name_off, dot_to_underscore)
            members = []
            for i, (var_id, offset, _size) in enumerate(raw.vsis(type_id)):
                if offset * 8 > _U32_MAX:
                    raise raw.error(
                        f"type #{type_id} ({raw.checked.describe(type_id)}): entry {i} at "
                        f"byte {offset} is too far for the STRUCT member this kernel needs "
                        "it to become"
                    )
                var_name_off = raw.header(var_id)[0]
                members.append((var_name_off, var_id, offset * 8))
            raw.set_vsis(type_id, members)
            raw.set_header(type_id, name_off, _info(BtfKind.STRUCT, vlen), size)
        elif (
            not f.qmark_datasec and kind == BtfKind.DATASEC and raw.string(name_off).startswith("?")
        ):
            raw.rename_chars(name_off, {ord("?"): ord("_")})
        elif not f.func and kind == BtfKind.FUNC_PROTO:
            # Parameters become enumerators named after them; unnamed ones (function
            # pointer types) need a name, or a kernel that checks enumerator names refuses.
            params = raw.pairs(type_id, 8)
            for i, (param_name, _type) in enumerate(params):
                if param_name == 0:
                    if anon_param == 0:
                        anon_param = raw.add_string("__pybpf_anon_param")
                    raw.set_u32(type_id, i * 8, anon_param)
            raw.set_header(type_id, name_off, _info(BtfKind.ENUM, vlen), 4)
        elif not f.func and kind == BtfKind.FUNC:
            raw.set_header(type_id, name_off, _info(BtfKind.TYPEDEF, 0), size)
        elif not f.func_global and kind == BtfKind.FUNC:
            raw.set_header(type_id, name_off, _info(BtfKind.FUNC, FuncLinkage.STATIC), size)
        elif not f.float and kind == BtfKind.FLOAT:
            raw.set_header(type_id, 0, _info(BtfKind.STRUCT, 0), size)
        elif not f.type_tag and kind == BtfKind.TYPE_TAG:
            raw.set_header(type_id, 0, _info(BtfKind.CONST, 0), size)
        elif not f.enum64 and kind == BtfKind.ENUM:
            raw.set_header(type_id, name_off, _info(BtfKind.ENUM, vlen), size)
        elif not f.enum64 and kind == BtfKind.ENUM64:
            raise raw.error(
                f"type #{type_id}: this kernel lacks ENUM64 and pybpf does not rewrite it"
            )
