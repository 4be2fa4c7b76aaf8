"""pybpf.load: load BPF objects into the kernel, without libbpf: specs in, kernel state out.

Users call :meth:`pybpf.object.BpfObject.load`, which hands this package a spec and binds the
:class:`~.loader.KernelObject` it returns; one job per module, in load order:

* :mod:`.btf_sanitize` - the object's BTF made acceptable to the running kernel (DATASEC
  sizes and offsets from the ELF symbols, extern linkage, kinds the kernel lacks);
* :mod:`.kconfig` - values of ``__kconfig`` externs from the kernel config;
* :mod:`.ksyms` - ``__ksym`` externs and kfuncs resolved against kallsyms and kernel BTF;
* :mod:`.maps` - map creation from specs, global-data initialisation, element access;
* :mod:`.program_image` - one flat, fully relocated instruction array per entry point (pure);
* :mod:`.programs` - ``BPF_PROG_LOAD`` with func/line info and BTF attach targets;
* :mod:`.loader` - the sequence, all or nothing (:func:`.loader.load_object`), with CO-RE
  applied first by :mod:`pybpf.core`;
* :mod:`.map_codec` - Python keys and values to map bytes.

Attaching (and the links that own attachments) is :mod:`pybpf.object`'s.

Only :mod:`pybpf.kernel` issues system calls; :mod:`.program_image`, :mod:`.kconfig` and
:mod:`.btf_sanitize` are pure and testable without root.
"""
