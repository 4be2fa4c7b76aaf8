"""Hand-assembled BPF producers for the events tests (no loader needed).

Each builder returns a loaded raw_tracepoint program that ``BPF_PROG_TEST_RUN`` runs once per
call with a context of u64 arguments: ``args[0]`` is how many records to emit, ``args[1]`` a
seed.  Record ``i`` of a ring buffer producer holds ``u64 i`` then ``u64 seed + 3*i`` and is
discarded instead of submitted when ``(i % discard_every) == discard_every - 1``.
This module holds no tests; pytest imports it only as a helper.
"""

from __future__ import annotations

import struct

from conftest import btf_blob
from pybpf.abi import insn as I
from pybpf.abi.bpf import BpfFuncId, BpfTestRunFlags, MapType, ProgType
from pybpf.abi.insn import BpfPseudo
from pybpf.kernel.btf import btf_load
from pybpf.kernel.fd import Fd
from pybpf.kernel.maps import map_create
from pybpf.kernel.progs import prog_load, prog_test_run

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)


class Asm:
    """Instructions with symbolic jump and callback targets."""

    def __init__(self) -> None:
        self.slots: list[object] = []
        self.labels: dict[str, int] = {}

    def __call__(self, *code: bytes) -> None:
        for c in code:
            for i in range(0, len(c), 8):
                self.slots.append(c[i : i + 8])

    def label(self, name: str) -> None:
        self.labels[name] = len(self.slots)

    def jmp(self, op: int, reg: int, imm: int, target: str) -> None:
        self.slots.append(("jmp", op, reg, imm, target))

    def goto(self, target: str) -> None:
        self.slots.append(("ja", target))

    def ld_func(self, reg: int, target: str) -> None:
        self.slots.append(("func", reg, target))
        self.slots.append(b"\0" * 8)

    def assemble(self) -> bytes:
        out = []
        for pc, slot in enumerate(self.slots):
            if isinstance(slot, bytes):
                out.append(slot)
                continue
            assert isinstance(slot, tuple)
            if slot[0] == "jmp":
                _, op, reg, imm, target = slot
                out.append(I.jmp_imm(op, reg, imm, self.labels[target] - pc - 1))
            elif slot[0] == "ja":
                out.append(I.ja(self.labels[slot[1]] - pc - 1))
            else:
                _, reg, target = slot
                ld = I.ld_imm64(reg, self.labels[target] - pc - 1, BpfPseudo.BPF_PSEUDO_FUNC)
                out.append(ld[:8])
        return b"".join(out)


def _btf_for(a: Asm) -> bytes:
    """Minimal BTF: FUNC ``main`` and FUNC ``cb`` (callbacks need func_info to load)."""
    strings = b"\0int\0ctx\0main\0cb\0long\0x\0"
    words = ("int", "ctx", "main", "cb", "long", "x")
    name = {w: strings.index(b"\0" + w.encode() + b"\0") + 1 for w in words}
    t = struct.Struct("<III").pack

    def info(kind: int, vlen: int = 0) -> int:
        return (kind << 24) | vlen
    types = b"".join((
        t(name["int"], info(1), 4), struct.pack("<I", (1 << 24) | 32),     # 1 int
        t(0, info(2), 0),                                                  # 2 void *
        t(0, info(13, 1), 1), struct.pack("<II", name["ctx"], 2),          # 3 int (void *ctx)
        t(name["main"], info(12, 1), 3),                                   # 4 main (global)
        t(name["long"], info(1), 8), struct.pack("<I", (1 << 24) | 64),    # 5 long
        t(0, info(13, 2), 1), struct.pack("<IIII", name["x"], 5, name["ctx"], 2),  # 6 cb proto
        t(name["cb"], info(12, 0), 6),                                     # 7 cb (static)
    ))
    return btf_blob(types, strings)


def _load(a: Asm, name: str) -> Fd:
    btf = btf_load(_btf_for(a)).fd
    try:
        func_info = struct.pack("<IIII", 0, 4, a.labels["cb"], 7)
        return prog_load(
            ProgType.RAW_TRACEPOINT, a.assemble(), name=name,
            prog_btf_fd=btf, func_info=func_info, func_info_rec_size=8,
        ).fd
    finally:
        btf.close()


