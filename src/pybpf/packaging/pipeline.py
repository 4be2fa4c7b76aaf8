"""The build itself: compile, link, generate, and list what goes into the wheel.

Everything is produced in a scratch directory and returned as a map from paths inside the
wheel to files, so that build backends only need to copy (hatchling's ``force_include``,
setuptools' ``build_lib``).  Outputs depend only on the sources, the flags and the installed
libraries' objects: no timestamps, no absolute paths, sorted JSON.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pybpf.errors import BpfError
from pybpf.linker import link_objects
from pybpf.packaging.clang import base_flags, compile_bpf, find_clang, system_include_dirs
from pybpf.packaging.config import BuildConfig, BuildError, ObjectConfig
from pybpf.registry import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    LibraryInfo,
    Requirement,
    resolve_libraries,
)
from pybpf.skel.codegen import generate


@dataclass
class BuildOutput:
    """What a build produced: wheel path (``flowlib/bpf/flowlib.bpf.o``) -> file on disk."""

    files: dict[str, Path] = field(default_factory=dict)

    def add(self, wheel_path: str, path: Path) -> None:
        self.files[wheel_path] = path


def _stem(source: str) -> str:
    name = Path(source).name
    for suffix in (".bpf.c", ".c"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


class _Build:
    def __init__(self, root: Path, cfg: BuildConfig, scratch: Path) -> None:
        self.root = root
        self.cfg = cfg
        self.scratch = scratch
        self.out = BuildOutput()
        self.clang = find_clang(cfg.clang)
        self.flags = [*base_flags(cfg.arch, cfg.endian_target, root)]
        self.pkg_dir = scratch / "package"
        (self.pkg_dir / "bpf").mkdir(parents=True, exist_ok=True)
        self.local_objects: dict[str, Path] = {}

    def include_dirs(self, installed: list[LibraryInfo]) -> list[tuple[str, str]]:
        dirs = [(str(self.root / d), d) for d in self.cfg.include_dirs]
        for info in installed:
            dirs += [(str(d), f"/pybpf-libraries/{info.name}") for d in info.include_dirs]
        dirs += [(d, d) for d in system_include_dirs()]
        return dirs

    def compile_all(self, item: ObjectConfig, installed: list[LibraryInfo]) -> list[Path]:
        objdir = self.scratch / "obj" / item.name
        objdir.mkdir(parents=True, exist_ok=True)
        outputs = []
        for source in item.sources:
            output = objdir / f"{_stem(source)}.bpf.o"
            compile_bpf(
                self.clang,
                source,
                output,
                root=self.root,
                flags=[*self.flags, *self.cfg.cflags, *item.cflags],
                include_dirs=self.include_dirs(installed),
            )
            outputs.append(output)
        return outputs

    def link(self, item: ObjectConfig, inputs: list[Path], *, library: bool) -> Path:
        output = self.pkg_dir / "bpf" / f"{item.name}.bpf.o"
        try:
            output.write_bytes(link_objects(inputs, allow_unresolved=library))
        except BpfError as exc:
            raise BuildError(f"linking {item.name}: {exc}") from None
        self.out.add(f"{self.cfg.package_path}/bpf/{output.name}", output)
        return output

    def generate(self, kind: str, item: ObjectConfig, obj: Path) -> None:
        try:
            text = generate(kind, obj, name=item.name, lang="python")
        except BpfError as exc:
            raise BuildError(f"generating the Python {kind} of {item.name}: {exc}") from None
        module = self.pkg_dir / f"{item.module}.py"
        module.write_text(text, encoding="utf-8")
        self.out.add(f"{self.cfg.package_path}/{module.name}", module)

    def split_libraries(self, item: ObjectConfig) -> tuple[list[Path], list[LibraryInfo]]:
        """This project's own libraries (already built) and installed ones, with what they need."""
        local = [self.local_objects[n] for n in item.libraries if n in self.local_objects]
        wanted = [n for n in item.libraries if _name_of(n) not in self.local_objects]
        try:
            installed = resolve_libraries(wanted)
        except BpfError as exc:
            raise BuildError(f"{item.name}: {exc}") from None
        return local, installed

    def build_library(self, item: ObjectConfig) -> dict[str, Any]:
        _, installed = self.split_libraries(item)
        obj = self.link(item, self.compile_all(item, installed), library=True)
        self.local_objects[item.name] = obj
        headers = []
        for header in item.headers:
            src = self.root / header
            if not src.is_file():
                raise BuildError(f"library {item.name}: header {header} does not exist")
            dst = self.pkg_dir / "bpf" / src.name
            shutil.copyfile(src, dst)
            self.out.add(f"{self.cfg.package_path}/bpf/{src.name}", dst)
            headers.append(f"bpf/{src.name}")
        self.generate("subskeleton", item, obj)
        return {
            "objects": [f"bpf/{obj.name}"],
            "headers": headers,
            "requires": list(item.libraries),
        }

    def build_app(self, item: ObjectConfig) -> None:
        local, installed = self.split_libraries(item)
        objects = self.compile_all(item, installed)
        lib_objects = [p for info in installed for p in info.objects]
        obj = self.link(item, [*objects, *local, *lib_objects], library=False)
        self.generate("skeleton", item, obj)

    def run(self) -> BuildOutput:
        manifest: dict[str, Any] = {}
        for lib in self.cfg.libraries:
            manifest[lib.name] = self.build_library(lib)
        for app in self.cfg.apps:
            self.build_app(app)
        if manifest:
            path = self.pkg_dir / MANIFEST_NAME
            text = json.dumps({"format": MANIFEST_FORMAT, "libraries": manifest},
                              indent=2, sort_keys=True)
            path.write_text(text + "\n", encoding="utf-8")
            self.out.add(f"{self.cfg.package_path}/{MANIFEST_NAME}", path)
        return self.out


def _name_of(requirement: str) -> str:
    return Requirement.parse(requirement).name


def build_bpf(
    root: str | Path,
    scratch: str | Path,
    *,
    config: BuildConfig | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> BuildOutput:
    """Compile, link and generate everything ``root/pyproject.toml`` asks for, in ``scratch``.

    Returns the files to put into the wheel.  Raises :class:`BuildError` with clang's own
    message for compile errors, and a hint when clang is missing.
    """
    root = Path(root).resolve()
    cfg = config or BuildConfig.from_pyproject(root, overrides)
    return _Build(root, cfg, Path(scratch)).run()


def build_into(root: str | Path, build_lib: str | Path, scratch: str | Path) -> list[Path]:
    """Build and copy the outputs into ``build_lib`` (what a setuptools ``build_py`` calls).

    ::

        class build_py(setuptools.command.build_py.build_py):
            def run(self) -> None:
                super().run()
                with tempfile.TemporaryDirectory() as tmp:
                    pybpf.packaging.build_into(".", self.build_lib, tmp)
    """
    written = []
    for wheel_path, path in sorted(build_bpf(root, scratch).files.items()):
        target = Path(build_lib) / wheel_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written.append(target)
    return written
