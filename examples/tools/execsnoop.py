"""execsnoop: trace exec() calls, one line each.

A Python port of libbpf-tools' execsnoop, same output.  ``execsnoop_skel`` is generated from
the BPF object: ``pybpf gen skeleton execsnoop.bpf.o name execsnoop --lang python``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from execsnoop_skel import Execsnoop

from pybpf.events import record_bytes

MAX_ARGS = 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Trace exec syscalls.")
    parser.add_argument("-T", "--time", action="store_true", help="include a time column")
    parser.add_argument("-x", "--fails", action="store_true", help="include failed exec()s")
    parser.add_argument("-u", "--uid", type=int, help="trace this UID only")
    parser.add_argument("--count", type=int, help="exit after this many events")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    seen = 0

    def show(event: Any) -> None:  # struct event, decoded from the object's BTF
        nonlocal seen
        if event.retval != 0 and not args.fails:
            return
        args_at = type(event).args.offset  # the record holds only the arguments in use
        argv = record_bytes(event)[args_at : args_at + event.args_size].split(b"\0")
        argv = argv[: event.args_count]
        line = "".join(arg.decode(errors="replace") + " " for arg in argv)
        if event.args_count == MAX_ARGS + 1:
            line += " ..."
        stamp = f"{time.strftime('%H:%M:%S'):<8} " if args.time else ""
        comm = event.comm.split(b"\0", 1)[0].decode(errors="replace")
        print(f"{stamp}{comm:<16} {event.pid:<6} {event.ppid:<6} {event.retval:3} {line}")
        seen += 1

    with Execsnoop.open() as skel:
        if args.uid is not None:
            skel.rodata.targ_uid = args.uid
        skel.load()
        skel.attach()
        if args.time:
            print(f"{'TIME':<8} ", end="")
        print(f"{'PCOMM':<16} {'PID':<6} {'PPID':<6} {'RET':>3} ARGS", flush=True)
        with skel.maps.events.reader(show, event_type="struct event") as reader:
            try:
                while args.count is None or seen < args.count:
                    reader.poll(100)
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    main()
