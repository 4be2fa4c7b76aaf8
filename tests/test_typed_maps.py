"""Maps typed by their BTF, read back by libbpf from the same loaded maps.

``fixtures/typed_maps.bpf.c`` fills maps from BPF (so the bytes follow the compiler's layout:
padding, bitfields, nested arrays, per-CPU values); Python adds entries through the typed
API; a C driver on the system libbpf opens the same maps through bpffs pins and prints every
field by name.  Both sides must print the same lines.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import compile_bpf, libbpf_driver, requires_root
from pybpf.errors import MapValueError
from pybpf.kernel.objs import obj_pin
from pybpf.kernel.system import possible_cpus
from pybpf.object import BpfObject

pytestmark = requires_root

BPFFS = Path("/sys/fs/bpf")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("driver") / "typed_maps_driver"
    return libbpf_driver("typed_maps_driver.c", out)


@pytest.fixture
def loaded() -> Iterator[BpfObject]:
    with BpfObject.open(compile_bpf("typed_maps")) as obj:
        obj.load()
        obj.program("fill").test_run()
        yield obj


def padded_line(where: str, p: object) -> str:
    return f"{where} a={p.a} b={p.b} c={p.c}"  # type: ignore[attr-defined]


def python_lines(obj: BpfObject) -> list[str]:
    """What the C driver prints, from the typed Python values."""
    ncpus = possible_cpus()
    lines = []
    for key, value in obj.map("padded").items():
        lines.append(padded_line(f"padded[{key.pid},{key.kind}]", value))
    nested = obj.map("nested")
    for i in range(4):
        n = nested[i]
        for r in range(2):
            for c in range(3):
                lines.append(f"nested[{i}].grid[{r}][{c}]={n.grid[r][c]}")
        for k in range(2):
            lines.append(padded_line(f"nested[{i}].inner[{k}]", n.inner[k]))
        name = bytes(n)[type(n).name.offset :][:8]  # the full array, NULs and all
        lines.append(f"nested[{i}].name={name.hex()}")
        f = n.flags
        lines.append(f"nested[{i}].flags lo={f.lo} mid={f.mid} neg={f.neg} tail={f.tail}")
    for key, per_cpu in obj.map("pcpu_hash").items():
        assert len(per_cpu) == ncpus
        for cpu, v in enumerate(per_cpu):
            slots = ",".join(str(s) for s in v.slots)
            lines.append(f"pcpu_hash[{key}] cpu{cpu} hits={v.hits} slots={slots}")
    array = obj.map("pcpu_array")
    for i in range(2):
        lines.extend(f"pcpu_array[{i}] cpu{cpu}={v}" for cpu, v in enumerate(array[i]))
    return lines


def write_from_python(obj: BpfObject) -> None:
    ncpus = possible_cpus()
    obj.map("padded")[(3, 1)] = {"a": 1, "b": 2**64 - 1, "c": 3}  # key as a tuple
    obj.map("nested")[2] = {
        "grid": [[1, 2, 3], [4, 5, 6]],
        "inner": [{"a": 255, "b": 7, "c": 8}, (9, 10, 11)],
        "name": b"xy\0z",
        "flags": {"lo": 7, "mid": 8191, "neg": -16, "tail": 1},
    }
    obj.map("pcpu_hash")[9] = [{"hits": cpu, "slots": (cpu, 0, 0, 1)} for cpu in range(ncpus)]
    obj.map("pcpu_array")[1] = [100 + cpu for cpu in range(ncpus)]


def test_typed_values_match_what_libbpf_reads(loaded: BpfObject, driver: Path) -> None:
    write_from_python(loaded)
    pins = BPFFS / f"pybpf_typed_{id(loaded):x}"
    pins.mkdir()
    try:
        for name in ("padded", "nested", "pcpu_hash", "pcpu_array"):
            obj_pin(loaded.map(name).fd or -1, pins / name)
        out = subprocess.run([str(driver), str(pins)], capture_output=True, text=True,
                             check=True).stdout.splitlines()  # fmt: skip
    finally:
        shutil.rmtree(pins)
    ours = python_lines(loaded)
    assert sorted(ours) == sorted(out)
    # The BPF side's values are there, and ours: the comparison covered both writers.
    assert "padded[7,2] a=171 b=1234605616436508552 c=48879" in out
    assert "nested[1].flags lo=5 mid=4097 neg=-3 tail=200" in out
    assert "nested[2].flags lo=7 mid=8191 neg=-16 tail=1" in out
    assert "nested[1].name=6162006364656600" in out


def test_per_cpu_values_sum(loaded: BpfObject) -> None:
    write_from_python(loaded)
    ncpus = possible_cpus()
    total = loaded.map("pcpu_hash")[9].sum()
    assert total.hits == sum(range(ncpus)) and list(total.slots) == [sum(range(ncpus)), 0, 0, ncpus]
    assert loaded.map("pcpu_array")[0].sum() == 41  # the program ran once, on one CPU
    assert loaded.map("pcpu_array")[1].sum() == sum(100 + cpu for cpu in range(ncpus))


def test_mapping_protocol(loaded: BpfObject) -> None:
    padded = loaded.map("padded")
    assert (7, 2) in padded and (7, 3) not in padded
    assert padded.get((7, 3), "absent") == "absent"
    with pytest.raises(KeyError):
        padded[(7, 3)]
    padded[(1, 1)] = (1, 2, 3)
    assert sorted((k.pid, k.kind) for k in padded) == [(1, 1), (7, 2)]  # iterating gives keys
    assert padded.pop((1, 1)).c == 3 and (1, 1) not in padded
    assert padded.pop((1, 1), None) is None
    del padded[(7, 2)]
    with pytest.raises(KeyError):
        del padded[(7, 2)]
    assert padded.update_batch([(i, 0) for i in range(5)], [(i, i, i) for i in range(5)]) == 5
    assert sorted(v.b for v in padded.values()) == [0, 1, 2, 3, 4]
    assert padded.delete_batch([(0, 0), (1, 0)]) == 2
    popped = padded.lookup_and_delete_batch()
    assert sorted(k.pid for k, _ in popped) == [2, 3, 4] and not list(padded.keys())
    padded[(5, 5)] = {"a": 1}
    padded.clear()
    assert not list(padded.items())


def test_values_that_do_not_fit_are_refused(loaded: BpfObject) -> None:
    padded, nested = loaded.map("padded"), loaded.map("nested")
    cases = [
        (lambda: padded.update((1, 256), (0, 0, 0)), "key.kind: 256 does not fit 1 bytes"),
        (lambda: padded.update((1, 1), {"b": 1 << 70}), "value.b: 1180591620717411303424"),
        (lambda: padded.update((1, 1), {"d": 1}), "has no field 'd'"),
        (lambda: padded.update((-1, 1), {}), "key.pid: -1 does not fit"),
        (lambda: nested.update(0, {"grid": [[1, 2]]}), "1 items given, the array has 2"),
        (lambda: nested.update(0, {"name": b"123456789"}), "9 bytes given, the type has 8"),
        (lambda: nested.update(0, {"flags": {"lo": 8}}), "lo: 8 does not fit a 3-bit bitfield"),
        (lambda: loaded.map("pcpu_array").update(0, 5), "a per-CPU value is a sequence"),
    ]
    for action, message in cases:
        with pytest.raises(MapValueError) as err:
            action()
        assert message in str(err.value) and "map '" in str(err.value)
    assert (1, 1) not in padded  # no refused write left an element behind


def test_raw_and_explicit_views(loaded: BpfObject) -> None:
    padded = loaded.map("padded")
    ((key, value),) = padded.raw.items()
    assert key == bytes([7, 0, 0, 0, 2, 0, 0, 0])  # tail padding is part of the key
    assert len(value) == 24 and value[0] == 0xAB

    class Counter(ctypes.Structure):
        _fields_ = [("value", ctypes.c_uint64)]

    array = loaded.map("pcpu_array").typed(value=Counter)
    assert array[0].sum().value == 41
    with pytest.raises(MapValueError, match="is 4 bytes, the map's are 8"):
        loaded.map("pcpu_array").typed(value=ctypes.c_uint32)
