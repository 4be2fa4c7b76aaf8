"""The flowlib BPF library: per-process syscall latency histograms, a BPF library with its Python companion.

Link the library into your BPF application (``pybpf gen object app.o app.bpf.o --lib
flowlib``, or ``libraries = ["flowlib"]`` in ``[tool.pybpf.apps.NAME]``), then::

    skel = MyApp.open()
    flow = pybpf_example_flowlib.Flow(skel.obj)
    flow.configure(pid=os.getpid())
    skel.load(); skel.attach()
    print(flow.snapshot().format())
"""

from importlib import resources
from pathlib import Path

from .companion import BUCKETS, MAX_SYSCALLS, Flow, FlowError, Snapshot, format_ns

__all__ = ["BUCKETS", "MAX_SYSCALLS", "Flow", "FlowError", "Snapshot", "format_ns", "object_path"]


def object_path() -> Path:
    """The library's linked object file (package data), e.g. for ``pybpf object show``."""
    return Path(str(resources.files(__name__).joinpath("bpf", "flowlib.bpf.o")))
