"""pybpf.kernel programs against the running kernel: load, test run, verifier logs, info,
BTF func/line info, and no descriptor left behind."""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator

import pytest

from conftest import btf_blob, open_fds, requires_root
from pybpf.abi import insn as asm
from pybpf.abi.bpf import BpfFuncId, MapType, ProgType, XdpAction
from pybpf.errors import KernelError, LoadError, PermissionDeniedError
from pybpf.kernel.btf import btf_get_data, btf_get_info_by_fd, btf_load
from pybpf.kernel.maps import map_create, map_get_info_by_fd, map_lookup_elem
from pybpf.kernel.objs import btf_get_fd_by_id
from pybpf.kernel.progs import prog_bind_map, prog_get_info_by_fd, prog_load, prog_test_run
from pybpf.kernel.verifier import BtfLoadError, ProgLoadError

pytestmark = [requires_root, pytest.mark.kernel]

SOCKET_FILTER = ProgType.SOCKET_FILTER
XDP = ProgType.XDP
PACKET = bytes(range(64))  # test runs of skb/XDP programs need at least an Ethernet header
R0, R1, R2 = asm.Reg.R0, asm.Reg.R1, asm.Reg.R2


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    before = open_fds()
    yield
    assert open_fds() == before


def test_xdp_program_returns_its_verdict() -> None:
    with prog_load(XDP, asm.return_imm(XdpAction.XDP_DROP), name="drop").fd as prog:
        result = prog_test_run(prog, PACKET, repeat=10)
    assert result.retval == XdpAction.XDP_DROP
    assert result.data_out == PACKET
    assert result.duration >= 0


def test_socket_filter_counts_runs_in_a_map() -> None:
    with map_create(MapType.ARRAY, 4, 8, 1) as counter:
        code = asm.count_in_array(counter.fileno())
        with prog_load(SOCKET_FILTER, code, name="counter").fd as prog:
            assert prog_test_run(prog, PACKET, repeat=7).retval == 0
            info = prog_get_info_by_fd(prog, xlated_insns=True)
        assert map_lookup_elem(counter, struct.pack("<I", 0), 8) == struct.pack("<Q", 7)
        counter_id = map_get_info_by_fd(counter).id
    assert info.prog_type == SOCKET_FILTER
    assert info.name == "counter"
    assert list(info.map_ids) == [counter_id]
    assert info.xlated_insns is not None
    assert info.xlated_insn_cnt == len(info.xlated_insns) // 8 > 0
    assert info.gpl_compatible
    assert len(info.tag) == 8


def test_program_reads_packet_through_ctx() -> None:
    # return skb->len (offset 0 of __sk_buff); the test run pulls the Ethernet header first
    code = asm.ldx_mem(asm.BPF_W, R0, R1, 0) + asm.exit_insn()
    with prog_load(SOCKET_FILTER, code).fd as prog:
        assert prog_test_run(prog, PACKET).retval == len(PACKET) - 14


def test_verifier_rejection_carries_the_log() -> None:
    with pytest.raises(ProgLoadError) as exc:
        prog_load(SOCKET_FILTER, asm.exit_insn(), name="bad")  # R0 never written
    err = exc.value
    assert isinstance(err, LoadError) and isinstance(err, KernelError)
    assert err.command == "BPF_PROG_LOAD"
    assert err.errno == errno.EACCES
    assert err.program == "bad"
    assert "R0 !read_ok" in err.log
    assert "R0 !read_ok" in str(err)
    assert not isinstance(err, PermissionDeniedError)  # EACCES is the verifier's verdict


def test_successful_load_returns_log_when_asked() -> None:
    loaded = prog_load(SOCKET_FILTER, asm.return_imm(0), log_level=1)
    with loaded.fd:
        assert "processed 2 insns" in loaded.log
    quiet = prog_load(SOCKET_FILTER, asm.return_imm(0))
    with quiet.fd:
        assert quiet.log == ""


def test_log_buffer_grows_until_the_log_fits() -> None:
    body = b"".join(asm.mov64_imm(R2, i) for i in range(300)) + asm.return_imm(0)
    loaded = prog_load(SOCKET_FILTER, body, log_level=2, log_size=256)
    with loaded.fd:
        assert len(loaded.log) > 256
        assert "processed 302 insns" in loaded.log


