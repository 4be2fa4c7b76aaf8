"""A thread that makes syscalls of very different latencies, so the histogram has a shape.

Fast ones (``getppid``), file-system ones (``newfstatat``, ``read`` of ``/dev/zero``) and
sleeps (``clock_nanosleep``, around 200 µs) land in buckets orders of magnitude apart.
"""

from __future__ import annotations

import os
import threading
import time


class Workload:
    """Runs in the background until :meth:`stop`; counts its own calls for comparison."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pybpf-demo-workload", daemon=True)
        self.rounds = 0
        self.getppid_calls = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        fd = os.open("/dev/zero", os.O_RDONLY)
        try:
            while not self._stop.is_set():
                for _ in range(50):
                    os.getppid()
                self.getppid_calls += 50
                for _ in range(10):
                    os.stat("/")
                    os.read(fd, 65536)
                time.sleep(0.0002)
                self.rounds += 1
        finally:
            os.close(fd)
