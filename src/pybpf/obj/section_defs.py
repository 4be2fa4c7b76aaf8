"""libbpf's ``section_defs[]``: how an ELF section name gives a program its type.

A BPF program has no type in the ELF file; by convention the *section name* carries it
(``SEC("tp/syscalls/sys_enter_getpid")`` is a tracepoint program attached to that event).
The table below is libbpf's, as data, so that pybpf types programs exactly as libbpf 1.1 does
and also knows the entries added since (tcx, netkit, uprobe.multi, sleepable tracepoints...).

Matching follows ``sec_def_matches()``: a prefix ending in ``/`` must be followed by
something; a prefix ending in ``+`` matches itself exactly or followed by ``/extras``; any
other prefix must match the whole name.  The first matching entry wins, so order matters
(``sk_reuseport/migrate`` before ``sk_reuseport``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntFlag

from pybpf.abi.bpf import AttachType, ProgType


class SecFlags(IntFlag):
    """libbpf's ``SEC_*`` cookie bits: how a program of this section is prepared and attached."""

    SEC_NONE = 0
    SEC_EXP_ATTACH_OPT = 1
    """``expected_attach_type`` may be dropped on kernels that predate it."""
    SEC_ATTACHABLE = 2
    """Attached with ``BPF_PROG_ATTACH``/``BPF_LINK_CREATE`` to a target the user names."""
    SEC_ATTACHABLE_OPT = SEC_ATTACHABLE | SEC_EXP_ATTACH_OPT
    SEC_ATTACH_BTF = 4
    """Needs a BTF id of the attach target (fentry, lsm, iter...)."""
    SEC_SLEEPABLE = 8
    """Loaded with ``BPF_F_SLEEPABLE``."""
    SEC_XDP_FRAGS = 16
    """XDP program that handles multi-buffer packets (``BPF_F_XDP_HAS_FRAGS``)."""
    SEC_USDT = 32
    """USDT program (libbpf may load it as uprobe-multi)."""


class AutoAttach(Enum):
    """How a skeleton's ``attach()`` attaches a program of this section without user input.

    ``NONE`` means the program needs a target the section name cannot give (cgroup, XDP,
    tc...) or cannot be auto-attached at all.
    """

    NONE = "none"
    TRACEPOINT = "tracepoint"
    RAW_TRACEPOINT = "raw_tracepoint"
    KPROBE = "kprobe"
    KSYSCALL = "ksyscall"
    KPROBE_MULTI = "kprobe_multi"
    KPROBE_SESSION = "kprobe_session"
    UPROBE = "uprobe"
    UPROBE_MULTI = "uprobe_multi"
    USDT = "usdt"
    TRACING = "tracing"
    TRACING_MULTI = "tracing_multi"
    LSM = "lsm"
    ITER = "iter"


@dataclass(frozen=True, slots=True)
class SectionDef:
    """One ``section_defs[]`` entry.

    ``expected_attach_type`` is ``None`` where libbpf writes 0 meaning "none" (as opposed to
    ``BPF_CGROUP_INET_INGRESS``, which is also 0): a loader passes ``0`` for both.
    """

    prefix: str
    prog_type: ProgType
    expected_attach_type: AttachType | None
    flags: SecFlags
    auto_attach: AutoAttach = AutoAttach.NONE

    @property
    def base(self) -> str:
        """The prefix without its ``+`` marker."""
        return self.prefix.removesuffix("+")

    def matches(self, section_name: str) -> bool:
        """libbpf's ``sec_def_matches()``."""
        prefix = self.prefix
        if prefix.endswith("/"):
            return section_name.startswith(prefix)
        if prefix.endswith("+"):
            base = prefix[:-1]
            if not section_name.startswith(base):
                return False
            return len(section_name) == len(base) or section_name[len(base)] == "/"
        return section_name == prefix

    def attach_target(self, section_name: str) -> str:
        """The part of ``section_name`` after this prefix and its ``/`` separator."""
        base = self.base
        if not section_name.startswith(base):
            return ""
        rest = section_name[len(base) :]
        return rest[1:] if rest.startswith("/") else rest


_N = SecFlags.SEC_NONE
_A = SecFlags.SEC_ATTACHABLE
_AO = SecFlags.SEC_ATTACHABLE_OPT
_BTF = SecFlags.SEC_ATTACH_BTF
_S = SecFlags.SEC_SLEEPABLE
_FR = SecFlags.SEC_XDP_FRAGS
_U = SecFlags.SEC_USDT
P = ProgType
T = AttachType
AA = AutoAttach


