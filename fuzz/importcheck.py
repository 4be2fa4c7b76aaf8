"""Import generated Python modules in a watched subprocess and report anything they do.

A generated skeleton must be inert on import: it defines classes and one base64 literal and
nothing else.  A name from the object that escapes its string literal would turn into code
that runs at import, so the checker imports each module as a user would (a real ``.py`` file
through :mod:`importlib`) in a worker process with :func:`sys.addaudithook` installed first.
While the module body runs, every audit event other than the import machinery reading *that*
file is a finding, and is blocked (the hook raises) so injected code cannot act.  Output on
stdout/stderr, an exception, or a missing ``__all__`` name is a finding too.

The worker is persistent (one Python start-up per few hundred cases, not per case) and reads
one module path per line on stdin, answering one JSON list of problems per line.  Run it with
``python -m fuzz.importcheck``.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import io
import json
import os
import resource
import select
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, ModuleType
from typing import IO

IMPORT_TIMEOUT = 4.0
"""Seconds one import may take before the worker is killed and the module reported."""
CHECKS_PER_WORKER = 400
"""Imports before the worker is replaced, so module leftovers never pile up."""
WORKER_ADDRESS_SPACE = 2 << 30

_ALLOWED_IMPORTS = frozenset(
    {"__future__", "base64", "collections.abc", "ctypes", "typing", "pybpf.skel.generated"}
)
"""What generated modules may import; ``import os`` is a finding even though os is loaded
(and so raises no audit event)."""
_PRELOADED = (*sorted(_ALLOWED_IMPORTS), "unicodedata")
"""Loaded before the hook, so their import is not an event: what generated modules import, and
``unicodedata``, which the compiler itself imports to normalize non-ASCII identifiers."""

_BENIGN_EVENTS = frozenset(
    {"object.__setattr__", "object.__getattr__", "object.__delattr__", "sys._getframe"}
)
"""Events class creation and ``typing`` raise on their own; none of them acts outside."""


@dataclass(frozen=True, slots=True)
class Problem:
    """What the import of one module did wrong: ``key`` for dedup, ``detail`` for people."""

    key: str
    detail: str
    hang: bool = False


class ImportChecker:
    """The parent side: writes each module under ``workdir`` and asks the worker to import it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._proc: subprocess.Popen[str] | None = None
        self._checks = 0
        self._serial = 0

    def _worker(self) -> subprocess.Popen[str]:
        if self._proc is not None and self._checks >= CHECKS_PER_WORKER:
            self.close()
        if self._proc is None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "fuzz.importcheck"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                cwd=Path(__file__).resolve().parent.parent,
                preexec_fn=_limit_memory,
            )
            self._checks = 0
        return self._proc

    def check(self, source: bytes) -> Problem | None:
        """Import ``source`` (a module's file contents); ``None`` when the import was clean."""
        proc = self._worker()
        self._serial += 1
        self._checks += 1
        path = self.workdir / f"generated_{self._serial}.py"
        path.write_bytes(source)
        requests, replies = proc.stdin, proc.stdout
        if requests is None or replies is None:
            raise RuntimeError("import checker started without pipes")
        try:
            requests.write(f"{path}\n")
            requests.flush()
            ready, _, _ = select.select([replies], [], [], IMPORT_TIMEOUT)
            if not ready:
                self.close()
                return Problem("import timed out", f"no answer in {IMPORT_TIMEOUT} s", hang=True)
            line = replies.readline()
            if not line:
                code = self.close()
                return Problem("import killed the worker", f"worker exited with {code}")
            problems: list[list[str]] = json.loads(line)
        except BrokenPipeError:
            code = self.close()
            return Problem("import killed the worker", f"worker exited with {code}")
        finally:
            path.unlink(missing_ok=True)
        if not problems:
            return None
        key, detail = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return Problem(key, detail + more)

    def close(self) -> int | None:
        """Stop the worker (it is started again on the next check); its exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        with contextlib.suppress(OSError):
            proc.kill()
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        return code


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_ADDRESS_SPACE, WORKER_ADDRESS_SPACE))


# --------------------------------------------------------------------------- worker side


class _Blocked(RuntimeError):
    """Raised by the audit hook to stop a side effect of the module being imported."""


class _Watch:
    """The audit hook's state: which module is being imported, and what it did."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.compiled = False
        self.executed = False
        self.problems: list[list[str]] = []

    def arm(self, path: str) -> None:
        self.path, self.compiled, self.executed, self.problems = path, False, False, []

    def disarm(self) -> None:
        self.path = None

    def hook(self, event: str, args: tuple[object, ...]) -> None:
        path = self.path
        if path is None or event in _BENIGN_EVENTS:
            return
        if self._expected(path, event, args):
            return
        shown = ", ".join(_short(a) for a in args[:3])
        self.problems.append([f"audit event {event}", f"{event}({shown})"])
        raise _Blocked(f"blocked audit event {event} during import")

    def _expected(self, path: str, event: str, args: tuple[object, ...]) -> bool:
        """Only what ``SourceFileLoader`` does to load ``path``: read it (or its cache),
        compile it once, run its code object once."""
        if event == "open":
            name = os.fspath(args[0]) if isinstance(args[0], str | os.PathLike) else ""
            mode = args[1] if len(args) > 1 else "r"
            cache = os.path.join(os.path.dirname(path), "__pycache__") + os.sep
            return mode == "r" and (name == path or name.startswith(cache))
        if event == "compile" and not self.compiled:
            self.compiled = True
            return len(args) > 1 and args[1] == path
        if event == "exec" and not self.executed:
            self.executed = True
            code = args[0]
            return isinstance(code, CodeType) and code.co_filename == path
        return False


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _guarded_import(watch: _Watch) -> Callable[..., ModuleType]:
    """``__import__`` for the module under test: refuses modules it has no reason to import."""
    real = builtins.__import__

    def guarded(
        name: str,
        globals: Mapping[str, object] | None = None,
        locals: Mapping[str, object] | None = None,
        fromlist: Sequence[str] = (),
        level: int = 0,
    ) -> ModuleType:
        if level == 0 and name not in _ALLOWED_IMPORTS:
            watch.problems.append([f"imports {name}", f"import of {name!r}"])
            raise _Blocked(f"blocked import of {name}")
        return real(name, globals, locals, fromlist, level)

    return guarded


