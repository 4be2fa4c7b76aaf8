"""``BPF_PROG_LOAD`` of one relocated program, with what its section name implies.

The section definition decides flags (sleepable, XDP frags) and, for programs that attach
to a kernel function through BTF (fentry/fexit/fmod_ret, lsm, tp_btf, iter), the BTF id of
the target in vmlinux, which the kernel needs at load time rather than at attach time.
"""

from __future__ import annotations

import functools

from pybpf.abi.bpf import AttachType, BpfProgLoadFlags, ProgType
from pybpf.abi.btf import FUNC_INFO, LINE_INFO
from pybpf.btf import Btf
from pybpf.btf.types import BtfKind
from pybpf.errors import BtfError, LoadError
from pybpf.kernel.fd import Fd
from pybpf.kernel.progs import prog_load
from pybpf.kernel.system import kernel_version
from pybpf.load.program_image import RelocatedProgram
from pybpf.obj.section_defs import SecFlags
from pybpf.obj.specs import ProgramSpec


@functools.cache
def _vmlinux() -> Btf:
    try:
        return Btf.vmlinux()
    except BtfError as exc:
        raise LoadError(f"kernel BTF is needed to attach by BTF id: {exc}") from exc


def _btf_target_name(prog: ProgramSpec) -> tuple[str, BtfKind]:
    """What to look up in vmlinux for a BTF-attached program (libbpf's prefixes)."""
    target = prog.attach_target
    if prog.prog_type == ProgType.LSM:
        return f"bpf_lsm_{target}", BtfKind.FUNC
    if prog.expected_attach_type == AttachType.TRACE_RAW_TP:
        return f"btf_trace_{target}", BtfKind.TYPEDEF
    if prog.expected_attach_type == AttachType.TRACE_ITER:
        return f"bpf_iter_{target}", BtfKind.FUNC
    return target, BtfKind.FUNC


def attach_btf_id(prog: ProgramSpec) -> int:
    """vmlinux BTF id of the function (or raw tracepoint typedef) ``prog`` attaches to."""
    name, kind = _btf_target_name(prog)
    if not prog.attach_target:
        raise LoadError(f"program '{prog.name}': section '{prog.section_name}' names no "
                        "attach target", program=prog.name)
    ids = _vmlinux().find(name, kind)
    if not ids:
        raise LoadError(f"program '{prog.name}': no {kind.name} '{name}' in kernel BTF",
                        program=prog.name)
    return ids[0]


def load_program(
    prog: ProgramSpec,
    code: RelocatedProgram,
    *,
    license: str,
    btf_fd: Fd | None,
    log_level: int = 0,
) -> tuple[Fd, str]:
    """Load ``code`` as program ``prog``; returns ``(fd, verifier log)``.

    Verifier refusals raise :class:`~pybpf.kernel.verifier.ProgLoadError`, which is a
    :class:`~pybpf.errors.LoadError` carrying the program name and the verifier log.
    """
    flags = 0
    target_id = 0
    sec_def = prog.sec_def
    if sec_def is not None:
        if sec_def.flags & SecFlags.SEC_SLEEPABLE:
            flags |= BpfProgLoadFlags.BPF_F_SLEEPABLE
        if sec_def.flags & SecFlags.SEC_XDP_FRAGS:
            flags |= BpfProgLoadFlags.BPF_F_XDP_HAS_FRAGS
        if sec_def.flags & SecFlags.SEC_ATTACH_BTF:
            target_id = attach_btf_id(prog)
    with_btf = btf_fd is not None
    loaded = prog_load(
        prog.prog_type,
        code.insns,
        license=license,
        name=prog.name,
        kern_version=kernel_version(),
        prog_flags=flags,
        expected_attach_type=prog.expected_attach_type_value,
        prog_btf_fd=btf_fd if with_btf else None,
        func_info=code.func_info if with_btf else None,
        func_info_rec_size=FUNC_INFO.size,
        line_info=code.line_info if with_btf else None,
        line_info_rec_size=LINE_INFO.size,
        attach_btf_id=target_id,
        log_level=log_level,
    )
    return loaded.fd, loaded.log

