"""Section names to program types: our ``section_defs`` table against libbpf 1.1's lookup."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pybpf.abi.bpf import AttachType, ProgType
from pybpf.obj import AutoAttach, SecFlags, find_section_def
from test_obj_oracle import driver  # noqa: F401 - the compiled libbpf driver fixture

NAMES = [
    "socket", "socket/x", "sk_reuseport", "sk_reuseport/migrate", "sk_reuseport/other",
    "kprobe", "kprobe/", "kprobe/do_sys_open", "kprobex", "kprobe.multi/a*", "kretprobe/f",
    "uprobe", "uprobe//bin/sh:main", "uprobe.s/x", "uretprobe.s", "ksyscall/write",
    "kretsyscall", "usdt/a:b:c", "tc", "tc/x", "classifier", "action", "tracepoint/a/b",
    "tp/a/b", "tp", "tpx/a", "raw_tracepoint/x", "raw_tp/x", "raw_tp.w/x",
    "raw_tracepoint.w", "tp_btf/x", "fentry/x", "fmod_ret/x", "fexit/x", "fentry.s/x",
    "fmod_ret.s/x", "fexit.s/x", "freplace/x", "lsm/x", "lsm.s/x", "lsm_cgroup/x", "iter/task",
    "iter.s/x", "syscall", "syscall/x", "xdp.frags/devmap", "xdp/devmap", "xdp.frags/cpumap",
    "xdp/cpumap", "xdp.frags", "xdp", "xdp/other", "perf_event", "lwt_in", "lwt_out",
    "lwt_xmit", "lwt_seg6local", "sockops", "sk_skb/stream_parser", "sk_skb/stream_verdict",
    "sk_skb", "sk_msg", "lirc_mode2", "flow_dissector", "cgroup_skb/ingress",
    "cgroup_skb/egress", "cgroup/skb", "cgroup/sock_create", "cgroup/sock_release",
    "cgroup/sock", "cgroup/post_bind4", "cgroup/post_bind6", "cgroup/bind4", "cgroup/bind6",
    "cgroup/connect4", "cgroup/connect6", "cgroup/sendmsg4", "cgroup/sendmsg6",
    "cgroup/recvmsg4", "cgroup/recvmsg6", "cgroup/getpeername4", "cgroup/getpeername6",
    "cgroup/getsockname4", "cgroup/getsockname6", "cgroup/sysctl", "cgroup/getsockopt",
    "cgroup/setsockopt", "cgroup/dev", "struct_ops", "struct_ops/x", "sk_lookup",
    "sk_lookup/x", "unknown", "", ".text",
]
"""Every libbpf 1.1 entry plus near misses (prefix rules, '+' vs exact, '/' separators)."""

NEWER = {
    "tc/ingress": (ProgType.SCHED_CLS, AttachType.TCX_INGRESS),
    "tcx/egress": (ProgType.SCHED_CLS, AttachType.TCX_EGRESS),
    "uprobe.multi/x": (ProgType.KPROBE, AttachType.TRACE_UPROBE_MULTI),
    "netkit/peer": (ProgType.SCHED_CLS, AttachType.NETKIT_PEER),
    "tp.s/a/b": (ProgType.TRACEPOINT, None),
    "netfilter": (ProgType.NETFILTER, AttachType.NETFILTER),
}
"""Entries libbpf added after 1.1 (taken from upstream's section_defs[])."""


def test_lookup_matches_libbpf(driver: Path) -> None:  # noqa: F811
    out = subprocess.run([str(driver), "--sec", *NAMES], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert len(out) == len(NAMES)
    for name, line in zip(NAMES, out, strict=True):
        d = find_section_def(name)
        ours = (
            f"sec {name} none" if d is None else
            f"sec {name} type={int(d.prog_type)} attach={int(d.expected_attach_type or 0)}"
        )
        assert ours == line


@pytest.mark.parametrize(("name", "expected"), sorted(NEWER.items()))
def test_newer_entries(name: str, expected: tuple[ProgType, AttachType | None]) -> None:
    d = find_section_def(name)
    assert d is not None and (d.prog_type, d.expected_attach_type) == expected


def test_attach_target_and_flags() -> None:
    d = find_section_def("tp/syscalls/sys_enter_getpid")
    assert d is not None and d.attach_target("tp/syscalls/sys_enter_getpid") == (
        "syscalls/sys_enter_getpid")
    assert d.auto_attach is AutoAttach.TRACEPOINT
    fentry = find_section_def("fentry.s/do_nanosleep")
    assert fentry is not None and fentry.flags == SecFlags.SEC_ATTACH_BTF | SecFlags.SEC_SLEEPABLE
    xdp = find_section_def("xdp")
    assert xdp is not None and xdp.attach_target("xdp") == "" and xdp.auto_attach is AutoAttach.NONE
    optional = find_section_def("?kprobe/x")
    assert optional is not None and optional.prog_type is ProgType.KPROBE
