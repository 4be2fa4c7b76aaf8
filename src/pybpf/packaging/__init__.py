"""Build BPF libraries and applications as Python packages.

At build time (never at run time) :func:`build_bpf` compiles a package's ``*.bpf.c`` with
clang, links them with pybpf's static linker (applications with the BPF libraries they use,
found among the installed Python packages), and generates typed Python skeletons and
subskeletons.  The results ship as package data of a ``py3-none-any`` wheel.

Backends: :mod:`pybpf.packaging.hatch` (a hatchling build hook) and :func:`build_into` (for a
setuptools ``build_py`` command).  The configuration is ``[tool.pybpf]``, described in
:mod:`pybpf.packaging.config`.
"""

from pybpf.packaging.config import BuildConfig, BuildError, ObjectConfig
from pybpf.packaging.pipeline import BuildOutput, build_bpf, build_into

__all__ = ["BuildConfig", "BuildError", "BuildOutput", "ObjectConfig", "build_bpf", "build_into"]
