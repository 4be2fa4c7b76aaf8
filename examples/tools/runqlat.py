"""runqlat: summarize scheduler run-queue latency as a histogram.

A Python port of libbpf-tools' runqlat, same options and output.  ``runqlat_skel`` is generated
from the BPF object: ``pybpf gen skeleton runqlat.bpf.o name runqlat --lang python``.
"""

from __future__ import annotations

import argparse
import time

from runqlat_skel import Runqlat

from pybpf.tracing import print_log2_hist


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Summarize run queue (scheduler) latency.")
    parser.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    parser.add_argument("-P", "--pids", action="store_true", help="one histogram per process")
    parser.add_argument("-p", "--pid", type=int, default=0, help="trace this PID only")
    parser.add_argument("-T", "--timestamp", action="store_true", help="timestamp each output")
    parser.add_argument("interval", nargs="?", type=float, default=99999999.0)
    parser.add_argument("count", nargs="?", type=int, default=99999999)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with Runqlat.open() as skel:
        skel.rodata.targ_ms = args.milliseconds
        skel.rodata.targ_per_process = args.pids
        skel.rodata.targ_tgid = args.pid
        skel.load()
        skel.attach()
        print("Tracing run queue latency... Hit Ctrl-C to end.")
        unit = "msecs" if args.milliseconds else "usecs"
        try:
            for _ in range(args.count):
                time.sleep(args.interval)
                print()
                if args.timestamp:
                    print(time.strftime("%H:%M:%S"))
                for pid, hist in skel.maps.hists.items():
                    if args.pids:
                        comm = hist.comm.split(b"\0", 1)[0].decode(errors="replace")
                        print(f"\npid = {pid} {comm}\n")
                    print_log2_hist(hist.slots, unit)
                skel.maps.hists.clear()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
