"""flowapp: a BPF application package built on the flowlib BPF library."""

from flowapp.app import Result, run

__all__ = ["Result", "run"]
