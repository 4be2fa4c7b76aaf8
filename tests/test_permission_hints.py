"""EPERM from bpf() says what to do about it: which privileges are missing, or that a
privileged process was refused by kernel policy (lockdown, an LSM, no BPF trampoline)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import compile_bpf, requires_root
from pybpf.errors import PermissionDeniedError, ProgLoadPermissionError
from pybpf.object import BpfObject

pytestmark = requires_root

UNPRIVILEGED = """
import os
from pybpf.abi.bpf import MapType
from pybpf.errors import PermissionDeniedError
from pybpf.kernel.maps import map_create
os.setgid(65534)
os.setuid(65534)  # nobody, after the imports (the interpreter's files may be root's only)
try:
    map_create(MapType.HASH, 4, 8, 16)
except PermissionDeniedError as exc:
    print(exc)
"""


def test_an_unprivileged_process_is_told_which_privileges_it_lacks() -> None:
    out = subprocess.run([sys.executable, "-c", UNPRIVILEGED], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert "BPF_MAP_CREATE failed: EPERM" in out
    assert "run as root, or grant CAP_BPF" in out and "CAP_PERFMON" in out
    assert "kernel.unprivileged_bpf_disabled (now " in out


def test_a_refused_trampoline_program_names_the_kernel_policy() -> None:
    """This kernel refuses fentry programs with EPERM although we are root."""
    refused: list[PermissionDeniedError] = []
    with BpfObject.open(compile_bpf("load_fentry")) as obj:
        try:
            obj.load()
        except ProgLoadPermissionError as exc:
            refused.append(exc)
    if not refused:
        pytest.skip("this kernel loads fentry programs: there is no refusal to explain")
    message = str(refused[0])
    assert "refused by policy" in message and "BPF trampoline" in message
