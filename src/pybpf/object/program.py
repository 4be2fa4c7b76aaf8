"""One entry-point program of a :class:`~pybpf.object.BpfObject`: its settings, and once
loaded, test runs and attachments (each owned by a :class:`~pybpf.object.link.Link`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pybpf.abi.bpf import AttachType, ProgType
from pybpf.errors import BpfError
from pybpf.obj import ProgramSpec
from pybpf.object.link import Link, LinkSet
from pybpf.object.strict import StrictAttributes

if TYPE_CHECKING:
    # Annotation only: BpfObject builds its maps and programs, so a run-time import would
    # be a cycle; the public ``obj`` attribute keeps its exact type for users' mypy.
    from pybpf.kernel.fd import Fd
    from pybpf.kernel.progs import TestRunResult
    from pybpf.object.bpf_object import BpfObject


_CONTEXT_ONLY_TEST_RUN = frozenset(
    {ProgType.RAW_TRACEPOINT, ProgType.RAW_TRACEPOINT_WRITABLE, ProgType.SYSCALL}
)
"""Program types whose BPF_PROG_TEST_RUN takes a context and nothing else."""


class Program(StrictAttributes):
    """One entry-point program of a :class:`BpfObject`."""

    _PUBLIC_FIELDS = frozenset({"obj", "spec", "autoload", "log", "links"})

    def __init__(self, obj: BpfObject, spec: ProgramSpec) -> None:
        self.obj = obj
        self.spec = spec
        self.autoload = spec.autoload
        self._prog_type = spec.prog_type
        self._expected_attach_type = spec.expected_attach_type
        self._fd: Fd | None = None
        self.log = ""
        """The verifier log of the load (empty unless a log level was asked for)."""
        self.links = LinkSet()
        """Links made through this program; closed with the object."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def fd(self) -> int | None:
        """The program's file descriptor once loaded (``None`` if it was not, or after close).

        The descriptor belongs to the object's kernel state, which closes it; the program
        only refers to it.
        """
        fd = self._fd
        return None if fd is None else fd.fileno()

    def _bind(self, fd: Fd | None, log: str) -> None:
        """Take what the load made of this program (``None``: not loaded, autoload off)."""
        self._fd = fd
        self.log = log

    def _unbind(self) -> None:
        self._fd = None

    def _loaded_fd(self) -> int:
        if self.fd is None:
            state = "closed" if self.obj._closed else "not loaded"
            if self.obj.loaded and not self.autoload:
                state = "not loaded (autoload is off)"
            raise BpfError(f"program '{self.name}' is {state}")
        return self.fd

    def auto_attach(self) -> Link | None:
        """Attach as the section name says (``tp/cat/name``, ``raw_tp/name``, ``uprobe/...``);
        ``None`` when the section names no target (xdp, tc, cgroup, perf_event...)."""
        # attach (perf, links, uprobe targets) is only needed once a program attaches.
        from pybpf.object.attach import auto_attach

        spec = dataclasses.replace(self.spec, expected_attach_type=self.expected_attach_type)
        link = auto_attach(self._loaded_fd(), spec)
        return self.links.add(link) if link is not None else None

    def attach(self) -> Link:
        """Attach by section name like ``bpf_program__attach``; an error if it names no target."""
        link = self.auto_attach()
        if link is None:
            raise BpfError(
                f"program '{self.name}': section '{self.section_name}' names no attach target; "
                "use attach_xdp(), attach_cgroup(), attach_perf_event() or another explicit form"
            )
        return link

    def test_run(
        self,
        data_in: bytes | None = None,
        *,
        ctx_in: bytes | None = None,
        repeat: int = 1,
        flags: int = 0,
        cpu: int = 0,
    ) -> TestRunResult:
        """Run the program in the kernel on ``data_in``/``ctx_in`` (BPF_PROG_TEST_RUN).

        Raw tracepoint and ``syscall`` programs run once on ``ctx_in`` alone (their arguments)
        with no output buffers and no repeat count, which is all the kernel accepts for them.
        """
        # The test-run command is only needed by callers that run programs.
        from pybpf.kernel.progs import prog_test_run

        if self.prog_type in _CONTEXT_ONLY_TEST_RUN:
            if data_in is not None:
                raise BpfError(
                    f"program '{self.name}' ({self.prog_type.name}) runs on ctx_in only"
                )
            return prog_test_run(
                self._loaded_fd(),
                None,
                ctx_in=ctx_in,
                data_size_out=0,
                ctx_size_out=0,
                repeat=0,
                flags=flags,
                cpu=cpu,
            )
        return prog_test_run(
            self._loaded_fd(), data_in, ctx_in=ctx_in, repeat=repeat, flags=flags, cpu=cpu
        )

    def attach_tracepoint(self, category: str, name: str, cookie: int = 0) -> Link:
        from pybpf.object.attach import attach_tracepoint  # lazy, as in auto_attach

        return self.links.add(attach_tracepoint(self._loaded_fd(), category, name, cookie))

    def attach_raw_tracepoint(self, name: str) -> Link:
        from pybpf.object.attach import attach_raw_tracepoint  # lazy, as in auto_attach

        return self.links.add(attach_raw_tracepoint(self._loaded_fd(), name))

    def attach_uprobe(
        self,
        binary: str,
        offset_or_func: int | str,
        *,
        retprobe: bool = False,
        pid: int = -1,
        cookie: int = 0,
    ) -> Link:
        """A u(ret)probe on a function name (``func`` or ``func+0x10``) or file offset."""
        from pybpf.object.attach import attach_uprobe  # lazy, as in auto_attach

        link = attach_uprobe(
            self._loaded_fd(), binary, offset_or_func, retprobe=retprobe, pid=pid, cookie=cookie
        )
        return self.links.add(link)

    def attach_kprobe(
        self, func: str, offset: int = 0, *, retprobe: bool = False, cookie: int = 0
    ) -> Link:
        from pybpf.object.attach import attach_kprobe  # lazy, as in auto_attach

        link = attach_kprobe(
            self._loaded_fd(), func, offset, retprobe=retprobe, cookie=cookie
        )
        return self.links.add(link)

    def attach_perf_event(self, perf_event_fd: int, cookie: int = 0) -> Link:
        from pybpf.object.attach import attach_perf_event  # lazy, as in auto_attach

        return self.links.add(attach_perf_event(self._loaded_fd(), perf_event_fd, cookie))

    def attach_xdp(self, ifindex: int, flags: int = 0) -> Link:
        from pybpf.object.attach import attach_xdp  # lazy, as in auto_attach

        return self.links.add(attach_xdp(self._loaded_fd(), ifindex, flags))

    def attach_cgroup(self, cgroup_fd: int, attach_type: AttachType | int | None = None) -> Link:
        """Attach to the cgroup open as ``cgroup_fd``; the type defaults to the section's."""
        from pybpf.object.attach import attach_cgroup  # lazy, as in auto_attach

        kind = attach_type if attach_type is not None else self.expected_attach_type
        if kind is None:
            raise BpfError(f"program '{self.name}': no cgroup attach type known; pass one")
        return self.links.add(attach_cgroup(self._loaded_fd(), cgroup_fd, kind))

    @property
    def section_name(self) -> str:
        return self.spec.section_name

    @property
    def prog_type(self) -> ProgType:
        return self._prog_type

    @prog_type.setter
    def prog_type(self, value: ProgType) -> None:
        """Like ``bpf_program__set_type``, for sections libbpf cannot type."""
        self.obj._check_not_loaded(f"set the type of program '{self.name}'")
        self._prog_type = value

    @property
    def expected_attach_type(self) -> AttachType | None:
        return self._expected_attach_type

    @expected_attach_type.setter
    def expected_attach_type(self, value: AttachType | None) -> None:
        self.obj._check_not_loaded(f"set the attach type of program '{self.name}'")
        self._expected_attach_type = value

    def __repr__(self) -> str:
        return f"<Program {self.name} {self.prog_type.name} section={self.section_name}>"
