"""``.BTF.ext``: per-section func_info, line_info and CO-RE relocation records.

Layout (``struct btf_ext_header`` in libbpf's ``libbpf_internal.h``)::

    u16 magic (0xeb9f)  u8 version (1)  u8 flags  u32 hdr_len
    u32 func_info_off  u32 func_info_len  u32 line_info_off  u32 line_info_len
    u32 core_relo_off  u32 core_relo_len          (optional: present when hdr_len >= 32)

Offsets count from the end of the header.  Each of the three info blocks starts with a u32
record size, followed by ``(u32 sec_name_off, u32 num_info, num_info * record)`` groups, one per
ELF code section.  The record size comes from the file, not from us, so that a newer compiler
adding fields to a record is still readable: we decode the fields we know and skip the rest.

Names (sections, source files, source lines, CO-RE access strings) are offsets into the
``.BTF`` string table; we resolve them through the :class:`Btf` at parse time so records are
self-contained values, and :meth:`BtfExt.to_bytes` maps them back through a caller-supplied
function (the linker owns the final string table).

``insn_off`` is kept as the file has it: a *byte* offset into the section in an object file
(libbpf divides by 8 before handing records to the kernel).  ``insn_idx`` gives the index.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeVar

from pybpf.abi.btf import (
    BTF_EXT_HEADER_MIN,
    BTF_EXT_HEADER_SIZE,
    BTF_MAGIC,
    BTF_MAGIC_SWAPPED,
    CORE_RELO,
    FUNC_INFO,
    LINE_INFO,
)
from pybpf.abi.insn import INSN_SIZE
from pybpf.abi.sections import BTF_EXT
from pybpf.btf.btf import Btf
from pybpf.errors import BtfError

BTF_EXT_VERSION = 1


BPF_LINE_INFO_LINE_NUM_SHIFT = 10
BPF_LINE_INFO_LINE_COL_MASK = 0x3FF

_ACCESS_STR = re.compile(r"[0-9]+(?::[0-9]+)*")
"""What clang writes as a CO-RE access string; anything else cannot be relocated."""


class CoreReloKind(IntEnum):
    """``enum bpf_core_relo_kind`` (``linux/bpf.h``), with libbpf's short names."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12

    @property
    def is_field_based(self) -> bool:
        return self <= CoreReloKind.FIELD_RSHIFT_U64

    @property
    def is_enumval_based(self) -> bool:
        return self in (CoreReloKind.ENUMVAL_EXISTS, CoreReloKind.ENUMVAL_VALUE)


@dataclass(frozen=True, slots=True)
class FuncInfo:
    """``struct bpf_func_info``: the FUNC type of the function starting at ``insn_off``."""

    insn_off: int
    type_id: int

    @property
    def insn_idx(self) -> int:
        return self.insn_off // INSN_SIZE


@dataclass(frozen=True, slots=True)
class LineInfo:
    """``struct bpf_line_info``: source position of the instruction at ``insn_off``.

    ``line`` is the text of the source line as the compiler recorded it.
    """

    insn_off: int
    file_name: str
    line: str
    line_num: int
    line_col: int

    @property
    def insn_idx(self) -> int:
        return self.insn_off // INSN_SIZE


@dataclass(frozen=True, slots=True)
class CoreRelo:
    """``struct bpf_core_relo``: what to patch at ``insn_off`` and relative to which type.

    ``access_str`` is clang's access spec, e.g. ``"0:1:2"``: for field relocations, the
    first number indexes the pointer and the rest are member/array indices; for enum value
    relocations it is the enumerator's index; for type relocations it is ``"0"``.
    """

    insn_off: int
    type_id: int
    access_str: str
    kind: CoreReloKind

    @property
    def insn_idx(self) -> int:
        return self.insn_off // INSN_SIZE

    @property
    def access_spec(self) -> tuple[int, ...]:
        """The access string as integers (``"0:1:2"`` -> ``(0, 1, 2)``)."""
        return tuple(int(part) for part in self.access_str.split(":"))


_R = TypeVar("_R", FuncInfo, LineInfo, CoreRelo)