def _import_once(path: str, watch: _Watch) -> list[list[str]]:
    spec = importlib.util.spec_from_file_location("pybpf_fuzz_generated", path)
    if spec is None or spec.loader is None:
        return [["no import spec", path]]
    module = importlib.util.module_from_spec(spec)
    module.__dict__["__builtins__"] = {**vars(builtins), "__import__": _guarded_import(watch)}
    captured = io.StringIO()
    watch.arm(path)
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            spec.loader.exec_module(module)
    except _Blocked:
        pass
    except BaseException as exc:
        watch.problems.append([f"import raised {type(exc).__name__}", f"{exc}"[:300]])
    finally:
        watch.disarm()
    problems = watch.problems
    if captured.getvalue():
        problems.append(["import wrote output", captured.getvalue()[:200]])
    exported = getattr(module, "__all__", None)
    if not problems:
        if not isinstance(exported, list) or not exported:
            problems.append(["module has no __all__", repr(exported)[:200]])
        else:
            missing = [n for n in exported if not isinstance(n, str) or not hasattr(module, n)]
            if missing:
                problems.append(["__all__ names a missing attribute", repr(missing)[:200]])
    return problems


def worker_main(requests: IO[str], replies: IO[str]) -> None:
    """Serve import requests until stdin closes (run with the audit hook installed)."""
    for name in _PRELOADED:
        importlib.import_module(name)
    sys.dont_write_bytecode = True
    watch = _Watch()
    sys.addaudithook(watch.hook)
    for line in requests:
        problems = _import_once(line.rstrip("\n"), watch)
        replies.write(json.dumps(problems) + "\n")
        replies.flush()


def main() -> None:
    # Replies get their own copy of stdout; fd 1 itself goes to /dev/null so a module writing
    # to the descriptor directly cannot corrupt the protocol.
    replies = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    worker_main(sys.stdin, replies)


if __name__ == "__main__":
    main()
