"""Skeleton load options and attach semantics (libbpf's ``NAME__load``/``NAME__attach``).

``skel.load()`` takes what ``BpfObject.load()`` takes; attaching twice, or after attaching a
program by hand, never makes a second link (which would double every count), and a link made
by hand is the program's entry in ``skel.links``.
"""

from __future__ import annotations

import os

from conftest import compile_bpf, requires_root
from pybpf.skel.runtime import Skeleton

pytestmark = requires_root


def test_load_takes_the_object_load_options() -> None:
    with Skeleton.open(compile_bpf("load_globals")) as skel:
        skel.load(log_level=1, btf_custom_path="/sys/kernel/btf/vmlinux")
        assert skel.progs.on_getpid.log  # log_level reached the verifier


def test_attach_twice_and_by_hand_keep_one_link_per_program() -> None:
    with Skeleton.open(compile_bpf("load_globals")) as skel:
        skel.rodata.target_pid = os.getpid()  # the program counts only our getpid() calls
        skel.load()
        prog = skel.progs.on_getpid
        by_hand = prog.auto_attach()
        assert by_hand is not None and skel.links.on_getpid is by_hand
        skel.attach()
        skel.attach()
        assert len(prog.links) == 1
        attached = {name for name in skel.links}
        assert "on_getpid" in attached and len(attached) > 1
        before = skel.bss.tp_hits
        os.getpid()
        assert skel.bss.tp_hits == before + 1  # one link: one count per call, not two
        skel.detach()
        assert len(prog.links) == 0 and "on_getpid" not in skel.links
