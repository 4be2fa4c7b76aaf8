"""hatchling custom build hook: pybpf compiles, links and generates (see [tool.pybpf])."""

from pybpf.packaging.hatch import PybpfBuildHook

__all__ = ["PybpfBuildHook"]
