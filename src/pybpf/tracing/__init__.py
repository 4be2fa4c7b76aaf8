"""What tracing tools share: histograms printed the way bcc and libbpf-tools print them.

Pure Python over plain values (a typed map's ``slots`` array is a sequence of ints), so a tool's
output can be compared line by line with its C namesake's.
"""

from pybpf.tracing.histogram import (
    format_linear_hist,
    format_log2_hist,
    print_linear_hist,
    print_log2_hist,
)

__all__ = ["format_linear_hist", "format_log2_hist", "print_linear_hist", "print_log2_hist"]