def test_invalid_helper_call_is_rejected_with_reason() -> None:
    code = asm.call(BpfFuncId.BPF_FUNC_get_attach_cookie) + asm.exit_insn()
    with pytest.raises(ProgLoadError) as exc:
        prog_load(XDP, code)  # not a tracing program
    assert "get_attach_cookie" in exc.value.log or "unknown func" in exc.value.log


def test_instruction_bytes_must_be_whole_instructions() -> None:
    with pytest.raises(ValueError):
        prog_load(SOCKET_FILTER, b"\x00" * 12)


def test_test_run_output_buffer_grows_on_enospc() -> None:
    with prog_load(XDP, asm.return_imm(XdpAction.XDP_PASS)).fd as prog:
        result = prog_test_run(prog, PACKET, data_size_out=8)
    assert result.data_out == PACKET


def test_test_run_error_names_the_command() -> None:
    with (
        prog_load(XDP, asm.return_imm(XdpAction.XDP_PASS)).fd as prog,
        pytest.raises(KernelError) as exc,
    ):
        prog_test_run(prog, b"\x00")  # shorter than an Ethernet header
    assert exc.value.command == "BPF_PROG_TEST_RUN"


def test_bind_map_shows_in_info() -> None:
    with (
        map_create(MapType.ARRAY, 4, 4, 1) as extra,
        prog_load(SOCKET_FILTER, asm.return_imm(0)).fd as prog,
    ):
        assert len(prog_get_info_by_fd(prog).map_ids) == 0
        prog_bind_map(prog, extra)
        assert list(prog_get_info_by_fd(prog).map_ids) == [map_get_info_by_fd(extra).id]


# --- BTF -----------------------------------------------------------------------------------

STRINGS = b"\0int\0main\0prog.c\0return 0;\0"
INT, MAIN, FILE, LINE = 1, 5, 10, 17


def main_btf() -> bytes:
    """``[1] int``, ``[2] int (void)``, ``[3] static func main``."""
    types = b"".join(
        (
            struct.pack("<IIII", INT, 1 << 24, 4, (1 << 24) | 32),
            struct.pack("<III", 0, 13 << 24, 1),
            struct.pack("<III", MAIN, 12 << 24, 2),
        )
    )
    return btf_blob(types, STRINGS)


def test_btf_load_info_and_readback() -> None:
    data = main_btf()
    with btf_load(data).fd as btf:
        info = btf_get_info_by_fd(btf)
        assert info.id > 0
        assert info.btf_size == len(data)
        assert not info.kernel_btf
        assert btf_get_data(btf) == data
        with btf_get_fd_by_id(info.id) as again:
            assert btf_get_info_by_fd(again).id == info.id


def test_corrupt_btf_carries_the_log() -> None:
    data = bytearray(main_btf())
    data[24 + 16 + 12 + 4 + 3] = 0x7F  # kind of type [3] := 127
    with pytest.raises(BtfLoadError) as exc:
        btf_load(bytes(data))
    assert exc.value.command == "BPF_BTF_LOAD"
    assert exc.value.errno == errno.EINVAL
    assert "[3] Invalid btf_info" in exc.value.log


def test_func_and_line_info_reach_the_kernel() -> None:
    func_info = struct.pack("<II", 0, 3)  # insn 0 starts func [3]
    line_info = struct.pack("<IIII", 0, FILE, LINE, (7 << 10) | 5)  # line 7, column 5
    with btf_load(main_btf()).fd as btf:
        loaded = prog_load(
            SOCKET_FILTER,
            asm.return_imm(0),
            name="main",
            prog_btf_fd=btf,
            func_info=func_info,
            func_info_rec_size=8,
            line_info=line_info,
            line_info_rec_size=16,
        )
        with loaded.fd as prog:
            info = prog_get_info_by_fd(prog)
            assert info.btf_id == btf_get_info_by_fd(btf).id
            assert (info.nr_func_info, info.nr_line_info) == (1, 1)


def test_func_info_with_wrong_type_is_rejected() -> None:
    with btf_load(main_btf()).fd as btf, pytest.raises(ProgLoadError) as exc:
        prog_load(
            SOCKET_FILTER,
            asm.return_imm(0),
            prog_btf_fd=btf,
            func_info=struct.pack("<II", 0, 1),  # [1] is an int, not a func
            func_info_rec_size=8,
        )
    assert exc.value.errno == errno.EINVAL
    assert exc.value.log
