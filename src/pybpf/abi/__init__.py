"""The kernel ABI as pure data: ``linux/bpf.h``, the instruction format, BTF layouts, section
names and ``perf_event.h`` numbers.

Everything here is a constant, an enum or a struct format, and nothing here imports the rest of
pybpf: the pure layers (ELF, BTF, object model, linker, code generators) and the kernel door read
the same definitions, so a value is spelled exactly once.
"""