@dataclass(frozen=True)
class BtfExt:
    """A parsed ``.BTF.ext`` section: records grouped by ELF section name, in file order."""

    func_info: dict[str, tuple[FuncInfo, ...]] = field(default_factory=dict)
    line_info: dict[str, tuple[LineInfo, ...]] = field(default_factory=dict)
    core_relos: dict[str, tuple[CoreRelo, ...]] = field(default_factory=dict)
    flags: int = 0

    @classmethod
    def from_bytes(
        cls, data: bytes, btf: Btf, *, file: str | None = None, section: str = BTF_EXT
    ) -> BtfExt:
        """Parse ``data`` (a ``.BTF.ext`` section); names resolve through ``btf``'s strings."""
        return _Parser(bytes(data), btf, file, section).parse()

    def sections(self) -> list[str]:
        """Every section that has records of any kind, in first-seen order."""
        names: dict[str, None] = {}
        for table in (self.func_info, self.line_info, self.core_relos):
            names.update(dict.fromkeys(table))
        return list(names)

    def to_bytes(
        self, string_offset_of: Callable[[str], int], *, big_endian: bool = False
    ) -> bytes:
        """Encode with a 32-byte header and the standard record sizes.

        ``string_offset_of`` maps a name (section, file, line text, access string) to its offset
        in the ``.BTF`` string table that will accompany this section.
        """
        e = ">" if big_endian else "<"
        u32 = struct.Struct(e + "I")

        def block(
            table: Mapping[str, tuple[_R, ...]], rec_size: int, encode: Callable[[_R], bytes]
        ) -> bytes:
            if not table:
                return b""
            out = [u32.pack(rec_size)]
            for sec_name, records in table.items():
                out.append(struct.pack(e + "II", string_offset_of(sec_name), len(records)))
                out.extend(encode(r) for r in records)
            return b"".join(out)

        def enc_func(r: FuncInfo) -> bytes:
            return struct.pack(e + "II", r.insn_off, r.type_id)

        def enc_line(r: LineInfo) -> bytes:
            line_col = (r.line_num << BPF_LINE_INFO_LINE_NUM_SHIFT) | (
                r.line_col & BPF_LINE_INFO_LINE_COL_MASK
            )
            return struct.pack(
                e + "IIII",
                r.insn_off,
                string_offset_of(r.file_name),
                string_offset_of(r.line),
                line_col,
            )

        def enc_core(r: CoreRelo) -> bytes:
            return struct.pack(
                e + "IIII", r.insn_off, r.type_id, string_offset_of(r.access_str), int(r.kind)
            )

        try:
            funcs = block(self.func_info, FUNC_INFO.size, enc_func)
            lines = block(self.line_info, LINE_INFO.size, enc_line)
            relos = block(self.core_relos, CORE_RELO.size, enc_core)
        except struct.error as exc:  # a value that does not fit its u32 field
            raise BtfError(f"cannot encode .BTF.ext: {exc}", section=BTF_EXT) from None
        header = struct.pack(
            e + "HBBIIIIIII",
            BTF_MAGIC,
            BTF_EXT_VERSION,
            self.flags,
            BTF_EXT_HEADER_SIZE,
            0,
            len(funcs),
            len(funcs),
            len(lines),
            len(funcs) + len(lines),
            len(relos),
        )
        return header + funcs + lines + relos