def _d(
    prefix: str,
    prog_type: ProgType,
    attach: AttachType | None,
    flags: SecFlags,
    auto: AutoAttach = AutoAttach.NONE,
) -> SectionDef:
    return SectionDef(prefix, prog_type, attach, flags, auto)


SECTION_DEFS: tuple[SectionDef, ...] = (
    _d("socket", P.SOCKET_FILTER, None, _N),
    _d("sk_reuseport/migrate", P.SK_REUSEPORT, T.SK_REUSEPORT_SELECT_OR_MIGRATE, _A),
    _d("sk_reuseport", P.SK_REUSEPORT, T.SK_REUSEPORT_SELECT, _A),
    _d("kprobe+", P.KPROBE, None, _N, AA.KPROBE),
    _d("uprobe+", P.KPROBE, None, _N, AA.UPROBE),
    _d("uprobe.s+", P.KPROBE, None, _S, AA.UPROBE),
    _d("kretprobe+", P.KPROBE, None, _N, AA.KPROBE),
    _d("uretprobe+", P.KPROBE, None, _N, AA.UPROBE),
    _d("uretprobe.s+", P.KPROBE, None, _S, AA.UPROBE),
    _d("kprobe.multi+", P.KPROBE, T.TRACE_KPROBE_MULTI, _N, AA.KPROBE_MULTI),
    _d("kretprobe.multi+", P.KPROBE, T.TRACE_KPROBE_MULTI, _N, AA.KPROBE_MULTI),
    _d("kprobe.session+", P.KPROBE, T.TRACE_KPROBE_SESSION, _N, AA.KPROBE_SESSION),
    _d("uprobe.multi+", P.KPROBE, T.TRACE_UPROBE_MULTI, _N, AA.UPROBE_MULTI),
    _d("uretprobe.multi+", P.KPROBE, T.TRACE_UPROBE_MULTI, _N, AA.UPROBE_MULTI),
    _d("uprobe.session+", P.KPROBE, T.TRACE_UPROBE_SESSION, _N, AA.UPROBE_MULTI),
    _d("uprobe.multi.s+", P.KPROBE, T.TRACE_UPROBE_MULTI, _S, AA.UPROBE_MULTI),
    _d("uretprobe.multi.s+", P.KPROBE, T.TRACE_UPROBE_MULTI, _S, AA.UPROBE_MULTI),
    _d("uprobe.session.s+", P.KPROBE, T.TRACE_UPROBE_SESSION, _S, AA.UPROBE_MULTI),
    _d("ksyscall+", P.KPROBE, None, _N, AA.KSYSCALL),
    _d("kretsyscall+", P.KPROBE, None, _N, AA.KSYSCALL),
    _d("usdt+", P.KPROBE, None, _U, AA.USDT),
    _d("usdt.s+", P.KPROBE, None, _U | _S, AA.USDT),
    _d("tc/ingress", P.SCHED_CLS, T.TCX_INGRESS, _N),
    _d("tc/egress", P.SCHED_CLS, T.TCX_EGRESS, _N),
    _d("tcx/ingress", P.SCHED_CLS, T.TCX_INGRESS, _N),
    _d("tcx/egress", P.SCHED_CLS, T.TCX_EGRESS, _N),
    _d("tc", P.SCHED_CLS, None, _N),
    _d("classifier", P.SCHED_CLS, None, _N),
    _d("action", P.SCHED_ACT, None, _N),
    _d("netkit/primary", P.SCHED_CLS, T.NETKIT_PRIMARY, _N),
    _d("netkit/peer", P.SCHED_CLS, T.NETKIT_PEER, _N),
    _d("tracepoint+", P.TRACEPOINT, None, _N, AA.TRACEPOINT),
    _d("tp+", P.TRACEPOINT, None, _N, AA.TRACEPOINT),
    _d("tracepoint.s+", P.TRACEPOINT, None, _S, AA.TRACEPOINT),
    _d("tp.s+", P.TRACEPOINT, None, _S, AA.TRACEPOINT),
    _d("raw_tracepoint+", P.RAW_TRACEPOINT, None, _N, AA.RAW_TRACEPOINT),
    _d("raw_tp+", P.RAW_TRACEPOINT, None, _N, AA.RAW_TRACEPOINT),
    _d("raw_tracepoint.s+", P.RAW_TRACEPOINT, None, _S, AA.RAW_TRACEPOINT),
    _d("raw_tp.s+", P.RAW_TRACEPOINT, None, _S, AA.RAW_TRACEPOINT),
    _d("raw_tracepoint.w+", P.RAW_TRACEPOINT_WRITABLE, None, _N, AA.RAW_TRACEPOINT),
    _d("raw_tp.w+", P.RAW_TRACEPOINT_WRITABLE, None, _N, AA.RAW_TRACEPOINT),
    _d("tp_btf+", P.TRACING, T.TRACE_RAW_TP, _BTF, AA.TRACING),
    _d("tp_btf.s+", P.TRACING, T.TRACE_RAW_TP, _BTF | _S, AA.TRACING),
    _d("fentry+", P.TRACING, T.TRACE_FENTRY, _BTF, AA.TRACING),
    _d("fmod_ret+", P.TRACING, T.MODIFY_RETURN, _BTF, AA.TRACING),
    _d("fexit+", P.TRACING, T.TRACE_FEXIT, _BTF, AA.TRACING),
    _d("fentry.s+", P.TRACING, T.TRACE_FENTRY, _BTF | _S, AA.TRACING),
    _d("fmod_ret.s+", P.TRACING, T.MODIFY_RETURN, _BTF | _S, AA.TRACING),
    _d("fexit.s+", P.TRACING, T.TRACE_FEXIT, _BTF | _S, AA.TRACING),
    _d("fsession+", P.TRACING, T.TRACE_FSESSION, _BTF, AA.TRACING),
    _d("fsession.s+", P.TRACING, T.TRACE_FSESSION, _BTF | _S, AA.TRACING),
    _d("fsession.multi+", P.TRACING, T.TRACE_FSESSION_MULTI, _N, AA.TRACING_MULTI),
    _d("fsession.multi.s+", P.TRACING, T.TRACE_FSESSION_MULTI, _S, AA.TRACING_MULTI),
    _d("fentry.multi+", P.TRACING, T.TRACE_FENTRY_MULTI, _N, AA.TRACING_MULTI),
    _d("fexit.multi+", P.TRACING, T.TRACE_FEXIT_MULTI, _N, AA.TRACING_MULTI),
    _d("fentry.multi.s+", P.TRACING, T.TRACE_FENTRY_MULTI, _S, AA.TRACING_MULTI),
    _d("fexit.multi.s+", P.TRACING, T.TRACE_FEXIT_MULTI, _S, AA.TRACING_MULTI),
    _d("freplace+", P.EXT, None, _BTF, AA.TRACING),
    _d("lsm+", P.LSM, T.LSM_MAC, _BTF, AA.LSM),
    _d("lsm.s+", P.LSM, T.LSM_MAC, _BTF | _S, AA.LSM),
    _d("lsm_cgroup+", P.LSM, T.LSM_CGROUP, _BTF),
    _d("iter+", P.TRACING, T.TRACE_ITER, _BTF, AA.ITER),
    _d("iter.s+", P.TRACING, T.TRACE_ITER, _BTF | _S, AA.ITER),
    _d("syscall", P.SYSCALL, None, _S),
    _d("xdp.frags/devmap", P.XDP, T.XDP_DEVMAP, _FR),
    _d("xdp/devmap", P.XDP, T.XDP_DEVMAP, _A),
    _d("xdp.frags/cpumap", P.XDP, T.XDP_CPUMAP, _FR),
    _d("xdp/cpumap", P.XDP, T.XDP_CPUMAP, _A),
    _d("xdp.frags", P.XDP, T.XDP, _FR),
    _d("xdp", P.XDP, T.XDP, _AO),
    _d("perf_event", P.PERF_EVENT, None, _N),
    _d("lwt_in", P.LWT_IN, None, _N),
    _d("lwt_out", P.LWT_OUT, None, _N),
    _d("lwt_xmit", P.LWT_XMIT, None, _N),
    _d("lwt_seg6local", P.LWT_SEG6LOCAL, None, _N),
    _d("sockops", P.SOCK_OPS, T.CGROUP_SOCK_OPS, _AO),
    _d("sk_skb/stream_parser", P.SK_SKB, T.SK_SKB_STREAM_PARSER, _AO),
    _d("sk_skb/stream_verdict", P.SK_SKB, T.SK_SKB_STREAM_VERDICT, _AO),
    _d("sk_skb/verdict", P.SK_SKB, T.SK_SKB_VERDICT, _AO),
    _d("sk_skb", P.SK_SKB, None, _N),
    _d("sk_msg", P.SK_MSG, T.SK_MSG_VERDICT, _AO),
    _d("lirc_mode2", P.LIRC_MODE2, T.LIRC_MODE2, _AO),
    _d("flow_dissector", P.FLOW_DISSECTOR, T.FLOW_DISSECTOR, _AO),
    _d("cgroup_skb/ingress", P.CGROUP_SKB, T.CGROUP_INET_INGRESS, _AO),
    _d("cgroup_skb/egress", P.CGROUP_SKB, T.CGROUP_INET_EGRESS, _AO),
    _d("cgroup/skb", P.CGROUP_SKB, None, _N),
    _d("cgroup/sock_create", P.CGROUP_SOCK, T.CGROUP_INET_SOCK_CREATE, _A),
    _d("cgroup/sock_release", P.CGROUP_SOCK, T.CGROUP_INET_SOCK_RELEASE, _A),
    _d("cgroup/sock", P.CGROUP_SOCK, T.CGROUP_INET_SOCK_CREATE, _AO),
    _d("cgroup/post_bind4", P.CGROUP_SOCK, T.CGROUP_INET4_POST_BIND, _A),
    _d("cgroup/post_bind6", P.CGROUP_SOCK, T.CGROUP_INET6_POST_BIND, _A),
    _d("cgroup/bind4", P.CGROUP_SOCK_ADDR, T.CGROUP_INET4_BIND, _A),
    _d("cgroup/bind6", P.CGROUP_SOCK_ADDR, T.CGROUP_INET6_BIND, _A),
    _d("cgroup/connect4", P.CGROUP_SOCK_ADDR, T.CGROUP_INET4_CONNECT, _A),
    _d("cgroup/connect6", P.CGROUP_SOCK_ADDR, T.CGROUP_INET6_CONNECT, _A),
    _d("cgroup/connect_unix", P.CGROUP_SOCK_ADDR, T.CGROUP_UNIX_CONNECT, _A),
    _d("cgroup/sendmsg4", P.CGROUP_SOCK_ADDR, T.CGROUP_UDP4_SENDMSG, _A),
    _d("cgroup/sendmsg6", P.CGROUP_SOCK_ADDR, T.CGROUP_UDP6_SENDMSG, _A),
    _d("cgroup/sendmsg_unix", P.CGROUP_SOCK_ADDR, T.CGROUP_UNIX_SENDMSG, _A),
    _d("cgroup/recvmsg4", P.CGROUP_SOCK_ADDR, T.CGROUP_UDP4_RECVMSG, _A),
    _d("cgroup/recvmsg6", P.CGROUP_SOCK_ADDR, T.CGROUP_UDP6_RECVMSG, _A),
    _d("cgroup/recvmsg_unix", P.CGROUP_SOCK_ADDR, T.CGROUP_UNIX_RECVMSG, _A),
    _d("cgroup/getpeername4", P.CGROUP_SOCK_ADDR, T.CGROUP_INET4_GETPEERNAME, _A),
    _d("cgroup/getpeername6", P.CGROUP_SOCK_ADDR, T.CGROUP_INET6_GETPEERNAME, _A),
    _d("cgroup/getpeername_unix", P.CGROUP_SOCK_ADDR, T.CGROUP_UNIX_GETPEERNAME, _A),
    _d("cgroup/getsockname4", P.CGROUP_SOCK_ADDR, T.CGROUP_INET4_GETSOCKNAME, _A),
    _d("cgroup/getsockname6", P.CGROUP_SOCK_ADDR, T.CGROUP_INET6_GETSOCKNAME, _A),
    _d("cgroup/getsockname_unix", P.CGROUP_SOCK_ADDR, T.CGROUP_UNIX_GETSOCKNAME, _A),
    _d("cgroup/sysctl", P.CGROUP_SYSCTL, T.CGROUP_SYSCTL, _A),
    _d("cgroup/getsockopt", P.CGROUP_SOCKOPT, T.CGROUP_GETSOCKOPT, _A),
    _d("cgroup/setsockopt", P.CGROUP_SOCKOPT, T.CGROUP_SETSOCKOPT, _A),
    _d("cgroup/dev", P.CGROUP_DEVICE, T.CGROUP_DEVICE, _AO),
    _d("struct_ops+", P.STRUCT_OPS, None, _N),
    _d("struct_ops.s+", P.STRUCT_OPS, None, _S),
    _d("sk_lookup", P.SK_LOOKUP, T.SK_LOOKUP, _A),
    _d("netfilter", P.NETFILTER, T.NETFILTER, _N),
)
"""libbpf's table in libbpf's order (1.1's entries plus those added upstream since)."""


def find_section_def(section_name: str) -> SectionDef | None:
    """The first entry matching ``section_name`` (a leading ``?`` is ignored, as libbpf does)."""
    name = section_name.removeprefix("?")
    for sec_def in SECTION_DEFS:
        if sec_def.matches(name):
            return sec_def
    return None
