"""Errors of CO-RE relocation.

A relocation that cannot be *satisfied* is not an error (the instruction is poisoned and the
verifier complains only if it is reachable); these are for relocations that cannot even be
*interpreted*: a malformed access string, ambiguous candidates, an instruction that does not
hold the value the compiler promised.  The message names the program, the relocation index
and the instruction, as libbpf's warnings do, so a user can find the source line.
"""

from __future__ import annotations

from pybpf.errors import BpfError


class CoreError(BpfError):
    """A CO-RE relocation could not be applied."""

    def __init__(
        self,
        message: str,
        *,
        program: str | None = None,
        relo_index: int | None = None,
        insn_index: int | None = None,
    ) -> None:
        self.program = program
        self.relo_index = relo_index
        self.insn_index = insn_index
        self.reason = message
        parts: list[str] = []
        if program is not None:
            parts.append(f"prog '{program}'")
        if relo_index is not None:
            parts.append(f"relo #{relo_index}")
        if insn_index is not None:
            parts.append(f"insn #{insn_index}")
        parts.append(message)
        super().__init__(": ".join(parts))


class SpecError(Exception):
    """Internal: a spec or candidate problem, re-raised as :class:`CoreError` with context."""