class _Parser:
    """One parse of one section; holds the location for error messages."""

    def __init__(self, data: bytes, btf: Btf, file: str | None, section: str) -> None:
        self.data = data
        self.btf = btf
        self.file = file if file is not None else btf.file
        self.section = section
        self.e = "<"

    def error(self, message: str, offset: int | None) -> BtfError:
        return BtfError(message, file=self.file, section=self.section, offset=offset)

    def parse(self) -> BtfExt:
        data = self.data
        if len(data) < BTF_EXT_HEADER_MIN:
            raise self.error(f"truncated header: {len(data)} bytes, need {BTF_EXT_HEADER_MIN}", 0)
        (magic,) = struct.unpack_from("<H", data, 0)
        if magic == BTF_MAGIC:
            self.e = "<"
        elif magic == BTF_MAGIC_SWAPPED:
            self.e = ">"
        else:
            raise self.error(f"bad magic {magic:#06x}, expected {BTF_MAGIC:#06x}", 0)
        version, flags, hdr_len = struct.unpack_from(self.e + "BBI", data, 2)
        if version != BTF_EXT_VERSION:
            raise self.error(f"unsupported version {version}", 2)
        if hdr_len < BTF_EXT_HEADER_MIN or hdr_len > len(data):
            raise self.error(f"bad header length {hdr_len} (section is {len(data)} bytes)", 4)
        fi_off, fi_len, li_off, li_len = struct.unpack_from(self.e + "IIII", data, 8)
        cr_off = cr_len = 0
        if hdr_len >= BTF_EXT_HEADER_SIZE:
            cr_off, cr_len = struct.unpack_from(self.e + "II", data, 24)
        func_info = self.block(
            hdr_len, fi_off, fi_len, 8, "func_info", FUNC_INFO.size, self.func_record
        )
        line_info = self.block(
            hdr_len, li_off, li_len, 16, "line_info", LINE_INFO.size, self.line_record
        )
        core_relos = self.block(
            hdr_len, cr_off, cr_len, 24, "core_relo", CORE_RELO.size, self.core_record
        )
        return BtfExt(func_info, line_info, core_relos, flags)

    def block(
        self,
        hdr_len: int,
        off: int,
        length: int,
        field_off: int,
        what: str,
        min_rec_size: int,
        decode: Callable[[int], _R],
    ) -> dict[str, tuple[_R, ...]]:
        data = self.data
        if length == 0:
            return {}
        begin = hdr_len + off
        end = begin + length
        if end > len(data):
            raise self.error(
                f"{what} block {off}+{length} runs past the section end ({len(data) - hdr_len} "
                "bytes of data)",
                field_off,
            )
        if begin % 4:
            raise self.error(f"{what} block is not 4-byte aligned", field_off)
        if length < 4:
            raise self.error(f"{what} block too short for its record size", begin)
        u32x2 = struct.Struct(self.e + "II")
        (rec_size,) = struct.unpack_from(self.e + "I", data, begin)
        if rec_size < min_rec_size or rec_size % 4:
            raise self.error(
                f"{what} record size {rec_size} invalid (minimum {min_rec_size}, multiple of 4)",
                begin,
            )
        result: dict[str, tuple[_R, ...]] = {}
        pos = begin + 4
        while pos < end:
            if pos + 8 > end:
                raise self.error(f"{what}: section header runs past the block", pos)
            name_off, count = u32x2.unpack_from(data, pos)
            sec_name = self.string(name_off, f"{what} section name", pos)
            if count == 0:
                raise self.error(f"{what}: section '{sec_name}' has no records", pos + 4)
            pos += 8
            if count * rec_size > end - pos:
                raise self.error(
                    f"{what}: section '{sec_name}' has {count} records of {rec_size} bytes, "
                    f"only {end - pos} bytes left",
                    pos - 4,
                )
            records = tuple(decode(pos + i * rec_size) for i in range(count))
            if sec_name in result:
                raise self.error(f"{what}: section '{sec_name}' appears twice", pos - 8)
            result[sec_name] = records
            pos += count * rec_size
        return result

    def string(self, offset: int, what: str, where: int) -> str:
        try:
            return self.btf.string(offset)
        except BtfError as exc:
            raise self.error(f"{what}: {exc.reason}", where) from None

    def type_id(self, type_id: int, where: int) -> int:
        if type_id >= self.btf.end_id:
            raise self.error(f"type id {type_id} out of range [0, {self.btf.end_id - 1}]", where)
        return type_id

    def func_record(self, pos: int) -> FuncInfo:
        insn_off, type_id = struct.unpack_from(self.e + "II", self.data, pos)
        return FuncInfo(insn_off, self.type_id(type_id, pos + 4))

    def line_record(self, pos: int) -> LineInfo:
        insn_off, file_off, line_off, line_col = struct.unpack_from(self.e + "IIII", self.data, pos)
        return LineInfo(
            insn_off,
            self.string(file_off, "line_info file name", pos + 4),
            self.string(line_off, "line_info line", pos + 8),
            line_col >> BPF_LINE_INFO_LINE_NUM_SHIFT,
            line_col & BPF_LINE_INFO_LINE_COL_MASK,
        )

    def core_record(self, pos: int) -> CoreRelo:
        insn_off, type_id, access_off, kind = struct.unpack_from(self.e + "IIII", self.data, pos)
        if kind > max(CoreReloKind):
            raise self.error(f"core_relo: unknown relocation kind {kind}", pos + 12)
        access = self.string(access_off, "core_relo access string", pos + 8)
        if not _ACCESS_STR.fullmatch(access):
            raise self.error(f"core_relo: malformed access string {access!r}", pos + 8)
        return CoreRelo(insn_off, self.type_id(type_id, pos + 4), access, CoreReloKind(kind))
