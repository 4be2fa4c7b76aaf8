"""pybpf.kernel system facts, error mapping, descriptors and the instruction encoder;
bpftool is the oracle where it can see what we created."""

from __future__ import annotations

import errno
import json
import os
import struct
from collections.abc import Iterator

import pytest

from conftest import bpftool, open_fds, requires_root
from pybpf.abi import insn as asm
from pybpf.abi.bpf import BpfCmd, MapType, ProgType
from pybpf.errors import (
    BTF_LOAD_ERRORS,
    ENOTSUPP,
    PROG_LOAD_ERRORS,
    BtfLoadError,
    BtfLoadNotSupportedError,
    BtfLoadPermissionError,
    ErrorFamily,
    KernelError,
    LoadError,
    NotSupportedError,
    PermissionDeniedError,
    ProgLoadError,
    ProgLoadNotSupportedError,
    ProgLoadPermissionError,
    kernel_error,
    permission_hint,
)
from pybpf.kernel import system
from pybpf.kernel.fd import Fd
from pybpf.kernel.maps import map_create, map_get_info_by_fd, map_lookup_and_delete_elem
from pybpf.kernel.progs import prog_get_info_by_fd, prog_load
from pybpf.kernel.system import kernel_version_code, parse_cpu_list, parse_kernel_version


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    before = open_fds()
    yield
    assert open_fds() == before


# --- pure facts ----------------------------------------------------------------------------


def test_cpu_list_parsing() -> None:
    assert parse_cpu_list("0-3,5,7-8\n") == [0, 1, 2, 3, 5, 7, 8]
    assert parse_cpu_list("0") == [0]


def test_kernel_version_parsing_quirks() -> None:
    assert parse_kernel_version("6.18.44-fc-v769") == kernel_version_code(6, 18, 44)
    debian = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"
    assert parse_kernel_version("6.1.0-18-amd64", debian) == kernel_version_code(6, 1, 76)
    ubuntu = "Ubuntu 5.15.0-91.101-generic 5.15.131"
    assert parse_kernel_version("5.15.0-91-generic", "", ubuntu) == kernel_version_code(5, 15, 131)
    assert kernel_version_code(4, 9, 300) == kernel_version_code(4, 9, 255)  # saturates
    assert parse_kernel_version("garbage") == 0


def test_system_facts_match_the_machine() -> None:
    uname = os.uname().release
    major, minor = (int(x) for x in uname.split(".")[:2])
    assert system.kernel_version() >> 8 == (major << 8) + minor
    assert system.page_size() == os.sysconf("SC_PAGE_SIZE")
    assert system.possible_cpus() >= (os.cpu_count() or 1)


def test_insn_encoding_matches_the_kernel_layout() -> None:
    assert asm.mov64_imm(asm.Reg.R0, 0) == bytes.fromhex("b700000000000000")
    assert asm.exit_insn() == bytes.fromhex("9500000000000000")
    assert asm.mov64_imm(asm.Reg.R1, -1) == bytes.fromhex("b7010000ffffffff")
    assert asm.ldx_mem(asm.BPF_W, asm.Reg.R0, asm.Reg.R1, 4) == bytes.fromhex("6110040000000000")
    wide = asm.ld_imm64(asm.Reg.R2, 0x1122334455667788)
    assert wide == bytes.fromhex("18020000887766550000000044332211")
    assert asm.ld_map_fd(asm.Reg.R1, 7)[:8] == bytes.fromhex("1811000007000000")


def test_fd_adopt_moves_off_stdio() -> None:
    saved = os.dup(0)
    try:
        os.close(0)
        low = os.open("/dev/null", os.O_RDONLY)
        assert low == 0
        owned = Fd.adopt(low, "test")
        assert owned.fileno() >= 3
        owned.close()
    finally:
        os.dup2(saved, 0)
        os.close(saved)


# --- errors --------------------------------------------------------------------------------


