"""flowapp (pybpf-example-flowapp): a BPF application package built on the flowlib BPF library."""

from pybpf_example_flowapp.app import Result, run

__all__ = ["Result", "run"]
