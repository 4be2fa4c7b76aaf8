"""The ``pybpf`` command line, shaped like bpftool's ``btf`` and ``gen`` commands.

bpftool takes keyword arguments (``btf dump file X format c``, ``gen skeleton X name N``), so
this module parses them the same way instead of with ``--options``, and prints errors the way
bpftool does: one ``Error: ...`` line on stderr and a non-zero exit code.  Command handlers
import their machinery lazily so that ``pybpf --help`` stays instant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from pybpf import __version__
from pybpf.errors import BpfError

USAGE = """\
Usage: pybpf OBJECT COMMAND [ARGS]

  pybpf btf dump file FILE [format {raw|c}] [base FILE]
  pybpf object show FILE [--json]
  pybpf gen skeleton FILE [name NAME] [--lang {c|python}] [--keep-debug]
  pybpf gen subskeleton FILE [name NAME] [--lang {c|python}] [--keep-debug]
  pybpf gen object OUTPUT INPUT [INPUT...] [--lib NAME[SPEC]]...
  pybpf gen min_core_btf INPUT OUTPUT OBJECT [OBJECT...]
  pybpf demo [--seconds N]
  pybpf version
"""


class UsageError(Exception):
    """Wrong command-line words; reported with the usage text."""


def _keywords(
    args: Sequence[str], allowed: set[str], flags: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Parse bpftool-style ``key value`` pairs (and ``--flag`` / ``--opt value`` words)."""
    result: dict[str, str] = {}
    i = 0
    while i < len(args):
        word = args[i]
        if word in flags:
            result[word] = "1"
            i += 1
            continue
        key = word.removeprefix("--") if word.startswith("--") else word
        if key not in allowed:
            raise UsageError(f"unexpected argument '{word}'")
        if i + 1 >= len(args):
            raise UsageError(f"'{word}' needs a value")
        result[key] = args[i + 1]
        i += 2
    return result


def _write(text: str) -> None:
    """Write text as UTF-8, passing through names that were not valid UTF-8 byte for byte."""
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.buffer.flush()


def cmd_btf(args: Sequence[str]) -> int:
    if len(args) < 3 or args[0] != "dump" or args[1] != "file":
        raise UsageError("expected: btf dump file FILE [format {raw|c}] [base FILE]")
    path = args[2]
    opts = _keywords(args[3:], {"format", "base"})
    fmt = opts.get("format", "raw")
    # Lazy, as in every handler here: only this command needs it; `pybpf --help` stays instant.
    from pybpf.btf import Btf
    from pybpf.btf.files import btf_from_file

    base_path = opts.get("base")
    if base_path is None and _is_module_btf(path):
        # Like bpftool: module BTF in sysfs is split BTF on top of the kernel's.
        base_path = "/sys/kernel/btf/vmlinux"
    base_btf = Btf.from_path(base_path) if base_path else None
    btf = btf_from_file(path, base=base_btf)
    if fmt == "raw":
        from pybpf.btf.dump_raw import dump_raw  # lazy: only this format needs it

        _write(dump_raw(btf))
    elif fmt == "c":
        from pybpf.btf.c_dump import write_c  # lazy: only this format needs it

        write_c(btf, _write)
    else:
        raise UsageError(f"unknown format '{fmt}' (expected raw or c)")
    return 0


def _is_module_btf(path: str) -> bool:
    parent, _, name = path.rstrip("/").rpartition("/")
    return parent.rstrip("/") == "/sys/kernel/btf" and name != "vmlinux"


def cmd_object(args: Sequence[str]) -> int:
    if len(args) < 2 or args[0] != "show":
        raise UsageError("expected: object show FILE [--json]")
    opts = _keywords(args[2:], set(), frozenset({"--json"}))
    # Lazy: only this command needs the object model.
    from pybpf.obj.object_spec import ObjectSpec
    from pybpf.obj.show import format_object

    spec = ObjectSpec.from_path(args[1])
    _write(format_object(spec, as_json="--json" in opts))
    return 0


def cmd_gen(args: Sequence[str]) -> int:
    if not args:
        raise UsageError("expected: gen {skeleton|subskeleton|object|min_core_btf} ...")
    sub, rest = args[0], args[1:]
    if sub in ("skeleton", "subskeleton"):
        return _gen_skeleton(sub, rest)
    if sub == "object":
        return _gen_object(rest)
    if sub == "min_core_btf":
        return _gen_min_core_btf(rest)
    raise UsageError(f"unknown gen command '{sub}'")


def _gen_skeleton(kind: str, args: Sequence[str]) -> int:
    if not args:
        raise UsageError(f"expected: gen {kind} FILE [name NAME] [--lang {{c|python}}]")
    path = args[0]
    opts = _keywords(args[1:], {"name", "lang"}, frozenset({"--keep-debug"}))
    lang = opts.get("lang", "c")
    if "--keep-debug" in opts and lang != "python":
        raise UsageError("--keep-debug applies to --lang python (C skeletons embed the object "
                         "as given, as bpftool does)")
    from pybpf.skel.codegen import generate  # lazy: only this command needs the generators

    _write(generate(kind, path, name=opts.get("name"), lang=lang,
                    keep_debug="--keep-debug" in opts))  # fmt: skip
    return 0


def _gen_object(args: Sequence[str]) -> int:
    if len(args) < 2:
        raise UsageError("expected: gen object OUTPUT INPUT [INPUT...] [--lib NAME]")
    output = args[0]
    inputs: list[str] = []
    libraries: list[str] = []
    rest = list(args[1:])
    while rest:
        word = rest.pop(0)
        if word == "--lib":
            if not rest:
                raise UsageError("'--lib' needs a library name")
            libraries.append(rest.pop(0))
        else:
            inputs.append(word)
    from pybpf.linker import link_files  # lazy: only this command needs the linker

    link_files(output, inputs, libraries=libraries)
    return 0


def _gen_min_core_btf(args: Sequence[str]) -> int:
    if len(args) < 3:
        raise UsageError("expected: gen min_core_btf INPUT OUTPUT OBJECT [OBJECT...]")
    from pybpf.core.min_btf import write_min_core_btf  # lazy: only this command needs CO-RE

    write_min_core_btf(args[0], args[1], list(args[2:]))
    return 0


def cmd_demo(args: Sequence[str]) -> int:
    opts = _keywords(args, {"seconds"})
    from pybpf.demo import run_demo  # lazy: the demo imports the whole runtime

    return run_demo(seconds=float(opts.get("seconds", "5")))


def cmd_version(args: Sequence[str]) -> int:
    _write(f"pybpf {__version__}\n")
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "btf": cmd_btf,
    "object": cmd_object,
    "gen": cmd_gen,
    "demo": cmd_demo,
    "version": cmd_version,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    handler = COMMANDS.get(args[0])
    try:
        if handler is None:
            raise UsageError(f"unknown object '{args[0]}'")
        return handler(args[1:])
    except UsageError as exc:
        sys.stderr.write(f"Error: {exc}\n{USAGE}")
        return 2
    except BpfError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    except BrokenPipeError:
        # `pybpf btf dump ... | head`: the reader went away; that is not an error of ours.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("pybpf"):
            sys.stderr.write(f"Error: this command is not available yet ({exc.name} missing)\n")
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
