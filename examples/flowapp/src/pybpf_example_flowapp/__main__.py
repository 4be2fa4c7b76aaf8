"""``flowapp [CALLS]``: run once and print the result as JSON."""

from __future__ import annotations

import dataclasses
import json
import sys

from pybpf_example_flowapp.app import run


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    calls = int(args[0]) if args else 1000
    result = dataclasses.asdict(run(calls))
    result["name"] = result["name"].decode()
    result["library_syscalls"] = {str(k): v for k, v in result["library_syscalls"].items()}
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
