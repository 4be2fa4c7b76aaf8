"""Fuzzing harness for pybpf's input-facing surfaces (issue 13, "Fuzzing, kept").

Every entry point in :mod:`fuzz.targets` takes one input (``bytes``) and drives the public API
the way ``pybpf`` on the command line does.  The only exception a target may let out is
:class:`pybpf.errors.BpfError`; anything else is an *escape*.  A case running longer than five
seconds is a *hang*, one that takes the process past 1 GiB a *memory peak*.

- ``python -m fuzz.seed``: build seed inputs from ``tests/fixtures`` into ``fuzz/.work/seeds``.
- ``python -m fuzz.mutate --target NAME --cases N``: seeded, structure-aware mutation, no
  coverage feedback, in worker processes with a memory limit and a per-case alarm.
- ``python -m fuzz.run_atheris --target NAME --seconds S``: coverage-guided fuzzing with
  atheris (libFuzzer), using the same mutators as a custom mutator.
- ``python -m fuzz.replay TARGET FILE...``: judge saved inputs (reproducers) once.
- ``fuzz/corpus/<target>/<sha1>``: a small committed corpus that ``tests/test_fuzz_corpus.py``
  replays on every ``make test``.

Reproducers of findings go to ``fuzz/.work/findings/<target>/`` (``PYBPF_FUZZ_WORK`` moves
``fuzz/.work``, which is not committed).  ``make fuzz`` runs the seeds, then atheris for
``FUZZ_SECONDS`` and the mutation driver for ``FUZZ_CASES`` per target.
"""