def _loop_main(a: Asm) -> None:
    """main(ctx): bpf_loop(args[0], cb, &frame, 0); return 0.

    ``frame`` is on main's stack (bpf_loop wants a stack pointer): ``u64 count, seed, ctx``.
    """
    a(I.mov64_reg(R6, R1), I.ldx_mem(I.BPF_DW, R1, R6, 0), I.ldx_mem(I.BPF_DW, R2, R6, 8))
    a(I.stx_mem(I.BPF_DW, R10, R1, -24), I.stx_mem(I.BPF_DW, R10, R2, -16))
    a(I.stx_mem(I.BPF_DW, R10, R6, -8))
    a.ld_func(R2, "cb")
    a(I.mov64_reg(R3, R10), I.alu64_imm(I.BPF_ADD, R3, -24))
    a(I.mov64_imm(R4, 0), I.call(BpfFuncId.BPF_FUNC_loop))
    a(I.return_imm(0))


def ringbuf_producer(map_fd: int, size: int = 16, discard_every: int = 0) -> Fd:
    """Emit ``args[0]`` records of ``size`` bytes (>= 16) into a RINGBUF map."""
    assert size >= 16 and size % 8 == 0
    a = Asm()
    _loop_main(a)
    a.label("cb")  # cb(u64 index, u64 *ctx)
    a(I.mov64_reg(R6, R1), I.ldx_mem(I.BPF_DW, R9, R2, 8))  # r9 = seed
    a(I.ld_map_fd(R1, map_fd), I.mov64_imm(R2, size), I.mov64_imm(R3, 0))
    a(I.call(BpfFuncId.BPF_FUNC_ringbuf_reserve))
    a.jmp(I.BPF_JEQ, R0, 0, "out")
    a(I.stx_mem(I.BPF_DW, R0, R6, 0))
    a(I.mov64_reg(R7, R6), I.alu64_imm(I.BPF_MUL, R7, 3), I.alu64_reg(I.BPF_ADD, R7, R9))
    a(I.stx_mem(I.BPF_DW, R0, R7, 8))
    for off in range(16, size, 8):
        a(I.st_mem(I.BPF_DW, R0, off, off))
    a(I.mov64_reg(R1, R0), I.mov64_imm(R2, 0))
    if discard_every:
        a(I.mov64_reg(R8, R6), I.alu64_imm(I.BPF_MOD, R8, discard_every))
        a.jmp(I.BPF_JEQ, R8, discard_every - 1, "discard")
    a(I.call(BpfFuncId.BPF_FUNC_ringbuf_submit))
    if discard_every:
        a.goto("out")
        a.label("discard")
        a(I.call(BpfFuncId.BPF_FUNC_ringbuf_discard))
    a.label("out")
    a(I.return_imm(0))
    return _load(a, "rb_prod")


def perf_producer(map_fd: int, size: int = 16) -> Fd:
    """Emit ``args[0]`` samples of ``size`` bytes into this CPU's PERF_EVENT_ARRAY slot."""
    assert size >= 16 and size % 8 == 0
    a = Asm()
    _loop_main(a)
    a.label("cb")  # cb(index, ctx): build the sample on the stack, then output it
    a(I.mov64_reg(R6, R1), I.ldx_mem(I.BPF_DW, R8, R2, 16), I.ldx_mem(I.BPF_DW, R9, R2, 8))
    a(I.stx_mem(I.BPF_DW, R10, R6, -size))
    a(I.mov64_reg(R7, R6), I.alu64_imm(I.BPF_MUL, R7, 3), I.alu64_reg(I.BPF_ADD, R7, R9))
    a(I.stx_mem(I.BPF_DW, R10, R7, -size + 8))
    for off in range(16, size, 8):
        a(I.st_mem(I.BPF_DW, R10, -size + off, off))
    a(I.mov64_reg(R1, R8), I.ld_map_fd(R2, map_fd))
    a(I.ld_imm64(R3, 0xFFFFFFFF))  # BPF_F_CURRENT_CPU
    a(I.mov64_reg(R4, R10), I.alu64_imm(I.BPF_ADD, R4, -size), I.mov64_imm(R5, size))
    a(I.call(BpfFuncId.BPF_FUNC_perf_event_output))
    a(I.return_imm(0))
    return _load(a, "pb_prod")


