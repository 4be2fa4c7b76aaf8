"""Run saved inputs through a target once: ``python -m fuzz.replay TARGET FILE...``.

For checking a reproducer from ``fuzz/.work/findings`` against the code as it is now: each
file gets the same judgement as during fuzzing (alarm, address-space limit) and one line with
its outcome, the innermost pybpf frame and the time it took; ``--store`` files anything bad
in the findings directory as the drivers do.  Exit status 1 if any input was bad.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fuzz.findings import BAD, FindingStore, install_alarm, limit_address_space, run_case
from fuzz.targets import TARGETS, remove_scratch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--store", action="store_true", help="record bad outcomes as findings")
    args = parser.parse_args(argv)
    limit_address_space()
    install_alarm()
    store = FindingStore(args.target)
    bad = 0
    try:
        for path in args.files:
            data = path.read_bytes()
            outcome = run_case(TARGETS[args.target], data)
            detail = f" {outcome.key} [{outcome.where}] {outcome.message[:160]!r}"
            shown = detail if outcome.status in BAD else ""
            print(f"{path}: {outcome.status} {outcome.seconds:.2f}s{shown}", flush=True)
            if outcome.status in BAD:
                bad += 1
                if args.store:
                    print(f"  -> {store.record(outcome, data, f'replay of {path.name}')}")
    finally:
        remove_scratch()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
