"""CO-RE: rewrite a program's instructions for the kernel it is about to run on.

Entry points:

* :func:`relocate_object` - the loader's: every function of an :class:`ObjectSpec`, giving a
  spec with relocated instructions and no CO-RE records left;
* :class:`CoreRelocator` - one per object (it caches candidate lists per local type, and
  narrows them as relocations rule candidates out, as libbpf does per object);
* :func:`relocate_core` - one program, when there is nothing to share.

Offsets: ``CoreRelo.insn_off`` is a *byte* offset into the ``insns`` buffer given, i.e. relative
to the function the buffer holds.  That is what :attr:`pybpf.obj.ProgramSpec.core_relos`
provides (the object model subtracts the function's section offset); relocate each function
(entry program or subprogram) before laying subprograms out, exactly as libbpf does before
``bpf_object__relocate_calls``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from pybpf.abi.insn import INSN_SIZE
from pybpf.btf.btf import Btf
from pybpf.btf.ext import CoreRelo, CoreReloKind
from pybpf.core.access_spec import Spec, match_spec, parse_spec
from pybpf.core.btfutil import SpecError, describe, type_or_none
from pybpf.core.calc import ReloResult, calc_relo
from pybpf.core.patch import patch_insn
from pybpf.core.target import Candidate, TargetBtf
from pybpf.errors import BtfError, CoreError
from pybpf.obj.object_spec import ObjectSpec
from pybpf.obj.specs import ProgramSpec


@dataclass(frozen=True, slots=True)
class Resolution:
    """How one relocation resolved: the values to patch and the target spec that won
    (``None`` when no candidate matched, or for TYPE_ID_LOCAL)."""

    result: ReloResult
    local: Spec
    target: Spec | None


class CoreRelocator:
    """Resolves and applies the CO-RE relocations of one object against ``target``."""

    def __init__(self, local_btf: Btf, target: TargetBtf) -> None:
        self.local_btf = local_btf
        self.target = target
        self._cands: dict[int, list[Candidate]] = {}

    def candidates(self, local_id: int) -> list[Candidate]:
        cands = self._cands.get(local_id)
        if cands is None:
            cands = self.target.find_candidates(self.local_btf, local_id)
            self._cands[local_id] = cands
        return cands

    def resolve(self, relo: CoreRelo, *, prog_name: str, relo_index: int) -> Resolution:
        """Compute ``relo``'s result without touching instructions (libbpf's
        ``bpf_core_calc_relo_insn``); a :class:`CoreError` if it cannot be interpreted."""
        try:
            return self._resolve(relo)
        except (SpecError, BtfError) as exc:  # BtfError: a record naming no valid type
            raise CoreError(
                f"{relo.kind.name} of {describe(self.local_btf, relo.type_id)} "
                f"(access '{relo.access_str}'): {_reason(exc)}",
                program=prog_name,
                relo_index=relo_index,
                insn_index=relo.insn_off // INSN_SIZE,
            ) from None

    def _resolve(self, relo: CoreRelo) -> Resolution:
        local_btf = self.local_btf
        local_t = type_or_none(local_btf, relo.type_id)
        local = parse_spec(local_btf, relo)
        if relo.kind == CoreReloKind.TYPE_ID_LOCAL:
            # the id of the object's own type, whatever the kernel has; clang's value may be
            # stale after linking, so it is not checked
            res = ReloResult(relo.type_id, relo.type_id, validate=False)
            return Resolution(res, local, None)
        if local_t is None or not local_t.name:
            raise SpecError("relocations against anonymous types are not supported")
        cands = self.candidates(relo.type_id)
        kept: list[Candidate] = []
        best: tuple[ReloResult, Spec, Candidate] | None = None
        for cand in cands:
            targ = match_spec(local, cand.btf, cand.type_id)
            if targ is None:
                continue
            res = calc_relo(relo.kind, local, targ)
            if best is None:
                best = (res, targ, cand)
            else:
                first_res, first_targ, first = best
                if targ.bit_offset != first_targ.bit_offset:
                    raise SpecError(
                        f"field offset ambiguity: {cand.source} [{cand.type_id}] gives bit "
                        f"{targ.bit_offset}, {first.source} [{first.type_id}] gives bit "
                        f"{first_targ.bit_offset}"
                    )
                if res.poison != first_res.poison or res.new_val != first_res.new_val:
                    raise SpecError(
                        "relocation decision ambiguity: "
                        f"{cand.source} [{cand.type_id}] gives "
                        f"{'failure' if res.poison else 'success'} {res.new_val}, "
                        f"{first.source} [{first.type_id}] gives "
                        f"{'failure' if first_res.poison else 'success'} {first_res.new_val}"
                    )
            kept.append(cand)
        if best is None:
            # Nothing matched: existence checks say 0, everything else is poisoned so that
            # only reachable uses fail verification.
            return Resolution(calc_relo(relo.kind, local, None), local, None)
        # later relocations of this type only consider the candidates that fit this one
        cands[:] = kept
        return Resolution(best[0], local, best[1])

    def relocate(self, insns: bytearray, relos: Sequence[CoreRelo], *, prog_name: str) -> None:
        """Patch ``insns`` (one function's instructions) in place for every relocation."""
        count = len(insns) // INSN_SIZE
        new_types = {r.type_id for r in relos} - self._cands.keys()
        self.target.expect_lookups(len(new_types))
        for index, relo in enumerate(relos):
            insn_index = relo.insn_off // INSN_SIZE
            if relo.insn_off % INSN_SIZE or insn_index >= count:
                raise CoreError(
                    f"instruction offset {relo.insn_off} outside the program "
                    f"({count} instructions)",
                    program=prog_name,
                    relo_index=index,
                )
            resolution = self.resolve(relo, prog_name=prog_name, relo_index=index)
            try:
                patch_insn(insns, insn_index, resolution.result)
            except SpecError as exc:
                raise CoreError(
                    f"{relo.kind.name} of {describe(self.local_btf, relo.type_id)} "
                    f"(access '{relo.access_str}'): {exc}",
                    program=prog_name,
                    relo_index=index,
                    insn_index=insn_index,
                ) from None


def _reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, BtfError) else str(exc)


