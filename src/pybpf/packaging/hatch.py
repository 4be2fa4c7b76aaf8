"""The hatchling build hook: BPF objects and generated modules into the wheel.

Two ways to turn it on.  Without installing anything but pybpf in the build environment,
as a hatchling *custom* hook: a two-line ``hatch_build.py`` next to ``pyproject.toml``::

    from pybpf.packaging.hatch import PybpfBuildHook  # noqa: F401  (hatchling finds it here)

and ``[tool.hatch.build.hooks.custom]`` in ``pyproject.toml``.  Or, when pybpf registers its
``hatch`` entry point, by name: ``[tool.hatch.build.hooks.pybpf]``.  Either way the settings
come from ``[tool.pybpf]`` (the hook's own table may override them), and the wheel stays
``py3-none-any``: BPF objects are bytecode for the kernel, not for the build machine.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.plugin import hookimpl

from pybpf.packaging.config import BuildError
from pybpf.packaging.pipeline import build_bpf


class PybpfBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Compile ``*.bpf.c``, link with pybpf, generate skeletons; add them as package data."""

    PLUGIN_NAME = "pybpf"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return  # an sdist ships the BPF sources; its wheel build compiles them
        self._scratch = tempfile.mkdtemp(prefix="pybpf-build-")
        output = build_bpf(self.root, self._scratch, overrides=self.config)
        build_data["pure_python"] = True
        build_data["infer_tag"] = False
        if version == "editable":
            # An editable install imports the package from the source tree, so the generated
            # files must be there (a copy in site-packages would be shadowed by it).
            _write_into_sources(Path(self.root), output.files)
            return
        included = {str(path): wheel_path for wheel_path, path in sorted(output.files.items())}
        build_data.setdefault("force_include", {}).update(included)

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _write_into_sources(root: Path, files: dict[str, Path]) -> None:
    for wheel_path, path in sorted(files.items()):
        for base in (root / "src", root):
            package_dir = base / wheel_path.split("/", 1)[0]
            if package_dir.is_dir():
                target = base / wheel_path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                break
        else:
            raise BuildError(f"editable build: no package directory for {wheel_path} in {root}")


@hookimpl
def hatch_register_build_hook() -> type[PybpfBuildHook]:
    """hatchling's plugin entry point (group ``hatch``): ``[tool.hatch.build.hooks.pybpf]``."""
    return PybpfBuildHook