def user_ringbuf_drainer(map_fd: int, result_fd: int) -> Fd:
    """Drain a USER_RINGBUF; add each record's first u64 to ``result[0]``, count in ``[1]``.

    ``result`` is an ARRAY map (one 16-byte value); the program returns the drained count.
    """
    a = Asm()
    a(I.st_mem(I.BPF_DW, R10, -16, 0), I.st_mem(I.BPF_DW, R10, -8, 0))  # sum, count
    a(I.ld_map_fd(R1, map_fd))
    a.ld_func(R2, "cb")
    a(I.mov64_reg(R3, R10), I.alu64_imm(I.BPF_ADD, R3, -16))
    a(I.mov64_imm(R4, 0), I.call(BpfFuncId.BPF_FUNC_user_ringbuf_drain), I.mov64_reg(R6, R0))
    a(I.st_mem(I.BPF_W, R10, -20, 0), I.mov64_reg(R2, R10), I.alu64_imm(I.BPF_ADD, R2, -20))
    a(I.ld_map_fd(R1, result_fd), I.call(BpfFuncId.BPF_FUNC_map_lookup_elem))
    a.jmp(I.BPF_JEQ, R0, 0, "out")
    a(I.ldx_mem(I.BPF_DW, R1, R10, -16), I.atomic_add(I.BPF_DW, R0, R1, 0))
    a(I.ldx_mem(I.BPF_DW, R1, R10, -8), I.atomic_add(I.BPF_DW, R0, R1, 8))
    a.label("out")
    a(I.mov64_reg(R0, R6), I.exit_insn())
    a.label("cb")  # cb(struct bpf_dynptr *dynptr, u64 *frame): frame[0] += first u64, [1]++
    a(I.mov64_reg(R6, R2), I.mov64_reg(R3, R1))
    a(I.mov64_reg(R1, R10), I.alu64_imm(I.BPF_ADD, R1, -8), I.mov64_imm(R2, 8))
    a(I.mov64_imm(R4, 0), I.mov64_imm(R5, 0), I.call(BpfFuncId.BPF_FUNC_dynptr_read))
    a.jmp(I.BPF_JNE, R0, 0, "cbout")
    a(I.ldx_mem(I.BPF_DW, R1, R10, -8), I.ldx_mem(I.BPF_DW, R2, R6, 0))
    a(I.alu64_reg(I.BPF_ADD, R2, R1), I.stx_mem(I.BPF_DW, R6, R2, 0))
    a(I.ldx_mem(I.BPF_DW, R2, R6, 8), I.alu64_imm(I.BPF_ADD, R2, 1), I.stx_mem(I.BPF_DW, R6, R2, 8))
    a.label("cbout")
    a(I.return_imm(0))
    return _load(a, "urb_drain")


def run(prog: Fd, count: int, seed: int = 0, cpu: int | None = None) -> int:
    """Run a producer once: ``count`` iterations of its loop (on ``cpu`` if given)."""
    ctx = struct.pack("<QQ", count, seed)
    flags = 0 if cpu is None else BpfTestRunFlags.BPF_F_TEST_RUN_ON_CPU
    result = prog_test_run(
        prog, ctx_in=ctx, ctx_size_out=0, repeat=0, flags=flags, cpu=cpu or 0
    )
    return result.retval


def ringbuf_map(size: int, name: str = "events") -> Fd:
    return map_create(MapType.RINGBUF, 0, 0, size, name=name)


def ringbuf_slow_producer(map_fd: int, spins: int = 10) -> Fd:
    """Submit record ``(0, 0)``, reserve record ``(1, 1)``, spin ``spins`` bpf_loops of
    ``args[0]`` turns, then submit it: a consumer meanwhile sees record 1 BUSY."""
    a = Asm()
    a(I.mov64_reg(R9, R1))
    for index in (0, 1):
        a(I.ld_map_fd(R1, map_fd), I.mov64_imm(R2, 16), I.mov64_imm(R3, 0))
        a(I.call(BpfFuncId.BPF_FUNC_ringbuf_reserve))
        a.jmp(I.BPF_JEQ, R0, 0, "out" if index == 0 else "out1")
        a(I.st_mem(I.BPF_DW, R0, 0, index), I.st_mem(I.BPF_DW, R0, 8, index))
        if index == 0:
            a(I.mov64_reg(R1, R0), I.mov64_imm(R2, 0), I.call(BpfFuncId.BPF_FUNC_ringbuf_submit))
    a(I.mov64_reg(R6, R0))
    for _ in range(spins):
        a(I.ldx_mem(I.BPF_DW, R1, R9, 0))
        a.ld_func(R2, "cb")
        a(I.mov64_imm(R3, 0), I.mov64_imm(R4, 0), I.call(BpfFuncId.BPF_FUNC_loop))
    a(I.mov64_reg(R1, R6), I.mov64_imm(R2, 0), I.call(BpfFuncId.BPF_FUNC_ringbuf_submit))
    a.label("out1")
    a.label("out")
    a(I.return_imm(0))
    a.label("cb")
    a(I.return_imm(0))
    return _load(a, "rb_slow")