@requires_root
def test_errno_picks_the_error_class() -> None:
    with map_create(MapType.ARRAY, 4, 4, 1) as m:
        with pytest.raises(NotSupportedError) as unsupported:
            map_lookup_and_delete_elem(m, struct.pack("<I", 0), 4)
        assert unsupported.value.errno == 524  # kernel-internal ENOTSUPP
        assert unsupported.value.command == "BPF_MAP_LOOKUP_AND_DELETE_ELEM"
    with pytest.raises(KernelError) as bad_fd:
        map_get_info_by_fd(999_999)  # not an open descriptor
    assert bad_fd.value.errno in (errno.EBADF, errno.EBADFD)  # 6.x says EBADFD
    assert bad_fd.value.command == BpfCmd.BPF_OBJ_GET_INFO_BY_FD.name
    assert not isinstance(bad_fd.value, PermissionDeniedError)
    assert isinstance(bad_fd.value, OSError)


@pytest.mark.parametrize(
    ("family", "err", "expected", "denied"),
    [
        (PROG_LOAD_ERRORS, errno.EACCES, ProgLoadError, False),  # the verifier's verdict
        (PROG_LOAD_ERRORS, errno.EPERM, ProgLoadPermissionError, True),
        (PROG_LOAD_ERRORS, ENOTSUPP, ProgLoadNotSupportedError, False),
        (BTF_LOAD_ERRORS, errno.EACCES, BtfLoadPermissionError, True),
        (BTF_LOAD_ERRORS, errno.EOPNOTSUPP, BtfLoadNotSupportedError, False),
        (BTF_LOAD_ERRORS, errno.EINVAL, BtfLoadError, False),
    ],
)
def test_one_errno_table_for_the_load_families(
    family: ErrorFamily, err: int, expected: type[KernelError], denied: bool
) -> None:
    exc = kernel_error("BPF_X", err, "what", family=family, program="p", log="line 1\n")
    assert type(exc) is expected
    assert isinstance(exc, LoadError) and isinstance(exc, KernelError)
    assert isinstance(exc, PermissionDeniedError) == denied
    assert isinstance(exc, NotSupportedError) == (err in (ENOTSUPP, errno.EOPNOTSUPP))
    assert (exc.command, exc.errno, exc.program, exc.log) == ("BPF_X", err, "p", "line 1\n")
    assert str(exc).startswith("BPF_X failed: ")
    hint = f"; {permission_hint()}" if denied else ""  # what to do about a refusal
    assert str(exc).endswith(f": what{hint}\n--- verifier log ---\nline 1")


def test_plain_errors_keep_their_message() -> None:
    assert str(LoadError("no such map")) == "no such map"
    assert str(LoadError("bad", program="p", log="why")) == "bad\n--- verifier log ---\nwhy"
    assert type(kernel_error("BPF_X", errno.EACCES)) is PermissionDeniedError
    assert type(kernel_error("BPF_X", errno.EINVAL)) is KernelError  # EINVAL is not mapped
    unsupported = kernel_error("BPF_X", ENOTSUPP)
    assert str(unsupported) == "BPF_X failed: ENOTSUPP (Operation not supported)"


def test_unprivileged_bpf_is_permission_denied() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop privileges in a child")
    pid = os.fork()
    if pid == 0:  # child: become nobody, then try
        code = 1
        try:
            os.setuid(65534)
            map_create(MapType.HASH, 4, 4, 1).close()
        except PermissionDeniedError as exc:
            code = 0 if exc.errno in (errno.EPERM, errno.EACCES) else 2
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WEXITSTATUS(status) == 1:
        pytest.skip("unprivileged BPF is enabled on this kernel")
    assert os.WEXITSTATUS(status) == 0


# --- bpftool as oracle ---------------------------------------------------------------------


@requires_root
def test_bpftool_sees_what_we_created() -> None:
    with (
        map_create(MapType.HASH, 4, 8, 10, name="oracle_map") as m,
        prog_load(
            ProgType.SOCKET_FILTER, asm.return_imm(0), name="oracle_prog"
        ).fd as p,
    ):
        map_id = map_get_info_by_fd(m).id
        prog = prog_get_info_by_fd(p)
        shown_map = json.loads(bpftool("map", "show", "id", str(map_id), "--json"))
        shown_prog = json.loads(bpftool("prog", "show", "id", str(prog.id), "--json"))
    assert shown_map["name"] == "oracle_map"
    assert (shown_map["bytes_key"], shown_map["bytes_value"], shown_map["max_entries"]) == (
        4,
        8,
        10,
    )
    assert shown_prog["name"] == "oracle_prog"
    assert shown_prog["tag"] == prog.tag.hex()
    assert shown_prog["bytes_xlated"] == prog.xlated_prog_len
