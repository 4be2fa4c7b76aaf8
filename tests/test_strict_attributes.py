"""A misspelt setting fails loudly: Map, Program and BpfObject refuse unknown attributes.

Before, ``prog.auto_load = False`` created a new attribute and the program loaded anyway.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import compile_bpf
from pybpf.object import BpfObject


@pytest.fixture
def obj() -> Iterator[BpfObject]:
    with BpfObject.open(compile_bpf("load_globals")) as opened:
        yield opened


def test_misspelt_settings_are_refused_with_the_close_name(obj: BpfObject) -> None:
    prog = obj.program("on_getpid")
    with pytest.raises(AttributeError, match=r"'Program' .* 'auto_load'; did you mean 'autoload'"):
        prog.auto_load = False  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match=r"'Map' object has no attribute 'max_entires'; "
                                             r"did you mean 'max_entries'"):  # fmt: skip
        obj.map("counts").max_entires = 4  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="did you mean 'loaded'"):
        obj.laoded = True  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="did you mean 'autoload'"):
        prog.autolaod  # type: ignore[attr-defined]  # noqa: B018 - reading is checked too


def test_known_settings_and_private_state_still_work(obj: BpfObject) -> None:
    prog = obj.program("on_getpid")
    prog.autoload = False
    assert prog.autoload is False
    obj.map("counts").max_entries = 8
    assert obj.map("counts").max_entries == 8
    assert not hasattr(obj.map("counts"), "no_such_thing")  # hasattr stays usable
