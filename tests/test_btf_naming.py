"""One home for naming BTF types for people: the two C spellings and the two descriptions.

The spellings were four separate functions before; these pin the differences users see
(``object show`` keeps qualifiers and never fails, variable codecs drop them) and that a
reference cycle ends in ``...`` instead of recursing.
"""

from __future__ import annotations

import pytest

from pybpf.btf.btf import Btf
from pybpf.btf.builder import BtfBuilder
from pybpf.btf.naming import c_spelling, describe, describe_with_id
from pybpf.btf.types import (
    BtfArray,
    BtfConst,
    BtfEnum64,
    BtfFuncProto,
    BtfFwd,
    BtfInt,
    BtfPtr,
    BtfStruct,
    BtfTypeTag,
    IntEncoding,
)
from pybpf.errors import BtfError


def _btf() -> Btf:
    b = BtfBuilder()
    b.add(BtfInt("int", 4, IntEncoding.SIGNED, 0, 32))  # 1
    b.add(BtfConst(1))  # 2
    b.add(BtfPtr(2))  # 3
    b.add(BtfArray(3, 1, 4))  # 4
    b.add(BtfStruct("", 0, ()))  # 5
    b.add(BtfFwd("later", is_union=True))  # 6
    b.add(BtfEnum64("big", 8, ()))  # 7
    b.add(BtfFuncProto(1, ()))  # 8
    b.add(BtfTypeTag("user", 3))  # 9
    b.add(BtfPtr(11))  # 10
    b.add(BtfPtr(10))  # 11: a pointer cycle with 10
    return b.to_btf()


@pytest.mark.parametrize(
    ("type_id", "show", "short"),
    [
        (0, "void", "void"),
        (1, "int", "int"),
        (3, "const int *", "int *"),
        (4, "const int *[4]", "int *[4]"),
        (5, "struct (anon)", "struct (anon)"),
        (6, "union later", "later"),
        (7, "enum big", "big"),
        (8, "function", "(anon)"),
        (9, "const int *", "int *"),
        (10, "..." + " *" * 17, "..." + " *" * 17),
    ],
)
def test_two_c_spellings(type_id: int, show: str, short: str) -> None:
    btf = _btf()
    assert c_spelling(btf, type_id) == show
    assert c_spelling(btf, type_id, qualifiers=False) == short


def test_bad_ids() -> None:
    btf = _btf()
    assert c_spelling(btf, 99) == "#99"
    assert c_spelling(None, 3) == "#3"
    with pytest.raises(BtfError):
        c_spelling(btf, 99, qualifiers=False)
    assert describe_with_id(btf, 99) == "[99] <invalid>"


def test_descriptions() -> None:
    btf = _btf()
    assert describe(btf, 5) == "anonymous STRUCT"
    assert describe(btf, 1) == "INT 'int'"
    assert btf.describe(6) == "FWD 'later'"
    assert describe_with_id(btf, 0) == "[0] void"
    assert describe_with_id(btf, 5) == "[5] struct <anon>"