def relocate_core(
    insns: bytearray,
    relos: Sequence[CoreRelo],
    local_btf: Btf,
    target: TargetBtf,
    *,
    prog_name: str,
) -> None:
    """Apply ``relos`` (offsets relative to ``insns``) to ``insns`` in place.

    Unsatisfiable relocations poison their instruction (a call to helper ``0xbad2310``);
    uninterpretable ones raise :class:`~pybpf.core.errors.CoreError` naming ``prog_name``,
    the relocation and the instruction.  Prefer one :class:`CoreRelocator` per object when
    relocating several programs: it shares candidate lists between them.
    """
    CoreRelocator(local_btf, target).relocate(insns, relos, prog_name=prog_name)


def relocate_object(
    obj: ObjectSpec, target: TargetBtf, *, skip: Collection[str] = ()
) -> ObjectSpec:
    """``obj`` with CO-RE applied to every function and the CO-RE records dropped.

    The loader's one call: afterwards nothing is left for the kernel's own CO-RE.  Entry
    programs named in ``skip`` (those that will not be loaded, as libbpf skips programs with
    autoload off) keep their instructions and records untouched.
    """
    if obj.btf is None or not any(
        f.core_relos for f in (*obj.programs, *obj.subprograms)
    ):
        return obj
    relocator = CoreRelocator(obj.btf, target)

    def apply(func: ProgramSpec) -> ProgramSpec:
        if not func.core_relos or func.name in skip:
            return func
        insns = bytearray(func.insns)
        relocator.relocate(insns, func.core_relos, prog_name=func.name)
        return replace(func, insns=bytes(insns), core_relos=())

    return replace(
        obj,
        programs=tuple(map(apply, obj.programs)),
        subprograms=tuple(map(apply, obj.subprograms)),
    )
